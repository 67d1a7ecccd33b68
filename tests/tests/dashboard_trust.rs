//! The dashboard vouches only for what it knows, end to end in headless Chromium against the real relay: a
//! SIMULATED label over simulated data, no 404 for the optional `config.json`, an error instead of a silently
//! truncated symbol, a frozen relay shown as stalled (rows dimmed) long before the connection is given up, rows
//! dimmed with "prices as of" the moment the relay is gone, a refused symbol's history asked for once, and two
//! tabs that keep each other's watchlist changes.
//!
//! The tests take turns (one browser at a time), like the other dashboard tests.

use std::time::Duration;

use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::Relay;
use serde::Deserialize;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const VIEW_JS: &str = r#"
const badge = document.querySelector('[data-testid="connection-status"]');
const rows = [...document.querySelectorAll('[data-testid="quote-row"]')];
const asOf = document.querySelector('[data-testid="as-of"]');
return {
    state: badge ? badge.dataset.state : null,
    rows: rows.map(r => r.dataset.symbol),
    priced: rows.filter(r => /[0-9]/.test((r.querySelector('[data-testid="price"]') || {}).textContent || '')).length,
    dimmed: rows.filter(r => r.classList.contains('stale')).length,
    as_of: asOf ? asOf.textContent.trim() : null,
    simulated: !!document.querySelector('[data-testid="simulated"]'),
    input_error: (document.querySelector('#symbol-error') || {}).textContent || '',
};
"#;

#[derive(Debug, Deserialize)]
struct View {
    state: Option<String>,
    rows: Vec<String>,
    priced: usize,
    dimmed: usize,
    as_of: Option<String>,
    simulated: bool,
    input_error: String,
}

async fn view(b: &Browser) -> Option<View> {
    serde_json::from_value(b.client().execute(VIEW_JS, vec![]).await.ok()?).ok()
}

async fn wait_view(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&View) -> bool) -> View {
    b.wait_for(what, limit, || async { view(b).await.filter(|v| pred(v)) }).await
}

async fn live(b: &Browser) -> View {
    wait_view(b, "live with every row priced", Duration::from_secs(30), |v| {
        v.state.as_deref() == Some("live") && !v.rows.is_empty() && v.priced == v.rows.len()
    })
    .await
}

fn start(extra: &[&str]) -> Relay {
    let dist = dist_dir().to_string_lossy().into_owned();
    let mut args = vec!["--static-dir", &dist];
    args.extend_from_slice(extra);
    Relay::start(&args)
}

