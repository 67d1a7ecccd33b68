//! Simulated non-price channels, in the payload shapes Unusual Whales publishes (`docs/providers/unusualwhales.md`,
//! What is supported), so the dashboard's event feed, its filters and its large-premium alerts work with no key and tests
//! can drive them: `FLOW-ALERTS` (options-flow alerts on the subscribed equities) and `NEWS` (headlines).
//!
//! Alerts follow the subscribed equities' live simulated prices: strikes near the money, weekly expiries, calls
//! somewhat more often than puts, and premiums with a long tail (median around $60K, a few percent above $500K).

use hamster_shared::AssetClass;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, StandardNormal};
use serde_json::{json, Value};
use time::{Duration as Days, OffsetDateTime, Weekday};

use super::universe::STOCKS;
use super::walk::Walk;

/// The channels the simulator publishes, as clients subscribe to them (upper case, like the Unusual Whales ones).
pub(super) const CHANNELS: &[&str] = &["FLOW-ALERTS", "NEWS"];

/// Underlyings used when no equity is subscribed, so a feed opened alone is not empty.
const FALLBACK_UNDERLYINGS: &[&str] = &["SPY", "QQQ", "AAPL", "NVDA", "TSLA", "AMZN", "META"];

const RULES: &[&str] = &[
    "RepeatedHits",
    "RepeatedHitsAscendingFill",
    "RepeatedHitsDescendingFill",
    "FloorTradeLargeCap",
    "SweepsFollowedByFloor",
    "OtmEarningsFloor",
];

const EXCHANGES: &[&str] = &["XCBO", "MPRL", "XPHL", "ARCO", "AMXO", "XISX", "BATO", "EDGO"];

/// Time until the next event of a channel publishing `per_minute` events on average (a Poisson process).
pub(super) fn next_gap(rng: &mut StdRng, per_minute: f64) -> std::time::Duration {
    let rate = per_minute.max(0.001) / 60.0;
    let secs = Exp::new(rate).map_or(60.0, |exp| exp.sample(rng));
    std::time::Duration::from_secs_f64(secs.min(3600.0))
}

/// One payload for `channel` at `now_ms`, about one of the subscribed equities (`walks`) when there are any.
pub(super) fn payload<'a>(
    channel: &str,
    walks: impl Iterator<Item = (&'a String, &'a Walk)>,
    rng: &mut StdRng,
    now_ms: i64,
) -> Option<Value> {
    let equities: Vec<(&str, f64)> =
        walks.filter(|(_, w)| w.class() == AssetClass::Equity).map(|(t, w)| (t.as_str(), w.price())).collect();
    let (ticker, price) = if equities.is_empty() {
        let ticker = FALLBACK_UNDERLYINGS[rng.random_range(0..FALLBACK_UNDERLYINGS.len())];
        (ticker, STOCKS.iter().find(|l| l.symbol == ticker).map_or(100.0, |l| l.price))
    } else {
        equities[rng.random_range(0..equities.len())]
    };
    match channel {
        "FLOW-ALERTS" => Some(flow_alert(ticker, price, rng, now_ms)),
        "NEWS" => Some(news(ticker, rng, now_ms)),
        _ => None,
    }
}

