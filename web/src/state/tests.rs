//! The reducer's unit tests: every transition driven by actions and events as the browser would send them,
//! with time passed in, so they run natively without a socket or a page.

use super::log::LOG_CAPACITY;
use super::row::{EVENT_PREVIEW_CHARS, FLASH_GAP_MS, SPARK_POINTS, STALE_AFTER_MS};
use super::*;
use hamster_shared::api::Tick;
use hamster_shared::{ErrorCode, ProviderInfo, Rejection};
use wasm_bindgen_test::wasm_bindgen_test;

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).expect("valid test symbol")
}

fn quote(s: &str, price: f64, ts: i64) -> Quote {
    Quote {
        seq: None,
        recv: None,
        symbol: sym(s),
        price,
        ts,
        provider: "sim".into(),
        bid: None,
        ask: None,
        volume: None,
        change: None,
        change_pct: None,
    }
}

fn hello() -> ConnEvent {
    ConnEvent::Server(ServerMessage::Hello {
        epoch: 0,
        features: Vec::new(),
        protocol: hamster_shared::PROTOCOL_VERSION,
        server: "hamster-relay/test".into(),
        heartbeat_ms: 15_000,
        providers: vec![ProviderInfo { name: "sim".into(), state: ProviderState::Live, detail: None, since: 0 }],
    })
}

fn batch(state: &mut AppState, now_ms: i64, events: Vec<ConnEvent>) {
    state.apply(Action::Batch { events, now_ms });
}

fn ticks(state: &mut AppState, now_ms: i64, quotes: Vec<Quote>) {
    batch(state, now_ms, vec![ConnEvent::Server(ServerMessage::Quotes { quotes })]);
}

fn fresh() -> AppState {
    AppState::restored(default_watchlist(), vec![], 1_000)
}

#[wasm_bindgen_test(unsupported = test)]
fn default_watchlist_is_valid_and_complete() {
    let list = default_watchlist();
    assert_eq!(list.len(), DEFAULT_WATCHLIST.len());
    let state = fresh();
    assert_eq!(state.watchlist.len(), 8);
    assert_eq!(state.rows.len(), 8);
    assert_eq!(state.badge().kind, BadgeKind::Connecting);
}

#[wasm_bindgen_test(unsupported = test)]
fn restoring_dedupes_and_marks_cached() {
    let state = AppState::restored(
        vec![sym("AAPL"), sym("aapl"), sym("MSFT")],
        vec![quote("AAPL", 190.0, 5), quote("TSLA", 1.0, 5)],
        10,
    );
    assert_eq!(*state.watchlist, vec![sym("AAPL"), sym("MSFT")]);
    let row = &state.rows[&sym("AAPL")];
    assert!(row.cached);
    assert!(row.is_stale(10), "cached values are shown dimmed");
    assert!(!state.rows.contains_key(&sym("TSLA")), "unwatched cached quotes are dropped");
    assert_eq!(state.log.entries().len(), 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn quotes_update_rows_with_direction_and_stats() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    assert!(s.is_live());
    ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
    let first = s.rows[&sym("AAPL")].clone();
    assert_eq!(first.direction, Direction::Flat);
    ticks(&mut s, 2_300, vec![quote("AAPL", 191.0, 2_250), quote("MSFT", 400.0, 2_290)]);
    let row = &s.rows[&sym("AAPL")];
    assert_eq!(row.direction, Direction::Up);
    assert_eq!(row.flash_seq, 1);
    assert_eq!(row.spark.len(), 2);
    ticks(&mut s, 2_400, vec![quote("AAPL", 189.0, 2_390)]);
    let row = &s.rows[&sym("AAPL")];
    assert_eq!((row.direction, row.flash_seq), (Direction::Up, 1), "no second flash within FLASH_GAP_MS");
    ticks(&mut s, 2_300 + FLASH_GAP_MS, vec![quote("AAPL", 188.0, 2_290 + FLASH_GAP_MS)]);
    let row = &s.rows[&sym("AAPL")];
    assert_eq!((row.direction, row.flash_seq), (Direction::Down, 2));
    assert_eq!(s.stats.updates, 5);
    assert_eq!(s.stats.lag.len(), 5);
    assert_eq!(s.stats.lag.average(), Some((50.0 + 50.0 + 10.0 + 10.0 + 10.0) / 5.0));
}

#[wasm_bindgen_test(unsupported = test)]
fn untouched_rows_keep_their_rc() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050), quote("MSFT", 400.0, 2_050)]);
    let msft_before = s.rows[&sym("MSFT")].clone();
    let aapl_before = s.rows[&sym("AAPL")].clone();
    ticks(&mut s, 2_200, vec![quote("AAPL", 190.5, 2_150)]);
    assert!(Rc::ptr_eq(&msft_before, &s.rows[&sym("MSFT")]), "MSFT must not re-render");
    assert!(!Rc::ptr_eq(&aapl_before, &s.rows[&sym("AAPL")]));
}