#[tokio::test]
async fn simulated_data_is_labelled_and_the_optional_config_is_there() {
    let _turn = SERIAL.lock().await;
    let relay = start(&[]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    let v = live(&b).await;
    assert!(v.simulated, "the SIMULATED label is shown over simulator prices");
    let (status, config): (u16, serde_json::Value) = relay.get_json("/config.json").await;
    assert_eq!((status, config), (200, serde_json::json!({})), "shipped empty: the page never gets a 404 for it");
    b.close().await;
}

#[tokio::test]
async fn a_symbol_longer_than_allowed_is_refused_not_truncated() {
    let _turn = SERIAL.lock().await;
    let relay = start(&[]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    let before = live(&b).await.rows.len();
    b.type_into("[data-testid=\"symbol-input\"]", &"A".repeat(33)).await;
    b.click("[data-testid=\"add-symbol\"]").await;
    let v = wait_view(&b, "an input error", Duration::from_secs(5), |v| !v.input_error.is_empty()).await;
    assert!(v.input_error.contains("longer than 32"), "{}", v.input_error);
    assert_eq!(v.rows.len(), before, "nothing was added, least of all a 32-character cut of it");
    b.close().await;
}

#[tokio::test]
async fn a_frozen_relay_shows_stalled_with_rows_dimmed_long_before_the_connection_is_given_up() {
    let _turn = SERIAL.lock().await;
    // Heartbeat 10 s: the page gives a silent socket up after 20 s; it should say "stalled" after about 8 s.
    let relay = start(&["--heartbeat-ms", "10000"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    live(&b).await;
    relay.signal(libc::SIGSTOP);
    let frozen = std::time::Instant::now();
    let v = wait_view(&b, "a stalled badge", Duration::from_secs(30), |v| v.state.as_deref() != Some("live")).await;
    let after = frozen.elapsed();
    relay.signal(libc::SIGCONT);
    println!(
        "badge {:?} {:.1} s after the relay froze; {} of {} rows dimmed",
        v.state,
        after.as_secs_f64(),
        v.dimmed,
        v.rows.len()
    );
    assert_eq!(v.state.as_deref(), Some("stalled"), "{v:?}");
    assert!(after < Duration::from_secs(20), "before the socket is given up: {after:?}");
    assert_eq!(v.dimmed, v.rows.len(), "every row dimmed with the badge");
    assert!(v.as_of.is_some(), "and the badge says how old the prices are");
    live(&b).await;
    b.close().await;
}

#[tokio::test]
async fn when_the_relay_goes_away_every_row_dims_at_once_and_the_badge_says_as_of_when() {
    let _turn = SERIAL.lock().await;
    let mut relay = start(&["--heartbeat-ms", "10000"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    let rows = live(&b).await.rows.len();
    relay.kill();
    let v =
        wait_view(&b, "the badge to leave live", Duration::from_secs(15), |v| v.state.as_deref() != Some("live")).await;
    assert_eq!(v.dimmed, rows, "dimmed with the badge, not 15 s later: {v:?}");
    let as_of = v.as_of.unwrap_or_default();
    assert!(as_of.contains("as of") && as_of.contains(':'), "{as_of:?}");
    b.close().await;
}

#[tokio::test]
async fn a_refused_symbols_history_is_asked_for_once_not_on_every_watchlist_change() {
    let _turn = SERIAL.lock().await;
    let relay = start(&[]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    live(&b).await;
    // The simulator has no price level for FOO: the relay refuses it.
    for symbol in ["FOO/USD", "TSLA", "COIN", "AMD"] {
        b.type_into("[data-testid=\"symbol-input\"]", symbol).await;
        b.click("[data-testid=\"add-symbol\"]").await;
        wait_view(&b, &format!("{symbol} added"), Duration::from_secs(10), |v| v.rows.iter().any(|r| r == symbol))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let asked: usize = b
        .eval(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/history/FOO')).length;",
            vec![],
        )
        .await;
    assert!(asked <= 1, "history of the refused symbol asked for {asked} times");
    b.close().await;
}

#[tokio::test]
async fn two_tabs_keep_each_others_watchlist_changes() {
    let _turn = SERIAL.lock().await;
    let relay = start(&[]);
    let b = Browser::launch(1360, 900).await;
    let client = b.client();
    b.goto(&relay.http_url()).await;
    live(&b).await;
    let first = client.window().await.expect("window");
    let second = client.new_window(true).await.expect("a second tab").handle;
    client.switch_to_window(second.clone()).await.expect("switch");
    b.goto(&relay.http_url()).await;
    live(&b).await;

    // Each tab adds one symbol; neither may lose the other's.
    b.type_into("[data-testid=\"symbol-input\"]", "TSLA").await;
    b.click("[data-testid=\"add-symbol\"]").await;
    wait_view(&b, "TSLA in the second tab", Duration::from_secs(10), |v| v.rows.iter().any(|r| r == "TSLA")).await;
    client.switch_to_window(first).await.expect("switch");
    wait_view(&b, "TSLA adopted by the first tab", Duration::from_secs(10), |v| v.rows.iter().any(|r| r == "TSLA"))
        .await;
    b.type_into("[data-testid=\"symbol-input\"]", "COIN").await;
    b.click("[data-testid=\"add-symbol\"]").await;
    wait_view(&b, "COIN in the first tab", Duration::from_secs(10), |v| v.rows.iter().any(|r| r == "COIN")).await;
    client.switch_to_window(second).await.expect("switch");
    let v = wait_view(&b, "COIN adopted by the second tab", Duration::from_secs(10), |v| {
        v.rows.iter().any(|r| r == "COIN")
    })
    .await;
    assert!(v.rows.iter().any(|r| r == "TSLA"), "{:?}", v.rows);
    b.reload().await;
    let v = live(&b).await;
    assert!(v.rows.iter().any(|r| r == "TSLA") && v.rows.iter().any(|r| r == "COIN"), "saved: {:?}", v.rows);
    b.close().await;
}
