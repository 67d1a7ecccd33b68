//! Price alerts end to end in headless Chromium against the real relay: an alert made from a row's bell fires
//! exactly once on the live stream, with a toast in the page's `role="alert"` region, a line in the log with the
//! triggering price, and a browser notification (permission granted through the DevTools protocol; the page's
//! `Notification` calls are observed by a wrapper that still makes the real one). Alerts survive a reload.
//!
//! The crossing test feeds the relay from the Twelve Data mock, whose sawtooth (100.00 to 100.99 by 0.01 every
//! 50 ms, then back) crosses any level in that range every five seconds. The simulator's random walk cannot promise
//! that: its return to a level has a long tail, and a wait for it ran out in CI.
//!
//! The cool-down of "every time" alerts, % moves and expiry are unit tests of `web/src/state/alerts.rs`.

use std::time::Duration;

use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::mocks::twelvedata::TwelveDataMock;
use hamster_tests::Relay;
use serde::Deserialize;
use serde_json::json;

/// Counts the page's notifications while still showing them.
const OBSERVE_NOTIFICATIONS_JS: &str = r#"
(() => {
    const Real = window.Notification;
    if (!Real) return;
    window.__notified = [];
    const Observed = function (title, options) {
        window.__notified.push({ title, body: options && options.body, tag: options && options.tag });
        return new Real(title, options);
    };
    Object.defineProperty(Observed, 'permission', { get: () => Real.permission });
    Observed.requestPermission = (...args) => Real.requestPermission(...args);
    window.Notification = Observed;
})();
"#;

const VIEW_JS: &str = r#"
const text = el => el ? el.textContent.trim() : '';
const btc = document.querySelector('[data-testid="quote-row"][data-symbol="BTC/USD"]');
return {
    live: (document.querySelector('[data-testid="connection-status"]') || {dataset: {}}).dataset.state === 'live',
    btc: btc ? text(btc.querySelector('[data-testid="price"]')) : '',
    level: (document.querySelector('[data-testid="alert-level"]') || {}).value || '',
    armed: document.querySelectorAll('[data-testid="alert-list"] li').length,
    log: [...document.querySelectorAll('[data-testid="alert-log"] li')].map(text),
    toast: text(document.querySelector('[role="alert"][data-testid="alert-toast"]')),
    notified: window.__notified || [],
};
"#;

#[derive(Debug, Deserialize)]
struct Notified {
    title: String,
    body: Option<String>,
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct View {
    live: bool,
    btc: String,
    level: String,
    armed: usize,
    log: Vec<String>,
    toast: String,
    notified: Vec<Notified>,
}

async fn view(b: &Browser) -> Option<View> {
    serde_json::from_value(b.client().execute(VIEW_JS, vec![]).await.ok()?).ok()
}

async fn wait_view(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&View) -> bool) -> View {
    b.wait_for(what, limit, || async { view(b).await.filter(|v| pred(v)) }).await
}

async fn set_alert(b: &Browser, kind: &str, level: &str) {
    let pick = "const [k, l] = arguments; const kind = document.querySelector('[data-testid=\"alert-kind\"]'); \
        kind.value = k; kind.dispatchEvent(new Event('change', { bubbles: true })); \
        document.querySelector('[data-testid=\"alert-level\"]').value = l; return true;";
    let _: bool = b.eval(pick, vec![json!(kind), json!(level)]).await;
    b.click("[data-testid=\"alert-create\"]").await;
}