#[wasm_bindgen_test(unsupported = test)]
fn stale_and_duplicate_quotes_are_ignored() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
    let before = s.rows[&sym("AAPL")].clone();
    ticks(&mut s, 2_200, vec![quote("AAPL", 100.0, 1_000), quote("AAPL", 190.0, 2_050)]);
    assert!(Rc::ptr_eq(&before, &s.rows[&sym("AAPL")]));
    assert_eq!(s.stats.updates, 1);
    ticks(&mut s, 2_200, vec![quote("TSLA", 100.0, 2_100)]);
    assert!(!s.rows.contains_key(&sym("TSLA")), "unwatched symbols are not added by quotes");
}

#[wasm_bindgen_test(unsupported = test)]
fn fresh_data_clears_cached_flag_even_when_older() {
    let mut s = AppState::restored(vec![sym("AAPL")], vec![quote("AAPL", 190.0, 5_000)], 10);
    batch(&mut s, 6_000, vec![hello()]);
    // A relay that restarted may hold an older value than our cache; it is still the live truth.
    batch(
        &mut s,
        6_100,
        vec![ConnEvent::Server(ServerMessage::Snapshot { quotes: vec![quote("AAPL", 180.0, 4_000)] })],
    );
    let row = &s.rows[&sym("AAPL")];
    assert!(!row.cached);
    assert_eq!(row.quote.as_ref().map(|q| q.price), Some(180.0));
    assert_eq!(s.stats.lag.len(), 0, "snapshots carry no lag");
    assert!(!s.row_is_stale(row));
    s.apply(Action::Clock { now_ms: 6_100 + STALE_AFTER_MS + 1 });
    assert!(s.row_is_stale(&s.rows[&sym("AAPL")]));
}

#[wasm_bindgen_test(unsupported = test)]
fn provider_down_dims_its_rows() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
    assert!(!s.row_is_stale(&s.rows[&sym("AAPL")]));
    batch(
        &mut s,
        2_200,
        vec![ConnEvent::Server(ServerMessage::Status {
            provider: "sim".into(),
            state: ProviderState::Down,
            detail: Some("auth failed".into()),
            since: 2_150,
        })],
    );
    assert!(s.row_is_stale(&s.rows[&sym("AAPL")]));
    assert!(s.log.entries().back().is_some_and(|e| e.level == LogLevel::Error && e.text.contains("auth failed")));
}

#[wasm_bindgen_test(unsupported = test)]
fn no_data_marks_a_silent_row_until_its_first_value() {
    let mut s = fresh();
    s.apply(Action::AddSymbol { symbol: sym("APPL"), now_ms: 1_500 });
    batch(&mut s, 2_000, vec![hello()]);
    let silent = ServerMessage::NoData { symbols: vec![sym("APPL"), sym("AAPL")], after_ms: 30_000 };
    batch(&mut s, 32_000, vec![ConnEvent::Server(silent)]);
    assert_eq!(s.rows[&sym("APPL")].no_data_ms, Some(30_000));
    assert!(s.log.entries().iter().any(|e| e.text.contains("no data for APPL")), "logged");
    ticks(&mut s, 33_000, vec![quote("APPL", 10.0, 32_900)]);
    assert_eq!(s.rows[&sym("APPL")].no_data_ms, None, "the first value ends it");
}

