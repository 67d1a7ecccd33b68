//! In-browser tests of the localStorage cache: what the dashboard writes, a real browser keeps, and what it
//! reads back (including junk left by someone else) restores a usable state. Runs only on wasm32:
//!
//! ```text
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
//!     cargo test -p hamster-web --target wasm32-unknown-unknown
//! ```
#![cfg(target_arch = "wasm32")]

use hamster_shared::{Quote, Symbol};
use hamster_web::services::storage::{self, QUOTES_KEY, WATCHLIST_KEY};
use hamster_web::state::{default_watchlist, AppState, BadgeKind};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn local_storage() -> web_sys::Storage {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten()).expect("localStorage available in the test page")
}

fn clear() {
    let ls = local_storage();
    let _ = ls.remove_item(WATCHLIST_KEY);
    let _ = ls.remove_item(QUOTES_KEY);
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).expect("valid test symbol")
}

fn quote(s: &str, price: f64, ts: i64) -> Quote {
    Quote {
        recv: None,
        seq: None,
        symbol: sym(s),
        price,
        ts,
        provider: "sim".into(),
        bid: None,
        ask: None,
        volume: Some(10.0),
        change: Some(-1.5),
        change_pct: Some(-0.75),
    }
}

#[wasm_bindgen_test]
fn nothing_saved_means_defaults() {
    clear();
    assert_eq!(storage::load_watchlist(), None);
    assert!(storage::load_quotes().is_empty());
    let watchlist = storage::load_watchlist().unwrap_or_else(default_watchlist);
    assert_eq!(watchlist.len(), 8);
}

#[wasm_bindgen_test]
fn watchlist_survives_in_local_storage() {
    clear();
    let list = vec![sym("TSLA"), sym("BTC/USD"), sym("binance:ETH/USDT")];
    storage::save_watchlist(&list).expect("save");
    let raw = local_storage().get_item(WATCHLIST_KEY).ok().flatten().expect("written");
    assert_eq!(raw, r#"["TSLA","BTC/USD","binance:ETH/USDT"]"#);
    assert_eq!(storage::load_watchlist(), Some(list));
    // The user removed everything: that is a choice, not a reason to bring the defaults back.
    storage::save_watchlist(&[]).expect("save");
    assert_eq!(storage::load_watchlist(), Some(vec![]));
}

#[wasm_bindgen_test]
fn quotes_survive_and_restore_as_cached() {
    clear();
    storage::save_quotes(&[&quote("AAPL", 190.25, 1_000), &quote("EUR/USD", 1.08, 1_000)], 2_000).expect("save");
    let cached = storage::load_quotes();
    assert_eq!(cached.len(), 2);
    assert_eq!(cached[0], quote("AAPL", 190.25, 1_000));

    let state = AppState::restored(vec![sym("AAPL"), sym("MSFT")], cached, 3_000);
    let aapl = &state.rows[&sym("AAPL")];
    assert!(aapl.cached, "restored values are marked cached");
    assert_eq!(aapl.quote.as_ref().map(|q| q.price), Some(190.25));
    assert!(state.rows[&sym("MSFT")].quote.is_none());
    assert!(!state.rows.contains_key(&sym("EUR/USD")), "cached quotes of unwatched symbols are dropped");
    assert_eq!(state.badge().kind, BadgeKind::Connecting);
}

#[wasm_bindgen_test]
fn junk_in_storage_is_survivable() {
    clear();
    let ls = local_storage();
    ls.set_item(WATCHLIST_KEY, "{definitely not a list").expect("set");
    ls.set_item(
        QUOTES_KEY,
        r#"{"saved_at":1,"quotes":[{"symbol":"bad sym","price":1,"ts":1,"provider":"x"},
        {"symbol":"AAPL","price":2.5,"ts":1,"provider":"sim"}]}"#,
    )
    .expect("set");
    assert_eq!(storage::load_watchlist(), None);
    let quotes = storage::load_quotes();
    assert_eq!(quotes.len(), 1, "the valid quote is kept, the invalid one dropped");
    assert_eq!(quotes[0].symbol, sym("AAPL"));
    clear();
}