fn flow_alert(ticker: &str, underlying: f64, rng: &mut StdRng, now_ms: i64) -> Value {
    let call = rng.random_bool(0.55);
    let weeks = rng.random_range(0..8u32);
    let expiry = friday_after(now_ms, weeks);
    let increment = if underlying < 50.0 {
        0.5
    } else if underlying < 200.0 {
        1.0
    } else if underlying < 1000.0 {
        5.0
    } else {
        10.0
    };
    let z: f64 = StandardNormal.sample(rng);
    let strike = ((underlying * (1.0 + 0.04 * z)) / increment).round().max(1.0) * increment;
    // Intrinsic value plus a time value that grows with the square root of time: plausible, not a pricing model.
    let intrinsic = if call { underlying - strike } else { strike - underlying }.max(0.0);
    let time_value = underlying * 0.012 * f64::from(weeks + 1).sqrt() * (1.0 + 0.3 * rng.random::<f64>());
    let price = round_to(intrinsic + time_value, 0.05).max(0.05);
    let premium_target = LogNormal::new(60_000f64.ln(), 1.1).map_or(60_000.0, |d| d.sample(rng));
    let size = ((premium_target / (price * 100.0)).round() as u64).max(1);
    let premium = (price * 100.0 * size as f64).round();
    let ask_share: f64 = rng.random();
    let ask_side = (premium * ask_share).round();
    let spread = round_to(price * 0.02, 0.01).max(0.01);
    let trades = rng.random_range(1..12u32);
    let start = now_ms - rng.random_range(50..5_000);
    let exchanges: Vec<&str> = (0..rng.random_range(1..4)).map(|_| EXCHANGES[rng.random_range(0..EXCHANGES.len())]).collect();
    let open_interest = rng.random_range(0..20_000u64);
    json!({
        "rule_id": uuid(rng),
        "rule_name": RULES[rng.random_range(0..RULES.len())],
        "ticker": ticker,
        "option_chain": option_chain(ticker, &expiry, call, strike),
        "underlying_price": round_to(underlying, 0.001),
        "volume": size + rng.random_range(0..size.max(1)),
        "total_size": size,
        "total_premium": premium,
        "total_ask_side_prem": ask_side,
        "total_bid_side_prem": premium - ask_side,
        "start_time": start,
        "end_time": now_ms,
        "url": "",
        "price": price,
        "has_multileg": false,
        "has_sweep": rng.random_bool(0.3),
        "has_floor": rng.random_bool(0.1),
        "open_interest": open_interest,
        "all_opening_trades": size as f64 > open_interest as f64,
        "id": uuid(rng),
        "has_singleleg": true,
        "volume_oi_ratio": if open_interest == 0 { 0.0 } else { round_to(size as f64 / open_interest as f64, 0.0001) },
        "trade_ids": (0..trades.min(3)).map(|_| uuid(rng)).collect::<Vec<_>>(),
        "trade_count": trades,
        "expiry_count": 1,
        "executed_at": now_ms,
        "ask_vol": (size as f64 * ask_share).round() as u64,
        "bid_vol": (size as f64 * (1.0 - ask_share)).round() as u64,
        "no_side_vol": 0,
        "mid_vol": 0,
        "multi_vol": 0,
        "stock_multi_vol": 0,
        "upstream_condition_details": ["auto"],
        "exchanges": exchanges,
        "bid": format!("{:.2}", (price - spread).max(0.01)),
        "ask": format!("{:.2}", price),
        // Not in Unusual Whales' payload: lets any reader tell simulated alerts apart.
        "simulated": true,
    })
}

