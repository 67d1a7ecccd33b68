//! `GET /api/history/{symbol}` with timeframes through the real relay binary: candles of every timeframe are the
//! same ticks rolled up (counts, extremes, volumes agree with the one-minute candles), ranges and limits select
//! periods, bad parameters get JSON errors, and with a real SQLite store a restarted relay that holds nothing in
//! memory still serves the recorded candles. The simulator hands over a reconstructed day of candles when a symbol is
//! first subscribed (a chart opens with a past), which the tests of tick roll-ups switch off.

use std::time::Duration;

use hamster_shared::api::{ApiError, Candle, HistoryResponse, Timeframe};
use hamster_shared::ErrorCode;
use hamster_tests::{Relay, TempDir, WsClient};
use serde_json::Value;

/// Subscribes to `symbol` for `secs`, then lets go so no tick arrives between the requests that compare.
async fn feed(relay: &Relay, symbol: &str, secs: u64) {
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&[symbol]).await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    ws.close().await;
    // Ticks already on their way, and the store's writer (it commits at least every 250 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
}

async fn candles(relay: &Relay, path: &str) -> Vec<Candle> {
    let (status, h) = relay.get_json::<HistoryResponse>(path).await;
    assert_eq!(status, 200, "{path}");
    h.candles
}

/// What the one-minute candles add up to, rolled into one.
fn rolled(minutes: &[Candle]) -> (u32, f64, f64, f64, f64, f64) {
    let ticks = minutes.iter().map(|c| c.ticks).sum();
    let high = minutes.iter().map(|c| c.high).fold(f64::MIN, f64::max);
    let low = minutes.iter().map(|c| c.low).fold(f64::MAX, f64::min);
    let volume = minutes.iter().map(|c| c.volume).sum();
    (ticks, minutes[0].open, high, low, minutes[minutes.len() - 1].close, volume)
}

#[tokio::test]
async fn every_timeframe_rolls_up_the_same_ticks() {
    let relay = Relay::start(&["--sim-tick-hz", "50", "--sim-seed", "7", "--sim-history-minutes", "0"]);
    feed(&relay, "BTC/USD", 3).await;
    let (status, h) = relay.get_json::<HistoryResponse>("/api/history/BTC%2FUSD?tf=1m").await;
    assert_eq!((status, h.tf), (200, Timeframe::M1));
    let minutes = h.candles;
    assert!(!minutes.is_empty());
    let (ticks, open, high, low, close, volume) = rolled(&minutes);
    assert!(ticks >= 50, "{ticks} ticks in 3 s at 50 Hz");
    assert!(volume > 0.0, "the simulator reports volume: {minutes:?}");
    for tf in ["5m", "15m", "1h", "1d", "1D"] {
        let (status, h) = relay.get_json::<HistoryResponse>(&format!("/api/history/BTC/USD?tf={tf}")).await;
        assert_eq!(status, 200);
        let tf_ms = h.tf.ms();
        assert!(h.candles.iter().all(|c| c.start % tf_ms == 0), "{tf}: aligned starts {:?}", h.candles);
        // Three seconds fit in one period, or straddle a boundary into two.
        assert!((1..=2).contains(&h.candles.len()), "{tf}: {:?}", h.candles);
        if h.candles.len() == 1 {
            let c = h.candles[0];
            assert_eq!((c.ticks, c.open, c.high, c.low, c.close), (ticks, open, high, low, close), "{tf}");
            assert!((c.volume - volume).abs() < 1e-6, "{tf}: volume {} vs {volume}", c.volume);
        } else {
            assert_eq!(h.candles.iter().map(|c| c.ticks).sum::<u32>(), ticks, "{tf}");
        }
    }
    // A range past the last tick is empty; `limit` keeps the newest.
    let last = minutes[minutes.len() - 1].start;
    assert!(candles(&relay, &format!("/api/history/BTC/USD?from={}", last + 60_000)).await.is_empty());
    let newest = candles(&relay, "/api/history/BTC/USD?limit=1").await;
    assert_eq!(newest, [minutes[minutes.len() - 1]]);

    for (query, needle) in [("tf=2m", "unknown timeframe"), ("from=abc", "whole number"), ("limit=0", "limit")] {
        let (status, e) = relay.get_json::<ApiError>(&format!("/api/history/BTC/USD?{query}")).await;
        assert_eq!((status, e.code), (400, ErrorCode::BadMessage), "{query}");
        assert!(e.message.contains(needle), "{query}: {}", e.message);
    }
}

