//! The dashboard on protocol 2, end to end in headless Chromium against the real relay: after its connection is
//! cut (a TCP reset from a proxy between page and relay, then refused reconnects), the page resumes where it
//! stopped and the relay sends every tick it missed, which the page reports; and a hidden tab asks for one
//! update per second per symbol, so it costs a fraction of a visible one, until it is shown again.
//!
//! The tests take turns (one browser at a time): they count deliveries, and parallel browsers would disturb that.

use std::time::{Duration, Instant};

use hamster_shared::api::ClientsResponse;
use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::proxy::FaultProxy;
use hamster_tests::{Relay, WsClient};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DEFAULT_SYMBOLS: [&str; 8] = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];
/// Symbols on the default watchlist.
const WATCHED: usize = DEFAULT_SYMBOLS.len();
const TICK_HZ: f64 = 20.0;

/// The page is live and every row has a price.
const LIVE_JS: &str = r#"
const badge = document.querySelector('[data-testid="connection-status"]');
const rows = [...document.querySelectorAll('[data-testid="quote-row"]')];
return !!badge && badge.dataset.state === 'live' && rows.length > 0
    && rows.every(r => { const p = r.querySelector('[data-testid="price"]'); return p && /[0-9]/.test(p.textContent); });
"#;

const LOG_JS: &str = r#"
return [...document.querySelectorAll('[data-testid="activity-log"] li')].map(li => li.textContent.trim());
"#;

/// Makes the page believe it was hidden or shown, the way a browser tells it: `document.hidden` and a
/// `visibilitychange` event.
const SET_HIDDEN_JS: &str = r#"
const hidden = arguments[0];
Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
document.dispatchEvent(new Event('visibilitychange'));
return true;
"#;

async fn open_live(b: &Browser, url: &str) {
    b.goto(url).await;
    b.wait_for("live with every row priced", Duration::from_secs(30), || async {
        b.client().execute(LIVE_JS, vec![]).await.ok()?.as_bool()?.then_some(())
    })
    .await;
}

/// Quotes the relay delivered to the page's socket (the only WebSocket client).
async fn delivered(relay: &Relay) -> u64 {
    let (_, clients): (u16, ClientsResponse) = relay.get_json("/api/clients").await;
    clients.clients.iter().filter(|c| c.transport.starts_with("ws")).map(|c| c.delivered).sum()
}

/// Quotes per second delivered to the page over `window`.
async fn delivery_rate(relay: &Relay, window: Duration) -> f64 {
    let before = delivered(relay).await;
    tokio::time::sleep(window).await;
    (delivered(relay).await - before) as f64 / window.as_secs_f64()
}

#[tokio::test]
async fn after_a_cut_connection_the_page_resumes_and_recovers_every_missed_tick() {
    let _turn = SERIAL.lock().await;
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", relay.port()).parse().expect("address")).await;
    // Another dashboard on the same relay keeps the symbols streaming while this one is cut off (alone, the relay
    // would unsubscribe upstream and there would be nothing to miss).
    let _other = WsClient::subscribed(&relay.ws_url(), &DEFAULT_SYMBOLS).await;
    let b = Browser::launch(1360, 900).await;
    open_live(&b, &format!("http://127.0.0.1:{}/", proxy.port())).await;

    // Cut the page off for two seconds while the prices keep moving on the relay.
    proxy.refuse_for(Duration::from_secs(2));
    assert!(proxy.reset() >= 1, "the page's socket went through the proxy");
    let cut_at = Instant::now();
    let log: Vec<String> = b
        .wait_for("a resync notice", Duration::from_secs(30), || async {
            let log: Vec<String> = serde_json::from_value(b.client().execute(LOG_JS, vec![]).await.ok()?).ok()?;
            log.iter().any(|l| l.contains("resynced")).then_some(log)
        })
        .await;
    let notice = log.iter().find(|l| l.contains("resynced")).expect("found above");
    println!("{notice} ({:.1} s after the cut)", cut_at.elapsed().as_secs_f64());
    assert!(notice.contains("none lost"), "everything was still held by the relay: {notice}");
    let recovered: u64 = notice
        .split_once("resynced:")
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a count in {notice:?}"));
    // Two seconds of 8 symbols at 20 ticks/s, minus whatever arrived before the reset landed.
    assert!(recovered >= 100, "{recovered} updates recovered: {notice}");
    b.close().await;
}

#[tokio::test]
async fn a_hidden_tab_receives_one_update_per_second_per_symbol_until_shown_again() {
    let _turn = SERIAL.lock().await;
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let b = Browser::launch(1360, 900).await;
    open_live(&b, &relay.http_url()).await;
    let window = Duration::from_secs(3);

    let visible = delivery_rate(&relay, window).await;
    let _: bool = b.eval(SET_HIDDEN_JS, vec![true.into()]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hidden = delivery_rate(&relay, window).await;
    let _: bool = b.eval(SET_HIDDEN_JS, vec![false.into()]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = delivery_rate(&relay, window).await;
    println!("quotes/s delivered to the page: visible {visible:.1}, hidden {hidden:.1}, shown again {shown:.1}");

    let full = WATCHED as f64 * TICK_HZ;
    assert!(visible > full * 0.6, "visible: {visible:.1}/s of {full}");
    assert!(hidden <= WATCHED as f64 * 1.5, "hidden: {hidden:.1}/s, at most about one per symbol per second");
    assert!(hidden >= WATCHED as f64 * 0.5, "hidden still gets every symbol's latest value: {hidden:.1}/s");
    assert!(shown > full * 0.6, "shown again: {shown:.1}/s");
    b.close().await;
}

#[tokio::test]
async fn rows_out_of_view_are_asked_for_at_a_low_rate() {
    let _turn = SERIAL.lock().await;
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let b = Browser::launch(1360, 900).await;
    // A hundred crypto crosses of currencies the simulator knows, saved as a returning user's watchlist.
    let coins = ["SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC", "BCH"];
    let fiats = ["EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SGD", "HKD", "KRW", "INR"];
    let list: Vec<String> = coins.iter().flat_map(|c| fiats.iter().map(move |f| format!("{c}/{f}"))).collect();
    b.goto(&format!("{}/healthz", relay.http_url())).await;
    let _: Option<bool> = b
        .eval(
            "localStorage.clear(); localStorage.setItem(arguments[0], arguments[1]); return null;",
            vec!["hamster.watchlist.v1".into(), serde_json::to_string(&list).expect("json").into()],
        )
        .await;
    b.goto(&relay.http_url()).await;
    // Rows out of view do not render their prices, so wait for the rows and the relay's side instead.
    b.wait_for("100 rows subscribed and live", Duration::from_secs(30), || async {
        let rows: usize =
            b.eval("return document.querySelectorAll('[data-testid=\"quote-row\"]').length;", vec![]).await;
        let (_, clients): (u16, ClientsResponse) = relay.get_json("/api/clients").await;
        (rows == list.len() && clients.clients.iter().any(|c| c.symbols == list.len())).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let rate = delivery_rate(&relay, Duration::from_secs(4)).await;
    let full = list.len() as f64 * TICK_HZ;
    println!("100 rows at 20 ticks/s, a screenful in view: {rate:.0} quotes/s delivered of {full:.0} offered");
    assert!(rate < full * 0.5, "rows out of view cost a fraction: {rate:.0}/s of {full:.0}");
    assert!(rate >= list.len() as f64 * 0.5, "every row still gets its latest value: {rate:.0}/s");
    b.close().await;
}