#[wasm_bindgen_test(unsupported = test)]
fn rejections_show_the_relays_reason() {
    let mut s = fresh();
    s.apply(Action::AddSymbol { symbol: sym("nosuch:AAPL"), now_ms: 1_500 });
    batch(
        &mut s,
        2_000,
        vec![
            hello(),
            ConnEvent::Server(ServerMessage::Subscribed {
                continuity: Vec::new(),
                id: None,
                symbols: vec![sym("AAPL")],
                rejected: vec![Rejection {
                    symbol: "nosuch:AAPL".into(),
                    code: ErrorCode::UnknownProvider,
                    message: "no provider named nosuch".into(),
                    suggestions: Vec::new(),
                }],
            }),
        ],
    );
    let refusal = s.rows[&sym("nosuch:AAPL")].refusal.clone();
    let expected = Refusal {
        code: ErrorCode::UnknownProvider,
        message: "no provider named nosuch".into(),
        suggestions: Vec::new(),
    };
    assert_eq!(refusal, Some(expected));
    assert!(s.log.entries().iter().any(|e| e.text.contains("rejected nosuch:AAPL")));
    assert_eq!(s.refused(), HashSet::from([sym("nosuch:AAPL")]));
    s.apply(Action::RemoveSymbol { symbol: sym("nosuch:AAPL"), now_ms: 2_100 });
    assert!(s.refused().is_empty(), "a removed symbol is no longer refused");
    s.apply(Action::AddSymbol { symbol: sym("nosuch:AAPL"), now_ms: 2_200 });
    assert!(s.refused().is_empty(), "added again, it is asked for again");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_suggestion_replaces_the_refused_symbol_in_place() {
    let mut s = fresh();
    s.apply(Action::AddSymbol { symbol: sym("binance:BTC/USDX"), now_ms: 1_500 });
    s.apply(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 1_500 });
    let refused = |symbol: &str, suggestions: &[&str]| {
        ConnEvent::Server(ServerMessage::Subscribed {
            continuity: Vec::new(),
            id: None,
            symbols: Vec::new(),
            rejected: vec![Rejection {
                symbol: symbol.into(),
                code: ErrorCode::UnknownSymbol,
                message: "binance has no instrument BTC/USDX; did you mean BTC/USDT?".into(),
                suggestions: suggestions.iter().map(|s| s.to_string()).collect(),
            }],
        })
    };
    batch(&mut s, 2_000, vec![hello(), refused("binance:BTC/USDX", &["binance:BTC/USDT", "no spaces allowed"])]);
    let refusal = s.rows[&sym("binance:BTC/USDX")].refusal.clone().expect("refused");
    assert_eq!(refusal.suggestions, [sym("binance:BTC/USDT")], "only valid symbols are offered");

    let (rev, at) = (s.watchlist_rev, s.watchlist.iter().position(|x| *x == sym("binance:BTC/USDX")));
    s.apply(Action::ReplaceSymbol { old: sym("binance:BTC/USDX"), new: sym("binance:BTC/USDT"), now_ms: 2_100 });
    assert_eq!(s.watchlist.iter().position(|x| *x == sym("binance:BTC/USDT")), at, "same place in the list");
    assert!(!s.rows.contains_key(&sym("binance:BTC/USDX")) && s.refused().is_empty());
    assert!(s.rows[&sym("binance:BTC/USDT")].refusal.is_none(), "a fresh row, waiting for data");
    assert_eq!(s.watchlist_rev, rev + 1);
    assert!(s.log.entries().iter().any(|e| e.text.contains("replaced binance:BTC/USDX with binance:BTC/USDT")));

    // A suggestion already watched: the refused row just goes. A symbol no longer listed: nothing happens.
    s.apply(Action::AddSymbol { symbol: sym("TSLAX"), now_ms: 2_200 });
    let len = s.watchlist.len();
    s.apply(Action::ReplaceSymbol { old: sym("TSLAX"), new: sym("TSLA"), now_ms: 2_300 });
    assert_eq!((s.watchlist.len(), s.watchlist.iter().filter(|x| **x == sym("TSLA")).count()), (len - 1, 1));
    let rev = s.watchlist_rev;
    s.apply(Action::ReplaceSymbol { old: sym("GONE"), new: sym("AAPL"), now_ms: 2_400 });
    assert_eq!(s.watchlist_rev, rev);
    assert_eq!(s.rows.len(), s.watchlist.len());
}