#[tokio::test]
async fn an_alert_from_a_row_fires_exactly_once_with_toast_log_and_notification_and_survives_a_reload() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let mock = TwelveDataMock::start().await;
    let upstream = mock.relay_args();
    let mut args = vec!["--static-dir", &dist];
    args.extend(upstream.iter().map(String::as_str));
    let relay = Relay::start_with_env(0, &args, &[("TWELVE_DATA_API_KEY", "td-test-key")]);
    let b = Browser::launch(1360, 900).await;
    b.cdp("Browser.grantPermissions", json!({ "permissions": ["notifications"], "origin": relay.http_url() })).await;
    b.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": OBSERVE_NOTIFICATIONS_JS })).await;
    b.goto(&relay.http_url()).await;
    let v = wait_view(&b, "live with BTC/USD priced", Duration::from_secs(30), |v| {
        v.live && v.btc.chars().any(|c| c.is_ascii_digit())
    })
    .await;
    let price: f64 = v.btc.replace(',', "").parse().expect("a price");

    // The bell prefills the form with the row's symbol and a level just above its price.
    // The price the bell carried when clicked (the row keeps ticking, so read it in the same script as the click).
    let clicked: String = b
        .eval(
            "const bell = document.querySelector('[data-testid=\"quote-row\"][data-symbol=\"BTC/USD\"] \
             [data-testid=\"alert-bell\"]'); const p = bell.dataset.price; bell.click(); return p;",
            vec![],
        )
        .await;
    let clicked: f64 = clicked.parse().expect("the bell carries the row's price");
    let v = wait_view(&b, "the form prefilled", Duration::from_secs(5), |v| !v.level.is_empty()).await;
    let level: f64 = v.level.parse().expect("a level");
    assert!(level > clicked && level < clicked * 1.01, "just above {clicked}: {level}");
    let symbol: String = b.eval("return document.querySelector('[data-testid=\"alert-symbol\"]').value;", vec![]).await;
    assert_eq!(symbol, "BTC/USD", "the bell's symbol is chosen");

    // The cool-down field is not a controlled input: the panel re-renders with every tick, and what the user is
    // typing must survive those renders (it used to snap back to its initial 60).
    let cooldown = "[data-testid=\"alert-form\"] input[aria-label=\"Cool-down in seconds\"]";
    let initial: String = b.eval(&format!("return document.querySelector('{cooldown}').value;"), vec![]).await;
    assert_eq!(initial, "60", "the cool-down starts at a minute");
    b.type_into(cooldown, "15").await;
    let mut prices = vec![view(&b).await.map(|v| v.btc).unwrap_or_default()];
    while prices.len() < 4 {
        let last = prices[prices.len() - 1].clone();
        prices
            .push(wait_view(&b, "BTC/USD to tick while typing", Duration::from_secs(10), |v| v.btc != last).await.btc);
    }
    let typed: String = b.eval(&format!("return document.querySelector('{cooldown}').value;"), vec![]).await;
    assert_eq!(typed, "15", "typed text survives the ticks' re-renders");

    // A level inside the sawtooth, which crosses it upwards every five seconds and downwards on each drop back.
    let create = "const kind = document.querySelector('[data-testid=\"alert-kind\"]'); \
        kind.value = 'crosses'; kind.dispatchEvent(new Event('change', { bubbles: true })); \
        document.querySelector('[data-testid=\"alert-level\"]').value = '100.505'; \
        document.querySelector('[data-testid=\"alert-create\"]').click(); return true;";
    let _: bool = b.eval(create, vec![]).await;
    // At 20 ticks a second it may fire before a poll sees it armed.
    wait_view(&b, "the alert armed", Duration::from_secs(5), |v| v.armed == 1 || !v.log.is_empty()).await;
    let fired = wait_view(&b, "the alert to fire", Duration::from_secs(20), |v| !v.log.is_empty()).await;
    assert!(fired.log[0].contains("BTC/USD crossed"), "{:?}", fired.log);
    assert!(fired.toast.contains("BTC/USD crossed"), "announced in the role=alert region: {:?}", fired.toast);
    assert_eq!(fired.armed, 0, "a once-alert is done after firing: {fired:?}");

    // The sawtooth crosses the same level again within five seconds; it stays fired once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = view(&b).await.expect("view");
    assert_eq!(later.log.len(), 1, "{:?}", later.log);
    assert_eq!(later.notified.len(), 1, "one notification: {:?}", later.notified);
    let n = &later.notified[0];
    assert_eq!(n.title, "Hamster Terminal alert");
    assert!(n.body.as_deref().is_some_and(|body| body.contains("BTC/USD crossed")), "{n:?}");
    assert!(n.tag.as_deref().is_some_and(|t| t.starts_with("hamster-alert-")), "merged per alert by tag: {n:?}");

    // An alert that has not fired is kept across a reload.
    set_alert(&b, "above", &format!("{}", price * 10.0)).await;
    wait_view(&b, "the second alert armed", Duration::from_secs(5), |v| v.armed == 1).await;
    b.reload().await;
    wait_view(&b, "the alert restored after a reload", Duration::from_secs(30), |v| v.live && v.armed == 1).await;
    b.close().await;
}

