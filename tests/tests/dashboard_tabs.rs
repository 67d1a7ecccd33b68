//! Several tabs of the dashboard in one browser share one relay connection, end to end: the real relay serves
//! the built page to headless Chromium, which opens it in two tabs. The relay's `/api/status` counts its
//! clients, so "one socket" is what the relay itself sees, not what the page says about itself.
//!
//! The first tab leads (`data-testid="tab-role"`), the second follows and opens no socket; both tabs' rows
//! tick; a symbol added in the follower ticks there (the leader subscribed it); an alert set in the follower
//! fires once for the browser (announced in one tab, logged in both). When the leader tab closes, the other
//! one takes over: it leads, ticks again, and the relay still has one client. The takeover time is printed
//! (`-- --nocapture`); the bound asserted is generous, the figure itself is a measurement, not a target.

use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use hamster_shared::api::StatusResponse;
use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::Relay;
use serde::Deserialize;

const VIEW_JS: &str = r#"
const text = el => el ? el.textContent.trim() : '';
const prices = {};
for (const r of document.querySelectorAll('[data-testid="quote-row"]')) {
    prices[r.dataset.symbol] = text(r.querySelector('[data-testid="price"]'));
}
const role = document.querySelector('[data-testid="tab-role"]');
const toast = document.querySelector('[role="alert"][data-testid="alert-toast"]');
return {
    live: (document.querySelector('[data-testid="connection-status"]') || {dataset: {}}).dataset.state === 'live',
    role: role ? role.dataset.role : '',
    prices,
    armed: document.querySelectorAll('[data-testid="alert-list"] li').length,
    log: [...document.querySelectorAll('[data-testid="alert-log"] li')].map(text),
    toast: text(toast),
    announced: toast ? Number(toast.dataset.announced || 0) : 0,
};
"#;

#[derive(Debug, Clone, Deserialize)]
struct View {
    live: bool,
    role: String,
    prices: std::collections::HashMap<String, String>,
    armed: usize,
    log: Vec<String>,
    toast: String,
    announced: u64,
}

impl View {
    fn price(&self, symbol: &str) -> Option<f64> {
        self.prices.get(symbol)?.replace(',', "").parse().ok()
    }
}

async fn view(b: &Browser) -> Option<View> {
    serde_json::from_value(b.client().execute(VIEW_JS, vec![]).await.ok()?).ok()
}

async fn wait_view(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&View) -> bool) -> View {
    b.wait_for(what, limit, || async { view(b).await.filter(|v| pred(v)) }).await
}

async fn switch(b: &Browser, to: &WindowHandle) {
    b.client().switch_to_window(to.clone()).await.expect("switch tabs");
}

/// Waits until the current tab shows `symbol` at a price other than the one it shows now: the row ticks.
async fn ticks(b: &Browser, symbol: &str, limit: Duration) {
    let first = wait_view(b, &format!("{symbol} priced"), limit, |v| v.price(symbol).is_some()).await;
    let before = first.price(symbol);
    wait_view(b, &format!("{symbol} ticking"), limit, |v| v.price(symbol).is_some() && v.price(symbol) != before).await;
}

async fn clients(relay: &Relay) -> usize {
    let (_, status): (u16, StatusResponse) = relay.get_json("/api/status").await;
    status.clients
}

/// The relay has exactly one client now, and still after a while (a second socket would have had time to open).
async fn one_client(relay: &Relay, when: &str) {
    relay.wait_status(&format!("one client {when}"), |s| s.clients == 1).await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(clients(relay).await, 1, "the relay's clients {when}");
    }
}

#[tokio::test]
async fn two_tabs_share_one_socket_fire_alerts_once_and_the_follower_takes_over_when_the_leader_closes() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let b = Browser::launch(1360, 900).await;
    let client = b.client();
    let long = Duration::from_secs(30);

    b.goto(&relay.http_url()).await;
    wait_view(&b, "the first tab live", long, |v| v.live && v.price("BTC/USD").is_some()).await;
    let first = client.window().await.expect("window");
    let second = client.new_window(true).await.expect("a second tab").handle;
    switch(&b, &second).await;
    b.goto(&relay.http_url()).await;
    wait_view(&b, "the second tab live", long, |v| v.live && v.price("BTC/USD").is_some()).await;

    one_client(&relay, "with two tabs open").await;
    let v = view(&b).await.expect("view");
    assert_eq!(v.role, "follower", "the second tab follows");
    ticks(&b, "BTC/USD", long).await;
    switch(&b, &first).await;
    let v = view(&b).await.expect("view");
    assert_eq!(v.role, "leader", "the first tab leads");
    ticks(&b, "BTC/USD", long).await;

    // A symbol added in the follower ticks there: the leader subscribed it for that tab.
    switch(&b, &second).await;
    b.type_into("[data-testid=\"symbol-input\"]", "TSLA").await;
    b.click("[data-testid=\"add-symbol\"]").await;
    ticks(&b, "TSLA", long).await;
    one_client(&relay, "after the follower added a symbol").await;

    // An alert set in the follower fires once for the browser. What it waits for is a move of a ten-thousandth of
    // a percent within five minutes, which the next tick makes: a level for the walk to cross, as
    // `dashboard_alerts` uses, made this wait time out now and then (the walk need not come back to a level within
    // the minute), and crossing itself is tested there.
    let create = "document.querySelector('[data-testid=\"alert-symbol\"]').value = 'BTC/USD'; \
        const kind = document.querySelector('[data-testid=\"alert-kind\"]'); \
        kind.value = 'move'; kind.dispatchEvent(new Event('change', { bubbles: true })); \
        document.querySelector('[data-testid=\"alert-level\"]').value = '0.0001'; \
        document.querySelector('[data-testid=\"alert-create\"]').click(); return true;";
    let _: bool = b.eval(create, vec![]).await;
    // Watched from the follower (the tab in front), so a follower that fired alerts itself would be first.
    let fired = wait_view(&b, "the alert to fire", Duration::from_secs(60), |v| !v.log.is_empty()).await;
    assert!(fired.log[0].contains("BTC/USD moved"), "{:?}", fired.log);
    wait_view(&b, "the alert disarmed in the follower", Duration::from_secs(10), |v| v.armed == 0).await;
    // More ticks move the price again; still one announcement in all.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let follower = view(&b).await.expect("view");
    switch(&b, &first).await;
    let leader = wait_view(&b, "the leader's log", Duration::from_secs(10), |v| !v.log.is_empty()).await;
    assert_eq!((leader.log.len(), follower.log.len()), (1, 1), "logged once in each tab");
    assert_eq!(leader.announced + follower.announced, 1, "announced once: {leader:?} / {follower:?}");
    assert!(follower.toast.is_empty(), "the follower shows no second toast: {:?}", follower.toast);

    // The leader goes; the follower takes over.
    client.close_window().await.expect("close the leading tab");
    let closed = Instant::now();
    switch(&b, &second).await;
    wait_view(&b, "the remaining tab to lead", long, |v| v.role == "leader").await;
    let lead_after = closed.elapsed();
    // The old socket went with its tab: any tick from now on came through the new leader's own socket.
    ticks(&b, "BTC/USD", long).await;
    let ticking_after = closed.elapsed();
    ticks(&b, "TSLA", long).await;
    wait_view(&b, "the remaining tab live", long, |v| v.live).await;
    println!(
        "takeover: leading {} ms and ticking {} ms after the leading tab closed",
        lead_after.as_millis(),
        ticking_after.as_millis()
    );
    one_client(&relay, "after the takeover").await;
    b.close().await;
}