#[wasm_bindgen_test(unsupported = test)]
fn add_and_remove_symbols() {
    let mut s = fresh();
    let rev = s.watchlist_rev;
    s.apply(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 2_000 });
    s.apply(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 2_000 });
    assert_eq!(s.watchlist.len(), 9);
    assert_eq!(s.watchlist.last(), Some(&sym("TSLA")));
    assert_eq!(s.watchlist_rev, rev + 1);
    s.apply(Action::RemoveSymbol { symbol: sym("AAPL"), now_ms: 2_100 });
    assert!(!s.watchlist.contains(&sym("AAPL")));
    assert!(!s.rows.contains_key(&sym("AAPL")));
    s.apply(Action::RemoveSymbol { symbol: sym("AAPL"), now_ms: 2_100 });
    assert_eq!(s.watchlist_rev, rev + 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn badge_follows_the_connection() {
    let mut s = fresh();
    assert_eq!(s.badge().kind, BadgeKind::Connecting);
    batch(&mut s, 2_000, vec![hello()]);
    assert_eq!(s.badge(), Badge { kind: BadgeKind::Live, label: "Live".into(), detail: None, as_of: None });
    batch(&mut s, 3_000, vec![ConnEvent::Closed { reason: "closed (1006)".into(), attempt: 1, retry_in_ms: 2_400 }]);
    let badge = s.badge();
    assert_eq!(badge.kind, BadgeKind::Reconnecting);
    assert_eq!(badge.label, "Reconnecting");
    assert_eq!(badge.detail.as_deref(), Some("attempt 1, next try in 3 s"));
    s.apply(Action::Clock { now_ms: 4_000 });
    assert_eq!(s.badge().detail.as_deref(), Some("attempt 1, next try in 2 s"));
    batch(&mut s, 6_000, vec![ConnEvent::RestFailed("connection refused".into())]);
    assert_eq!(s.badge().kind, BadgeKind::Offline);
    assert_eq!(s.badge().label, "Offline – no data yet");
    batch(
        &mut s,
        9_000,
        vec![ConnEvent::RestQuotes(QuotesResponse { quotes: vec![quote("AAPL", 1.0, 8_000)], pending: vec![] })],
    );
    assert_eq!(s.badge().kind, BadgeKind::Fallback);
    assert_eq!(s.rows[&sym("AAPL")].quote.as_ref().map(|q| q.price), Some(1.0));
    batch(&mut s, 9_500, vec![ConnEvent::Connecting { attempt: 2 }, hello()]);
    assert_eq!(s.badge().kind, BadgeKind::Live);
    assert_eq!(s.rest, RestHealth::Idle);
    assert_eq!(s.stats.reconnects, 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn offline_with_cache_says_so() {
    let mut s = AppState::restored(vec![sym("AAPL")], vec![quote("AAPL", 190.0, 5)], 10);
    batch(
        &mut s,
        100,
        vec![
            ConnEvent::Closed { reason: "refused".into(), attempt: 1, retry_in_ms: 100 },
            ConnEvent::RestFailed("refused".into()),
        ],
    );
    let badge = s.badge();
    assert_eq!(badge.kind, BadgeKind::Offline);
    assert_eq!(badge.label, "Offline – showing cached data");
}

#[wasm_bindgen_test(unsupported = test)]
fn rest_results_are_ignored_while_live() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    batch(
        &mut s,
        2_100,
        vec![
            ConnEvent::RestFailed("late".into()),
            ConnEvent::RestQuotes(QuotesResponse { quotes: vec![quote("AAPL", 1.0, 2_000)], pending: vec![] }),
        ],
    );
    assert_eq!(s.badge().kind, BadgeKind::Live);
    assert!(s.rows[&sym("AAPL")].quote.is_none());
}

#[wasm_bindgen_test(unsupported = test)]
fn log_is_a_ring_of_100() {
    let mut s = fresh();
    for i in 0..250 {
        s.apply(Action::Warn { text: format!("event {i}"), now_ms: 2_000 + i });
    }
    assert_eq!(s.log.entries().len(), LOG_CAPACITY);
    assert_eq!(s.log.entries().back().map(|e| e.text.as_str()), Some("event 249"));
    assert_eq!(s.log.entries().front().map(|e| e.text.as_str()), Some("event 150"));
    let ids: Vec<u64> = s.log.entries().iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids stay unique and ordered");
}

#[wasm_bindgen_test(unsupported = test)]
fn history_seeds_the_sparkline_and_keeps_newer_live_points() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 10_000, vec![quote("AAPL", 200.0, 9_999)]);
    let ticks_in: Vec<Tick> = (0..100).map(|i| Tick { ts: i * 10, price: i as f64 }).collect();
    s.apply(Action::History(HistoryResponse {
        symbol: sym("AAPL"),
        ticks: ticks_in,
        candles: vec![],
        tf: Default::default(),
    }));
    let spark = &s.rows[&sym("AAPL")].spark;
    assert_eq!(spark.len(), SPARK_POINTS);
    assert_eq!(spark.back().map(|p| p.price), Some(200.0));
    assert_eq!(spark.front().map(|p| p.price), Some(41.0));
    assert!(spark.iter().zip(spark.iter().skip(1)).all(|(a, b)| a.ts < b.ts));
}