#[tokio::test]
async fn a_restarted_relay_serves_recorded_candles_from_its_store() {
    let dir = TempDir::new("history");
    let mut relay = Relay::start(&[
        "--data-dir",
        &dir.arg(),
        "--sim-tick-hz",
        "40",
        "--sim-seed",
        "5",
        "--sim-history-minutes",
        "0",
    ]);
    feed(&relay, "ETH/USD", 3).await;
    let live = candles(&relay, "/api/history/ETH/USD?tf=1m").await;
    relay.signal(15);
    assert!(relay.wait_exit(Duration::from_secs(20)).is_some(), "the relay did not stop");

    // Nothing subscribed, nothing in memory: every candle comes from the file.
    let relay = Relay::start(&["--data-dir", &dir.arg(), "--no-record"]);
    let minutes = candles(&relay, "/api/history/ETH/USD?tf=1m").await;
    assert_eq!(minutes.len(), live.len(), "stored {minutes:?}\nlive {live:?}");
    let (ticks, open, high, low, close, _) = rolled(&minutes);
    assert_eq!(ticks, live.iter().map(|c| c.ticks).sum::<u32>(), "every live tick was recorded");
    assert_eq!((open, close), (live[0].open, live[live.len() - 1].close));
    let day = candles(&relay, "/api/history/ETH/USD?tf=1d").await;
    let c = day.last().copied().expect("a stored day");
    assert_eq!((c.ticks, c.high, c.low, c.close), (ticks, high, low, close));
    let export = format!("{}/api/export?symbols=ETH/USD&format=ndjson", relay.http_url());
    let body = reqwest::get(export).await.expect("export").text().await.expect("export body");
    let exported = body.lines().filter(|l| serde_json::from_str::<Value>(l).is_ok()).count();
    assert_eq!(exported, ticks as usize, "candles count the recorded ticks");
}

#[tokio::test]
async fn a_symbol_opens_with_a_day_of_past_that_joins_its_live_candles() {
    let relay = Relay::start(&["--sim-tick-hz", "20", "--sim-seed", "9"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["SOL/USD"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let minutes = candles(&relay, "/api/history/SOL/USD?tf=1m&limit=5000").await;
    // The relay keeps a day of minutes (`--history-candles`): the reconstructed past up to the first tick's minute,
    // then that minute (and the next, if the test straddled a boundary).
    assert_eq!(minutes.len(), 1440);
    assert!(minutes.windows(2).all(|w| w[1].start - w[0].start == 60_000), "one candle per minute, no gap");
    // Reconstructed minutes are whole (20 Hz × 60 s); live ones hold the ticks of the last 1.5 s.
    let (past, live) = minutes.split_at(minutes.iter().position(|c| c.ticks < 1200).expect("a live minute"));
    assert!((1..=2).contains(&live.len()), "{live:?}");
    let joined = past[past.len() - 1].close;
    assert!(
        (live[0].open / joined - 1.0).abs() < 0.01,
        "the past ends near the first live price: {joined} then {:?}",
        live[0]
    );
    assert!(past.iter().all(|c| c.low > 0.0 && c.low <= c.high && c.ticks > 0 && c.volume > 0.0));
    // Longer timeframes roll the past up like live minutes: a day is 24 or 25 hours here.
    let hours = candles(&relay, "/api/history/SOL/USD?tf=1h").await;
    assert!((24..=26).contains(&hours.len()), "{} hours", hours.len());
    let first_live = live[0].start;
    for hour in hours.iter().filter(|h| h.start + 3_600_000 <= first_live) {
        let inside: Vec<Candle> =
            past.iter().filter(|m| m.start >= hour.start && m.start < hour.start + 3_600_000).copied().collect();
        let (ticks, open, high, low, close, _) = rolled(&inside);
        assert_eq!((hour.ticks, hour.open, hour.high, hour.low, hour.close), (ticks, open, high, low, close));
    }
    // The last value is live, not reconstructed: quotes still flow for the symbol.
    let live_close = minutes[minutes.len() - 1].close;
    let (status, q) = relay.get_json::<Value>("/api/quotes?symbols=SOL/USD").await;
    assert_eq!(status, 200, "{q}");
    let price = q["quotes"][0]["price"].as_f64().expect("a price");
    assert!((price / live_close - 1.0).abs() < 0.01, "{price} vs the newest candle's close {live_close}");
    ws.close().await;
}
