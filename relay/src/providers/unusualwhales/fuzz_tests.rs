//! Fuzzing Unusual Whales' parser ([`UwWire::on_text`]) and its channel mapping. See
//! [`crate::providers::testing::fuzz`] for the strategies and the quote checks.

use proptest::prelude::*;

use hamster_shared::Symbol;

use super::channels::Channels;
use super::wire::UwWire;
use super::{UnusualWhalesArgs, NAME};
use serde_json::Value;

use crate::providers::stream::{Wire, WireEvent};
use crate::providers::testing::fuzz::{self, check_events, quotes};
use crate::secret::Secret;

/// The documented frames (`docs/providers/unusualwhales.md`, What is supported), and the failure shapes the
/// adapter understands.
const SAMPLES: &[&str] = &[
    r#"["price:SPY",{"close":"562.82","time":1726670327692,"vol":6015555}]"#,
    r#"["price:AAPL",{"close":562.5,"time":"1726670327692","vol":"12"}]"#,
    r#"["flow-alerts",{"rule_id":"5ce5ec11-087c-4c00-b164-08106b015856","rule_name":"RepeatedHitsDescendingFill","ticker":"DIA","option_chain":"DIA241018C00415000","underlying_price":415.981,"volume":106,"total_premium":36466,"start_time":1726670212648,"end_time":1726670212748,"price":7.3,"has_sweep":false,"trade_ids":["417f0cd6-09ae-4d43-8542-38557bb713aa"],"executed_at":1726670212748,"exchanges":["XCBO","MPRL"],"bid":"7.15","ask":"7.3"}]"#,
    r#"["gex:SPY",{"ticker":"SPY","timestamp":1726670396000,"gamma_per_one_percent_move_oi":"-262444980.31","delta_per_one_percent_move_oi":"","price":"562.86"}]"#,
    r#"["news",{"headline":"US Energy Secretary foresees many more LNG export deals signed","timestamp":"2025-06-11T21:40:56Z","source":"social-media","tickers":[],"is_trump_ts":false}]"#,
    r#"["option_trades:UVIX",{"id":"a4dc6020-0611-4c23-b0bc-99944c7348ab","underlying_symbol":"UVIX","executed_at":1726670167412,"price":"0.01"}]"#,
    r#"["option_trades",{"response":{},"status":"ok"}]"#,
    r#"["price:NOPE",{"response":{"reason":"unknown ticker"},"status":"error"}]"#,
    r#"["gex:SPY",{"status":"error","message":"not entitled"}]"#,
    r#"["news",{"status":"forbidden","response":"plan lacks news"}]"#,
    r#"["price:X",{"response":{"reason":"bad token t0ken"},"status":"error"}]"#,
];

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    uw: UnusualWhalesArgs,
}

fn wire() -> UwWire {
    let args = <Cli as clap::Parser>::try_parse_from(["relay"]).expect("defaults parse").uw;
    UwWire::new(&args, Secret::new("t0ken"))
}

/// Beyond the common checks: a quote is for the ticker its `price:` channel names, and no text carries the token.
fn check(text: &str) -> Result<(), TestCaseError> {
    let events = wire().on_text(text);
    check_events(NAME, &events)?;
    for q in quotes(&events) {
        let channel = serde_json::from_str::<Value>(text).ok().and_then(|v| v.get(0)?.as_str().map(str::to_owned));
        let ticker =
            channel.as_deref().and_then(|c| c.split_once(':')).filter(|(f, _)| f.eq_ignore_ascii_case("price"));
        prop_assert_eq!(ticker.and_then(|(_, t)| Symbol::parse(t).ok()), Some(q.symbol.clone()), "from {}", text);
    }
    for event in &events {
        let said = match event {
            WireEvent::Rejected { message, .. } => message,
            WireEvent::Info(info) => info,
            _ => continue,
        };
        prop_assert!(!said.contains("t0ken"), "token leaked: {}", said);
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_uw_arbitrary_text(text in fuzz::arbitrary_text()) {
        check(&text)?;
    }

    #[test]
    fn fuzz_uw_arbitrary_json(doc in fuzz::arbitrary_json()) {
        check(&doc.text())?;
    }

    #[test]
    fn fuzz_uw_mutated_samples(text in fuzz::mutated(SAMPLES)) {
        check(&text)?;
    }

    /// Frames come back to the instrument that joined their channel, for every valid symbol.
    #[test]
    fn fuzz_uw_channel_mapping_round_trips(
        ticker in r"[A-Za-z0-9]([A-Za-z0-9._^=!/-]{0,20}[A-Za-z0-9])?",
        family in prop::sample::select(vec!["", "FLOW-ALERTS", "GEX-", "GEX_STRIKE-", "OPTION_TRADES-", "PRICE-"]),
    ) {
        let Ok(symbol) = Symbol::parse(&format!("{family}{ticker}")) else { return Ok(()) };
        let channel = wire().channels.channel_of(symbol.ticker());
        let target = Channels::target_of(&channel);
        prop_assert_eq!(target.instrument(), symbol.ticker(), "via {}", channel);
    }
}