#[wasm_bindgen_test(unsupported = test)]
fn provider_status_is_logged_once_per_change() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    let status =
        |state| ConnEvent::Server(ServerMessage::Status { provider: "sim".into(), state, detail: None, since: 1 });
    let before = s.log.entries().len();
    batch(&mut s, 2_100, vec![status(ProviderState::Live)]);
    assert_eq!(s.log.entries().len(), before, "hello already said sim is live");
    batch(&mut s, 2_200, vec![status(ProviderState::Reconnecting)]);
    assert_eq!(s.log.entries().len(), before + 1);
    assert_eq!(s.providers["sim"].state, ProviderState::Reconnecting);
}

#[wasm_bindgen_test(unsupported = test)]
fn channel_events_fill_their_row() {
    let mut s = fresh();
    s.apply(Action::AddSymbol { symbol: sym("uw:flow-alerts"), now_ms: 1_500 });
    let event = |n: u32| {
        ConnEvent::Server(ServerMessage::Event {
            seq: None,
            channel: sym("uw:FLOW-ALERTS"),
            payload: serde_json::json!({ "ticker": "AAPL", "n": n, "note": "é".repeat(300) }),
            ts: 1_900 + i64::from(n),
        })
    };
    batch(&mut s, 2_000, vec![hello(), event(1), event(2)]);
    let row = &s.rows[&sym("uw:FLOW-ALERTS")];
    assert_eq!(row.events, 2);
    let last = row.last_event.clone().expect("an event");
    assert_eq!(last.ts, 1_902);
    assert!(last.preview.starts_with(r#"{"n":2"#) || last.preview.contains(r#""n":2"#), "{}", last.preview);
    assert_eq!(last.preview.chars().count(), EVENT_PREVIEW_CHARS + 1, "cut with an ellipsis");
    assert!(!s.row_is_stale(row), "channels have no price to go stale");
    assert_eq!(s.log.entries().iter().filter(|e| e.text.contains("first event")).count(), 1);
    assert_eq!(s.stats.updates, 0, "events are not quote updates");
}

#[wasm_bindgen_test(unsupported = test)]
fn reducer_leaves_the_previous_state_untouched() {
    let s = Rc::new(fresh());
    let next = s.clone().reduce(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 5 });
    assert_eq!(s.watchlist.len(), 8);
    assert_eq!(next.watchlist.len(), 9);
}

#[wasm_bindgen_test(unsupported = test)]
fn cache_export_follows_watchlist_order() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 2_100, vec![quote("MSFT", 400.0, 2_050), quote("AAPL", 190.0, 2_050)]);
    let cached: Vec<String> = s.quotes_to_cache().iter().map(|q| q.symbol.to_string()).collect();
    assert_eq!(cached, ["AAPL", "MSFT"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_resume_applies_recovered_ticks_in_order_and_says_what_was_missed() {
    let mut s = fresh();
    batch(&mut s, 2_000, vec![hello()]);
    ticks(&mut s, 2_100, vec![quote("AAPL", 100.0, 2_000)]);
    let continuity = vec![
        hamster_shared::Continuity { symbol: sym("AAPL"), recovered: 2, gap: false, missed: None },
        hamster_shared::Continuity { symbol: sym("MSFT"), recovered: 0, gap: true, missed: Some(40) },
    ];
    batch(
        &mut s,
        5_000,
        vec![
            ConnEvent::Server(ServerMessage::Subscribed {
                id: None,
                symbols: vec![sym("AAPL"), sym("MSFT")],
                rejected: vec![],
                continuity,
            }),
            ConnEvent::Server(ServerMessage::Recovered {
                quotes: vec![quote("AAPL", 101.0, 3_000), quote("AAPL", 102.0, 4_000)],
            }),
        ],
    );
    assert_eq!(s.rows[&sym("AAPL")].quote.as_ref().map(|q| q.price), Some(102.0), "the newest recovered tick");
    let last = s.log.entries().back().map(|e| (e.level, e.text.clone()));
    assert_eq!(last, Some((LogLevel::Warn, "resynced, 40 updates missed on MSFT; 2 recovered".to_owned())));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_value_that_was_already_old_when_it_arrived_is_stale_at_once() {
    let mut s = fresh();
    batch(&mut s, 100_000, vec![hello()]);
    // The relay's cached last value of a symbol that stopped trading two minutes ago.
    ticks(&mut s, 100_000, vec![quote("AAPL", 190.0, 100_000 - 120_000)]);
    assert!(s.row_is_stale(&s.rows[&sym("AAPL")]), "old on arrival");
    ticks(&mut s, 100_050, vec![quote("MSFT", 400.0, 100_000)]);
    assert!(!s.row_is_stale(&s.rows[&sym("MSFT")]), "a current value is fresh");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_fast_symbol_goes_stale_after_a_few_of_its_usual_intervals_not_fifteen_seconds() {
    let mut s = fresh();
    batch(&mut s, 10_000, vec![hello()]);
    for i in 0..20 {
        ticks(&mut s, 10_000 + i * 250, vec![quote("BTC/USD", 60_000.0 + i as f64, 10_000 + i * 250)]);
    }
    let row = &s.rows[&sym("BTC/USD")];
    assert_eq!(row.stale_after_ms(), row::MIN_STALE_MS, "4 ticks/s: five intervals is under the floor");
    let last = 10_000 + 19 * 250;
    s.apply(Action::Clock { now_ms: last + row::MIN_STALE_MS - 100 });
    assert!(!s.row_is_stale(&s.rows[&sym("BTC/USD")]));
    s.apply(Action::Clock { now_ms: last + row::MIN_STALE_MS + 100 });
    assert!(s.row_is_stale(&s.rows[&sym("BTC/USD")]), "stale long before {STALE_AFTER_MS} ms");
}

#[wasm_bindgen_test(unsupported = test)]
fn rows_dim_the_moment_the_connection_is_not_live_and_the_badge_says_as_of_when() {
    let mut s = fresh();
    batch(&mut s, 10_000, vec![hello()]);
    ticks(&mut s, 10_000, vec![quote("AAPL", 190.0, 9_990)]);
    assert!(!s.row_is_stale(&s.rows[&sym("AAPL")]));
    assert_eq!(s.badge().as_of, None, "live data needs no date");
    batch(&mut s, 10_500, vec![ConnEvent::Closed { reason: "closed (1006)".into(), attempt: 1, retry_in_ms: 2_000 }]);
    assert!(s.row_is_stale(&s.rows[&sym("AAPL")]), "dimmed at once, not 15 s later");
    assert_eq!(s.badge().as_of, Some(9_990), "the newest value on screen");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_silent_connection_shows_stalled_long_before_it_is_given_up() {
    let mut s = fresh();
    batch(&mut s, 10_000, vec![hello()]);
    ticks(&mut s, 10_000, vec![quote("AAPL", 190.0, 10_000)]);
    // Heartbeat 15 s: the page's ping goes out every 7.5 s and is answered at once.
    s.apply(Action::Clock { now_ms: 10_000 + 7_500 + view::STALL_GRACE_MS - 100 });
    assert_eq!(s.badge().kind, BadgeKind::Live);
    s.apply(Action::Clock { now_ms: 10_000 + 7_500 + view::STALL_GRACE_MS + 100 });
    assert_eq!(s.badge().kind, BadgeKind::Stalled, "not 30 s of Live from a frozen relay");
    assert!(s.row_is_stale(&s.rows[&sym("AAPL")]));
    batch(&mut s, 21_000, vec![ConnEvent::Server(ServerMessage::Pong { id: None, ts: None })]);
    assert_eq!(s.badge().kind, BadgeKind::Live, "any frame ends the stall");
}

#[wasm_bindgen_test(unsupported = test)]
fn simulated_data_is_labelled() {
    let mut s = fresh();
    assert!(!s.simulated());
    batch(&mut s, 10_000, vec![hello()]);
    assert!(s.simulated(), "the relay runs the simulator");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_watchlist_saved_by_another_tab_is_adopted_keeping_the_rows_it_shares() {
    let mut s = fresh();
    batch(&mut s, 10_000, vec![hello()]);
    ticks(&mut s, 10_000, vec![quote("AAPL", 190.0, 10_000)]);
    let rev = s.watchlist_rev;
    s.apply(Action::AdoptWatchlist { symbols: vec![sym("AAPL"), sym("TSLA")], now_ms: 11_000 });
    assert_eq!(*s.watchlist, vec![sym("AAPL"), sym("TSLA")]);
    assert_eq!(s.rows.len(), 2);
    assert_eq!(s.rows[&sym("AAPL")].quote.as_ref().map(|q| q.price), Some(190.0), "kept with its price");
    assert!(s.watchlist_rev > rev, "saved (the same list: no event back)");
    let rev = s.watchlist_rev;
    s.apply(Action::AdoptWatchlist { symbols: vec![sym("AAPL"), sym("TSLA")], now_ms: 12_000 });
    assert_eq!(s.watchlist_rev, rev, "an unchanged list changes nothing");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_row_says_where_its_value_came_from_and_how_old_it_may_be() {
    let mut row = Row::new(sym("AAPL"));
    assert_eq!(row.provenance(0), None, "no value, nothing to vouch for");
    row.apply_quote(quote("AAPL", 1.0, 1_700_000_000_000), 1_700_000_000_000);
    let first = row.provenance(0).expect("a value has a provenance");
    assert!(first.contains("from sim as of 22:13:20"), "{first}");
    assert!(first.contains("not yet known, stale after 15.0 s"), "{first}");
    row.apply_quote(quote("AAPL", 1.1, 1_700_000_000_500), 1_700_000_000_500);
    let second = row.provenance(0).expect("a value has a provenance");
    assert!(second.contains("usually every 0.5 s"), "{second}");
}