fn news(ticker: &str, rng: &mut StdRng, now_ms: i64) -> Value {
    let name = STOCKS.iter().find(|l| l.symbol == ticker).map_or(ticker, |l| l.name);
    const TEMPLATES: &[&str] = &[
        "{name} shares move as options traders pile into near-dated contracts",
        "Analysts revisit price targets for {name} ahead of earnings",
        "{name} draws heavy dark-pool volume in early trading",
        "Report: {name} weighs new buyback program",
        "{name} trades near session highs as sector rallies",
        "Unusual call activity spotted in {name}",
    ];
    let headline = TEMPLATES[rng.random_range(0..TEMPLATES.len())].replace("{name}", name);
    json!({
        "headline": headline,
        "timestamp": rfc3339(now_ms),
        "source": "simulator",
        "tickers": [ticker],
        "is_trump_ts": false,
        "simulated": true,
    })
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

/// A random version-4 UUID in its usual text form.
fn uuid(rng: &mut StdRng) -> String {
    let v: u128 = rng.random::<u128>() & !(0xf << 76) | (0x4 << 76);
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The Friday `weeks` weeks after the first Friday on or after `now_ms` (UTC).
fn friday_after(now_ms: i64, weeks: u32) -> time::Date {
    let today = OffsetDateTime::from_unix_timestamp(now_ms / 1000).map_or(OffsetDateTime::UNIX_EPOCH, |t| t).date();
    let ahead = (i64::from(Weekday::Friday.number_days_from_monday()) - i64::from(today.weekday().number_days_from_monday()))
        .rem_euclid(7);
    today.saturating_add(Days::days(ahead + 7 * i64::from(weeks)))
}

/// OCC-style option symbol: `DIA241018C00415000` (ticker, expiry YYMMDD, C/P, strike × 1000 in 8 digits).
fn option_chain(ticker: &str, expiry: &time::Date, call: bool, strike: f64) -> String {
    let root: String = ticker.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!(
        "{root}{:02}{:02}{:02}{}{:08}",
        expiry.year().rem_euclid(100),
        u8::from(expiry.month()),
        expiry.day(),
        if call { 'C' } else { 'P' },
        (strike * 1000.0).round() as u64
    )
}

fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms / 1000).map_or(OffsetDateTime::UNIX_EPOCH, |t| t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::providers::rfc3339_ms;

    const NOW: i64 = 1_726_670_212_748; // Wednesday 2024-09-18

    #[test]
    fn flow_alerts_have_the_documented_shape_and_a_long_premium_tail() {
        let mut rng = StdRng::seed_from_u64(3);
        let walk = Walk::new("AAPL", 190.0, &mut rng);
        let name = "AAPL".to_owned();
        let mut premiums = Vec::new();
        for _ in 0..2_000 {
            let a = payload("FLOW-ALERTS", std::iter::once((&name, &walk)), &mut rng, NOW).unwrap();
            for field in ["rule_id", "rule_name", "ticker", "option_chain", "total_premium", "executed_at", "bid", "ask"] {
                assert!(a.get(field).is_some(), "{field} missing: {a}");
            }
            assert_eq!(a["ticker"], "AAPL");
            assert!(a["bid"].is_string() && a["price"].is_number(), "strings and numbers as documented");
            let chain = a["option_chain"].as_str().unwrap();
            assert!(chain.starts_with("AAPL2409") || chain.starts_with("AAPL241"), "{chain}");
            premiums.push(a["total_premium"].as_f64().unwrap());
        }
        premiums.sort_by(f64::total_cmp);
        let median = premiums[premiums.len() / 2];
        let large = premiums.iter().filter(|p| **p > 500_000.0).count();
        assert!((20_000.0..150_000.0).contains(&median), "median premium {median}");
        assert!((10..200).contains(&large), "{large} of 2,000 above $500K");
    }

    #[test]
    fn expiries_are_fridays_and_chains_are_occ_symbols() {
        assert_eq!(friday_after(NOW, 0).to_string(), "2024-09-20");
        assert_eq!(friday_after(NOW, 4).to_string(), "2024-10-18");
        let friday = NOW + 2 * 86_400_000;
        assert_eq!(friday_after(friday, 0).to_string(), "2024-09-20", "a Friday is its own first Friday");
        assert_eq!(option_chain("DIA", &friday_after(NOW, 4), true, 415.0), "DIA241018C00415000");
        assert_eq!(option_chain("BRK.B", &friday_after(NOW, 0), false, 410.5), "BRKB240920P00410500");
    }

    #[test]
    fn news_has_the_documented_shape_without_subscribed_equities() {
        let mut rng = StdRng::seed_from_u64(5);
        let n = payload("NEWS", std::iter::empty(), &mut rng, NOW).unwrap();
        assert_eq!(rfc3339_ms(n["timestamp"].as_str().unwrap()), Some(NOW / 1000 * 1000));
        assert!(n["headline"].as_str().unwrap().len() > 10 && n["tickers"].as_array().unwrap().len() == 1);
        assert!(payload("GEX-SPY", std::iter::empty(), &mut rng, NOW).is_none());
        let u = uuid(&mut rng);
        assert_eq!((u.len(), &u[14..15]), (36, "4"));
    }
}
