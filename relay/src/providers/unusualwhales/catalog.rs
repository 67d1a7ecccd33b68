//! Unusual Whales' instrument list: its channels, a fixed list (`docs/providers/unusualwhales.md`, Catalog).
//!
//! There is no endpoint to load: the channels are the configured `--uw-channels` and `--uw-ticker-channels`, so
//! the list costs no request and never needs a refresh. It makes the channels findable by search (`flow` finds
//! `FLOW-ALERTS`) and refuses a mistyped channel name before anything is sent (`FLOW-ALERT` → "did you mean
//! FLOW-ALERTS?"). Any ticker has a price channel, so the list speaks only for names that cannot be tickers
//! ([`is_channel_name`]); `AAPL` or `BF-B` pass unchecked, as before.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::InstrumentClass;

use super::channels::Channels;
use super::UnusualWhalesArgs;
use crate::catalog::{CatalogSource, Instrument};

/// The list never changes while the relay runs; reloading it once a year is as good as never.
const REFRESH: Duration = Duration::from_secs(365 * 24 * 3600);

/// The ticker shown for a per-ticker family in search (`GEX-SPY`); any ticker works.
const EXAMPLE_TICKER: &str = "SPY";

/// What the documented channels carry, for search.
fn describe(channel: &str) -> String {
    match channel {
        "flow-alerts" => "Options flow alerts (all tickers)".into(),
        "news" => "Live news headlines".into(),
        "option_trades" => "Option trades (all tickers)".into(),
        "lit_trades" => "Lit exchange equity trades".into(),
        "off_lit_trades" => "Off-exchange (dark pool) equity trades".into(),
        "gex" => "Gamma exposure (GEX) of one ticker".into(),
        "gex_strike" => "GEX by strike of one ticker".into(),
        "gex_strike_expiry" => "GEX by strike and expiry of one ticker".into(),
        other => format!("Unusual Whales channel {other}"),
    }
}

/// Whether `instrument` can only be a channel name, never a ticker: it has a `_`, or the part after its last `-`
/// is three characters or more (`FLOW-ALERTS`, `GEX-SPY`; a class suffix like `BF-B` stays a ticker).
pub(super) fn is_channel_name(instrument: &str) -> bool {
    instrument.contains('_') || instrument.rsplit_once('-').is_some_and(|(_, tail)| tail.chars().count() >= 3)
}

/// The catalog key of a channel: its channel name, or `family:*` for any ticker of a per-ticker family.
fn key_of(channels: &Channels, instrument: &str) -> String {
    let channel = channels.channel_of(instrument);
    match channel.split_once(':') {
        Some((family, _)) if family != "price" => format!("{family}:*"),
        _ => channel,
    }
}

/// The channel list as catalog entries.
fn instruments(args: &UnusualWhalesArgs) -> Vec<Instrument> {
    let channels = Channels::new(&args.channels, &args.ticker_channels);
    let clean = |list: &[String]| -> Vec<String> {
        list.iter().map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect()
    };
    let plain = clean(&args.channels).into_iter().map(|c| (c.to_ascii_uppercase(), describe(&c)));
    let families = clean(&args.ticker_channels).into_iter().map(|f| {
        let name = format!("{} ({}-TICKER)", describe(&f), f.to_ascii_uppercase());
        (format!("{}-{EXAMPLE_TICKER}", f.to_ascii_uppercase()), name)
    });
    plain
        .chain(families)
        .map(|(ticker, name)| Instrument {
            key: key_of(&channels, &ticker),
            ticker,
            name,
            class: InstrumentClass::Channel,
        })
        .collect()
}

pub(super) fn source(args: &UnusualWhalesArgs) -> CatalogSource {
    let list = instruments(args);
    let channels = Channels::new(&args.channels, &args.ticker_channels);
    CatalogSource {
        load: Arc::new(move || futures::future::ready(Ok(list.clone())).boxed()),
        key_of: Arc::new(move |instrument: &str| Some(key_of(&channels, instrument))),
        covers: Some(Arc::new(is_channel_name)),
        validates: true,
        refresh: REFRESH,
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::catalog::CatalogSlot;

    fn args() -> UnusualWhalesArgs {
        let matches = UnusualWhalesArgs::augment_args(clap::Command::new("relay")).get_matches_from(["relay"]);
        UnusualWhalesArgs::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_configured_channels_are_the_list() {
        let list = instruments(&args());
        let tickers: Vec<(&str, &str)> = list.iter().map(|i| (i.ticker.as_str(), i.key.as_str())).collect();
        assert_eq!(
            tickers,
            [
                ("FLOW-ALERTS", "flow-alerts"),
                ("NEWS", "news"),
                ("OPTION_TRADES", "option_trades"),
                ("LIT_TRADES", "lit_trades"),
                ("OFF_LIT_TRADES", "off_lit_trades"),
                ("OPTION_TRADES-SPY", "option_trades:*"),
                ("GEX-SPY", "gex:*"),
                ("GEX_STRIKE-SPY", "gex_strike:*"),
                ("GEX_STRIKE_EXPIRY-SPY", "gex_strike_expiry:*"),
            ]
        );
        assert!(list.iter().all(|i| i.class == InstrumentClass::Channel));
        assert_eq!(list[0].name, "Options flow alerts (all tickers)");
        assert_eq!(list[6].name, "Gamma exposure (GEX) of one ticker (GEX-TICKER)");
    }

    #[tokio::test]
    async fn channel_names_are_checked_and_tickers_pass() {
        let slot = CatalogSlot::for_source(source(&args()));
        // Nothing loaded yet: everything passes, as for every provider.
        assert!(slot.check("uw", "FLOW-ALERT").is_ok());
        let stop = CancellationToken::new();
        let loading = tokio::spawn(slot.clone().keep_fresh("uw", stop.clone()));
        for _ in 0..1000 {
            if slot.catalog().is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        stop.cancel();
        let _ = loading.await;
        assert_eq!(slot.info().map(|i| (i.instruments, i.error)), Some((9, None)));
        for known in ["FLOW-ALERTS", "NEWS", "GEX-AAPL", "OPTION_TRADES-JPM", "GEX_STRIKE_EXPIRY-QQQ"] {
            assert!(slot.check("uw", known).is_ok(), "{known}");
        }
        for ticker in ["AAPL", "NEWZ", "BF-B", "BRK.B"] {
            assert!(slot.check("uw", ticker).is_ok(), "{ticker} is a price channel");
        }
        let unknown = slot.check("uw", "FLOW-ALERT").unwrap_err();
        assert_eq!(unknown.suggestions.first().map(String::as_str), Some("FLOW-ALERTS"), "{unknown:?}");
        assert!(unknown.message.contains("did you mean FLOW-ALERTS?"), "{}", unknown.message);
        let unknown = slot.check("uw", "GEXX-SPY").unwrap_err();
        assert!(unknown.suggestions.contains(&"GEX-SPY".to_owned()), "{unknown:?}");
        assert!(slot.check("uw", "DARK_POOL").is_err());
    }
}
