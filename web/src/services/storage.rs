//! The localStorage cache: the watchlist (so it survives reloads) and the last quote of every watched symbol
//! (so a reload while the relay is down still shows prices, marked as cached).
//!
//! Storage is best effort: it may be disabled, full, or hold data written by another version. Reading
//! something unusable yields nothing (the defaults apply) rather than an error, and one bad entry does not
//! discard the others. Keys are versioned so a format change can never be misread.

use gloo_storage::{LocalStorage, Storage};
use hamster_shared::{Quote, Symbol};
use serde::Serialize;

use crate::json_object::json_object;

pub const WATCHLIST_KEY: &str = "hamster.watchlist.v1";
pub const QUOTES_KEY: &str = "hamster.quotes.v1";

/// The cache as read (`saved_at` is not needed to read it): each quote is kept as a raw JSON value so it is
/// validated on its own.
struct QuoteCache {
    quotes: Vec<serde_json::Value>,
}

json_object!(QuoteCache, "the quote cache", required { quotes: Vec<serde_json::Value> } optional {});

/// The cache as written: the same JSON, serialised straight from the quotes.
#[derive(Serialize)]
struct QuoteCacheOut<'a> {
    saved_at: i64,
    quotes: &'a [&'a Quote],
}

/// Serialises the watchlist (a JSON array of canonical symbols).
fn encode_watchlist(list: &[Symbol]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// Reads a saved watchlist, skipping entries that are no longer valid symbols. `None` when there is nothing
/// usable, so the caller falls back to the default list. An empty saved list is honoured (the user removed
/// everything on purpose).
fn decode_watchlist(text: &str) -> Option<Vec<Symbol>> {
    let raw: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    let mut list: Vec<Symbol> = vec![];
    for item in &raw {
        if let Some(symbol) = item.as_str().and_then(|s| Symbol::parse(s).ok()) {
            if !list.contains(&symbol) {
                list.push(symbol);
            }
        }
    }
    if list.is_empty() && !raw.is_empty() {
        return None;
    }
    Some(list)
}

fn encode_quotes(quotes: &[&Quote], saved_at: i64) -> String {
    serde_json::to_string(&QuoteCacheOut { saved_at, quotes }).unwrap_or_default()
}

/// Reads cached quotes, dropping any that no longer parse (e.g. a symbol rule got stricter).
fn decode_quotes(text: &str) -> Vec<Quote> {
    let Ok(cache) = serde_json::from_str::<QuoteCache>(text) else {
        return vec![];
    };
    cache
        .quotes
        .into_iter()
        // Read back from text, as every other quote the page reads is: `from_value` would compile a second
        // reader of quotes (from a tree) into the wasm just for this.
        .filter_map(|v| serde_json::from_str::<Quote>(&v.to_string()).ok())
        .filter(|q| q.price.is_finite())
        .collect()
}

fn read_raw(key: &str) -> Option<String> {
    LocalStorage::raw().get_item(key).ok().flatten()
}

fn write_raw(key: &str, value: &str) -> Result<(), String> {
    LocalStorage::raw().set_item(key, value).map_err(|_| format!("could not save {key} (storage full or disabled)"))
}

/// Where the price alerts are saved.
pub(crate) const ALERTS_KEY: &str = "hamster.alerts.v1";
/// The named watchlists (names, which is active, every list's symbols); `WATCHLIST_KEY` keeps the active one.
pub(crate) const WATCHLISTS_KEY: &str = "hamster.watchlists.v1";
/// The colour theme: `system`, `light` or `dark`.
pub(crate) const THEME_KEY: &str = "hamster.theme.v1";
/// The latency figure's warning threshold in ms.
pub(crate) const LATENCY_WARN_KEY: &str = "hamster.latency-warn-ms.v1";

/// Where "sound off" for alerts is saved (`"1"`), shared by the page's tabs.
pub(crate) const SOUND_MUTED_KEY: &str = "hamster.sound-muted.v1";

/// Whether alert sounds are off.
pub(crate) fn sound_muted() -> bool {
    read_raw(SOUND_MUTED_KEY).as_deref() == Some("1")
}

pub(crate) fn set_sound_muted(muted: bool) {
    if let Err(e) = write_raw(SOUND_MUTED_KEY, if muted { "1" } else { "0" }) {
        web_sys::console::warn_1(&e.into());
    }
}

/// A value saved as JSON under `key`; `None` when there is none or it no longer reads as a `T`.
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    serde_json::from_str(&read_raw(key)?).ok()
}

pub(crate) fn save_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|e| format!("could not encode {key}: {e}"))?;
    write_raw(key, &text)
}

/// The saved watchlist, if any.
pub fn load_watchlist() -> Option<Vec<Symbol>> {
    read_raw(WATCHLIST_KEY).and_then(|t| decode_watchlist(&t))
}

/// The watchlist another tab of this page just saved, from a `storage` event's key and new value (`None` for
/// any other key, or a value that is not a watchlist).
pub(crate) fn watchlist_saved_elsewhere(key: Option<&str>, value: Option<&str>) -> Option<Vec<Symbol>> {
    if key != Some(WATCHLIST_KEY) {
        return None;
    }
    decode_watchlist(value?)
}

pub fn save_watchlist(list: &[Symbol]) -> Result<(), String> {
    write_raw(WATCHLIST_KEY, &encode_watchlist(list))
}

/// The cached quotes (possibly empty).
pub fn load_quotes() -> Vec<Quote> {
    read_raw(QUOTES_KEY).map(|t| decode_quotes(&t)).unwrap_or_default()
}

pub fn save_quotes(quotes: &[&Quote], saved_at: i64) -> Result<(), String> {
    write_raw(QUOTES_KEY, &encode_quotes(quotes, saved_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn quote(s: &str, price: f64) -> Quote {
        Quote {
            seq: None,
            recv: None,
            symbol: Symbol::parse(s).expect("valid test symbol"),
            price,
            ts: 1_700_000_000_000,
            provider: "sim".into(),
            bid: Some(price - 0.01),
            ask: Some(price + 0.01),
            volume: None,
            change: Some(1.0),
            change_pct: Some(0.5),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn watchlist_round_trips_and_tolerates_junk() {
        let list = vec![Symbol::parse("AAPL").expect("ok"), Symbol::parse("btc/usd").expect("ok")];
        assert_eq!(decode_watchlist(&encode_watchlist(&list)), Some(list.clone()));
        assert_eq!(decode_watchlist(r#"["AAPL", "bad sym", 7, "aapl", "BTC/USD"]"#), Some(list));
        assert_eq!(decode_watchlist("[]"), Some(vec![]));
        assert_eq!(decode_watchlist(r#"["bad sym"]"#), None);
        assert_eq!(decode_watchlist("{not json"), None);
        assert_eq!(decode_watchlist(r#"{"a":1}"#), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn quotes_round_trip_and_drop_bad_entries() {
        let quotes = vec![quote("AAPL", 190.25), quote("EUR/USD", 1.08)];
        let text = encode_quotes(&quotes.iter().collect::<Vec<_>>(), 5);
        assert_eq!(decode_quotes(&text), quotes);
        let tampered = text.replace("\"EUR/USD\"", "\"EUR USD\"");
        assert_eq!(decode_quotes(&tampered), vec![quotes[0].clone()]);
        assert_eq!(decode_quotes("garbage"), vec![]);
    }
}