/// Indicator signals from the form: the timeframe picker appears for them, EMA periods are checked, the alert is
/// listed in words, the page seeds the signal's candles from the relay's history, and it survives a reload.
/// Whether a signal fires on the crossing tick (and only then) is unit-tested in `web/src/state/alerts.rs`: a
/// relay has no 15 minutes of candles to offer a browser test.
#[tokio::test]
async fn an_indicator_alert_is_made_on_a_timeframe_and_seeded_from_history() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    wait_view(&b, "live with BTC/USD priced", Duration::from_secs(30), |v| {
        v.live && v.btc.chars().any(|c| c.is_ascii_digit())
    })
    .await;
    let pick = "const [k, tf, l] = arguments; const q = s => document.querySelector(`[data-testid=\"${s}\"]`); \
        const sym = q('alert-symbol'); sym.value = 'BTC/USD'; \
        const kind = q('alert-kind'); kind.value = k; kind.dispatchEvent(new Event('change', { bubbles: true })); \
        return new Promise(done => setTimeout(() => { const t = q('alert-tf'); if (!t) return done(false); \
        t.value = tf; t.dispatchEvent(new Event('change', { bubbles: true })); \
        setTimeout(() => { q('alert-level').value = l; q('alert-expiry').value = '30'; q('alert-create').click(); done(true); }, 100); }, 100));";
    let error = "return document.querySelector('[data-testid=\"alert-form\"] .input-error').textContent;";

    // Fast above slow is refused with a reason.
    let shown: bool = b.eval(pick, vec![json!("ema_up"), json!("5m"), json!("21/9")]).await;
    assert!(shown, "the timeframe picker appears for an indicator kind");
    b.wait_for("the periods refused", Duration::from_secs(5), || async {
        let text: String = b.eval(error, vec![]).await;
        text.contains("fast below slow").then_some(())
    })
    .await;
    assert_eq!(view(&b).await.expect("view").armed, 0);

    let _: bool = b.eval(pick, vec![json!("ema_up"), json!("5m"), json!("9/21")]).await;
    let listed = "return [...document.querySelectorAll('[data-testid=\"alert-list\"] li')].map(e => e.textContent);";
    let armed: Vec<String> = b
        .wait_for("the alert listed", Duration::from_secs(5), || async {
            let items: Vec<String> = b.eval(listed, vec![]).await;
            (!items.is_empty()).then_some(items)
        })
        .await;
    assert!(armed[0].starts_with("BTC/USD EMA(9) crossed above EMA(21) on 5m"), "{armed:?}");
    assert!(armed[0].contains(" until "), "it expires in 30 minutes: {armed:?}");
    let seeded = "return performance.getEntriesByType('resource').map(e => e.name)\
        .filter(n => n.includes('/api/history/BTC%2FUSD') && n.includes('tf=5m')).length;";
    b.wait_for("the 5m candles fetched to seed the signal", Duration::from_secs(10), || async {
        let n: u64 = b.eval(seeded, vec![]).await;
        (n >= 1).then_some(())
    })
    .await;

    b.reload().await;
    let restored: Vec<String> = b
        .wait_for("the indicator alert restored after a reload", Duration::from_secs(30), || async {
            let items: Vec<String> = b.eval(listed, vec![]).await;
            (!items.is_empty()).then_some(items)
        })
        .await;
    assert_eq!(restored, armed);
    b.close().await;
}
