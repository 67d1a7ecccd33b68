//! Trading from the dashboard end to end: the real relay (simulator, paper broker, no key) serves the built
//! dashboard to headless Chromium. A market buy from a watchlist row's ticket fills, the position appears in the
//! portfolio panel marked with the page's own quote stream (its price is the row's price, its P&L moves with the
//! ticks), a fill toast and a fills-history line appear; a limit order far below the market stays open, its
//! replace button moves its limit and its cancel button cancels it; the form refuses a limit order without a
//! price before sending anything; an order beyond the buying power comes back rejected by the relay with its code
//! next to the quantity field; the detail view opens the ticket too; and the panel's reset starts the account
//! over. A screenshot goes to `target/e2e/portfolio.png`.
//!
//! The same screens then trade on Alpaca through the relay (`--broker alpaca` against the Alpaca Trading API mock):
//! a buy from the ticket fills there and shows up as a position whose P&L moves with the page's ticks, a limit
//! order is cancelled, and Alpaca's buying-power refusal lands next to the quantity.
//!
//! The panel exposes its figures as `data-value` attributes, which is what the test reads.

use std::time::Duration;

use hamster_tests::browser::{artifact_dir, dist_dir, Browser};
use hamster_tests::mocks::alpaca_trading::AlpacaTradingMock;
use hamster_tests::Relay;
use serde::Deserialize;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);
const STARTING_CASH: f64 = 100_000.0;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Panel {
    equity: Option<f64>,
    cash: Option<f64>,
    positions: Vec<(String, f64, f64, f64)>,
    /// The AAPL watchlist row's price at the same moment.
    row_price: Option<f64>,
    open_orders: Vec<(String, String)>,
    fills: u32,
    toasts: Vec<(String, String)>,
    ticket: Option<String>,
    ticket_state: Option<String>,
    errors: Vec<(String, String)>,
}

const PANEL_JS: &str = r#"
const q = (s, root) => (root || document).querySelector(s);
const all = (s, root) => [...(root || document).querySelectorAll(s)];
const num = (e) => (e && e.dataset.value != null ? Number(e.dataset.value) : null);
const ticket = q('[data-testid="order-ticket"]');
const status = q('[data-testid="ticket-status"]');
return {
    equity: num(q('[data-account="equity"]')),
    cash: num(q('[data-account="cash"]')),
    positions: all('[data-testid="portfolio"] [data-testid="position"]').map(r => [
        r.dataset.symbol,
        Number(q('[data-testid="position-qty"]', r).textContent),
        num(q('[data-testid="position-price"]', r)),
        num(q('[data-testid="position-pl"]', r)),
    ]),
    row_price: num(q('tr[data-symbol="AAPL"] [data-testid="price"]')),
    open_orders: all('[data-testid="open-orders"] [data-testid="open-order"]').map(r => [r.dataset.orderId, r.textContent]),
    fills: all('[data-testid="fills"] [data-testid="fill"]').length,
    toasts: all('[data-testid="toast"]').map(t => [t.dataset.kind, t.textContent]),
    ticket: ticket ? ticket.dataset.symbol : null,
    ticket_state: status ? status.dataset.state : null,
    errors: all('[data-testid^="ticket-error-"]').map(e => [e.dataset.testid, e.textContent]),
};
"#;

async fn panel(b: &Browser) -> Panel {
    b.eval(PANEL_JS, vec![]).await
}

async fn wait_panel(b: &Browser, what: &str, pred: impl Fn(&Panel) -> bool) -> Panel {
    b.wait_for(what, LIMIT, || async {
        let p = panel(b).await;
        pred(&p).then_some(p)
    })
    .await
}

/// Picks an option of a ticket `<select>` the way a user's choice does (value, then a `change` event).
async fn choose(b: &Browser, testid: &str, value: &str) {
    let _: Option<bool> = b
        .eval(
            "const s = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', { bubbles: true })); return null;",
            vec![json!(testid), json!(value)],
        )
        .await;
}

/// Types into a ticket field the way the page sees typing: the whole new value, then an `input` event (WebDriver's
/// clear fires none, so a controlled field would put its old value back).
async fn fill(b: &Browser, testid: &str, value: &str) {
    let _: Option<bool> = b
        .eval(
            "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', { bubbles: true })); return null;",
            vec![json!(testid), json!(value)],
        )
        .await;
}

/// Waits for the portfolio's broker badge to read `label`; returns its label and state.
async fn broker_badge(b: &Browser, label: &str) -> (String, String) {
    b.wait_for(&format!("the broker badge {label:?}"), LIMIT, || async {
        let badge: Option<(String, String)> = b
            .eval(
                "const e = document.querySelector('[data-testid=\"broker\"]'); \
                 return e ? [e.textContent.trim(), e.dataset.state] : null;",
                vec![],
            )
            .await;
        badge.filter(|(text, _)| text == label)
    })
    .await
}

fn aapl(p: &Panel) -> Option<&(String, f64, f64, f64)> {
    p.positions.iter().find(|(s, ..)| s == "AAPL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_watch_the_pl_move_cancel_a_limit_and_see_a_rejection_next_to_the_ticket() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;

    // The account stream is up: the paper account with its starting cash, nothing held.
    let p = wait_panel(&b, "the account and a priced AAPL row", |p| p.equity.is_some() && p.row_price.is_some()).await;
    assert_eq!((p.equity, p.cash), (Some(STARTING_CASH), Some(STARTING_CASH)));
    assert!(p.positions.is_empty() && p.open_orders.is_empty(), "{p:?}");
    broker_badge(&b, "Paper").await;

    // Buy 10 AAPL at market from the row's ticket.
    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    let p = wait_panel(&b, "the ticket for AAPL", |p| p.ticket.is_some()).await;
    assert_eq!(p.ticket.as_deref(), Some("AAPL"));
    fill(&b, "ticket-amount", "10").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "the position, its fill and its toast", |p| {
        aapl(p).is_some() && p.fills >= 1 && p.toasts.iter().any(|(k, _)| k == "fill")
    })
    .await;
    assert_eq!(p.ticket_state.as_deref(), Some("accepted"), "{p:?}");
    assert_eq!(aapl(&p).map(|a| a.1), Some(10.0));
    let cash = p.cash.expect("cash");
    assert!(cash < STARTING_CASH - 10.0 * 50.0, "ten shares were paid for: cash {cash}");

    // The position is marked with the page's quote stream: its price is the row's, and its P&L moves with ticks.
    let mut pls = vec![aapl(&p).map(|a| a.3)];
    let mut marked_with_row = 0;
    for _ in 0..4 {
        let last = pls[pls.len() - 1];
        let p = wait_panel(&b, "the P&L to move with a tick", |p| aapl(p).map(|a| Some(a.3)) != Some(last)).await;
        let (_, qty, price, pl) = aapl(&p).cloned().expect("still held");
        if p.row_price == Some(price) {
            marked_with_row += 1;
        }
        pls.push(Some(pl));
        assert!(pl.is_finite() && qty == 10.0);
    }
    assert!(marked_with_row >= 3, "the position's price should be the row's live price: {marked_with_row}/4");
    println!("AAPL P&L over ticks: {pls:?}");
    b.click("[data-testid=\"ticket-close\"]").await;
    wait_panel(&b, "the ticket closed", |p| p.ticket.is_none()).await;

    // A limit order far below the market stays open, then its cancel button cancels it.
    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    choose(&b, "ticket-type", "limit").await;
    fill(&b, "ticket-amount", "1").await;
    // The form refuses a limit order without its price, before anything is sent.
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "the missing limit price flagged", |p| !p.errors.is_empty()).await;
    assert_eq!(p.errors.len(), 1, "{p:?}");
    assert_eq!(p.errors[0].0, "ticket-error-limit");
    assert!(p.open_orders.is_empty());
    fill(&b, "ticket-limit", "1.00").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "the limit order open", |p| p.open_orders.len() == 1).await;
    let (order_id, text) = p.open_orders[0].clone();
    assert!(text.contains("limit 1") && text.contains("accepted"), "{text}");
    b.click("[data-testid=\"ticket-close\"]").await;
    // Replace moves its limit (the page's prompt answered 2.5): the old order ends `replaced`, a new one works.
    let _: Option<bool> = b.eval("window.prompt = () => '2.5'; return null;", vec![]).await;
    b.click(&format!("[data-testid=\"open-order\"][data-order-id=\"{order_id}\"] [data-testid=\"replace-order\"]"))
        .await;
    let p =
        wait_panel(&b, "the replacement open", |p| p.open_orders.len() == 1 && p.open_orders[0].0 != order_id).await;
    let (order_id, text) = p.open_orders[0].clone();
    assert!(text.contains("limit 2.5"), "{text}");
    b.click(&format!("[data-testid=\"open-order\"][data-order-id=\"{order_id}\"] [data-testid=\"cancel-order\"]"))
        .await;
    wait_panel(&b, "the limit order cancelled", |p| p.open_orders.is_empty()).await;
    let orders: Vec<serde_json::Value> = reqwest::get(format!("{}/api/orders?status=canceled", relay.http_url()))
        .await
        .expect("GET /api/orders")
        .json()
        .await
        .expect("orders JSON");
    assert!(orders.iter().any(|o| o["id"] == order_id.as_str()), "the relay has it cancelled: {orders:?}");

    // Far beyond the buying power: the relay's rejection, with its code, next to the quantity.
    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    fill(&b, "ticket-amount", "100000000").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p =
        wait_panel(&b, "the rejection next to the quantity", |p| p.ticket_state.as_deref() == Some("rejected")).await;
    let amount_error = p.errors.iter().find(|(id, _)| id == "ticket-error-amount").map(|(_, t)| t.clone());
    assert!(amount_error.as_deref().is_some_and(|t| t.contains("insufficient_buying_power")), "errors: {:?}", p.errors);
    assert!(p.toasts.iter().any(|(k, t)| k == "rejection" && t.contains("insufficient_buying_power")), "{p:?}");
    // Each toast also played its tone (counted by the page; the sound itself is not observable here).
    b.wait_for("a tone for the fill and one for the rejection", LIMIT, || async {
        let n: Option<u32> = b
            .eval("const t = document.querySelector('.toasts'); return t ? Number(t.dataset.chimes) : null;", vec![])
            .await;
        n.filter(|n| *n >= 2)
    })
    .await;
    // Editing the field clears the stale rejection.
    fill(&b, "ticket-amount", "2").await;
    wait_panel(&b, "the rejection cleared by an edit", |p| p.errors.is_empty()).await;
    b.screenshot(&artifact_dir().join("portfolio.png")).await;
    b.click("[data-testid=\"ticket-close\"]").await;

    // The detail view's Trade button opens the ticket for its symbol, above the chart.
    b.click("tr[data-symbol=\"BTC/USD\"] .ticker").await;
    b.click("[data-testid=\"detail-trade\"]").await;
    let p = wait_panel(&b, "the ticket from the detail view", |p| p.ticket.is_some()).await;
    assert_eq!(p.ticket.as_deref(), Some("BTC/USD"));
    b.click("[data-testid=\"ticket-close\"]").await;
    b.click("[data-testid=\"detail-close\"]").await;

    // Reset: the position is closed and the cash is back (the page's confirm answered yes).
    let _: Option<bool> = b.eval("window.confirm = () => true; return null;", vec![]).await;
    b.click("[data-testid=\"reset-account\"]").await;
    let p =
        wait_panel(&b, "the account started over", |p| p.positions.is_empty() && p.cash == Some(STARTING_CASH)).await;
    assert_eq!(p.equity, Some(STARTING_CASH));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_screens_trade_on_alpaca_through_the_relay() {
    let mock = AlpacaTradingMock::start("PKBROWSER0001", "browser-secret-91ab", 20_000.0).await;
    mock.state.prices.lock().unwrap().insert("AAPL".into(), 150.0);
    let dist = dist_dir().to_string_lossy().into_owned();
    let broker = mock.relay_args();
    let mut args = vec!["--static-dir", &dist, "--sim-tick-hz", "20"];
    args.extend(broker.iter().map(String::as_str));
    let relay = Relay::start_with_env(
        0,
        &args,
        &[("APCA_API_KEY_ID", "PKBROWSER0001"), ("APCA_API_SECRET_KEY", "browser-secret-91ab")],
    );
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;

    let p =
        wait_panel(&b, "Alpaca's account and a priced AAPL row", |p| p.cash.is_some() && p.row_price.is_some()).await;
    assert_eq!(p.cash, Some(20_000.0), "the panel shows Alpaca's account: {p:?}");

    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    fill(&b, "ticket-amount", "10").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "the Alpaca fill as a position", |p| {
        aapl(p).is_some() && p.fills >= 1 && p.toasts.iter().any(|(k, _)| k == "fill")
    })
    .await;
    assert_eq!(aapl(&p).map(|a| a.1), Some(10.0));
    assert_eq!(mock.calls("POST /v2/orders"), 1, "the order went to Alpaca");
    wait_panel(&b, "cash after Alpaca's fill at 150", |p| p.cash == Some(18_500.0)).await;
    // Between Alpaca's polls the page marks the position with its own ticks: the P&L moves.
    let first = aapl(&p).map(|a| a.3);
    wait_panel(&b, "the P&L to move with a tick", |p| aapl(p).map(|a| a.3) != first).await;
    b.click("[data-testid=\"ticket-close\"]").await;

    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    choose(&b, "ticket-type", "limit").await;
    fill(&b, "ticket-amount", "1").await;
    fill(&b, "ticket-limit", "1.00").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "the Alpaca limit order open", |p| p.open_orders.len() == 1).await;
    let order_id = p.open_orders[0].0.clone();
    b.click("[data-testid=\"ticket-close\"]").await;
    b.click(&format!("[data-testid=\"open-order\"][data-order-id=\"{order_id}\"] [data-testid=\"cancel-order\"]"))
        .await;
    wait_panel(&b, "the Alpaca limit order cancelled", |p| p.open_orders.is_empty()).await;
    assert_eq!(mock.order(&order_id).map(|o| o["status"].clone()), Some(json!("canceled")));

    b.click("tr[data-symbol=\"AAPL\"] [data-testid=\"trade-symbol\"]").await;
    fill(&b, "ticket-amount", "1000").await;
    b.click("[data-testid=\"ticket-submit\"]").await;
    let p = wait_panel(&b, "Alpaca's refusal next to the quantity", |p| p.ticket_state.as_deref() == Some("rejected"))
        .await;
    let amount_error = p.errors.iter().find(|(id, _)| id == "ticket-error-amount").map(|(_, t)| t.clone());
    assert!(amount_error.as_deref().is_some_and(|t| t.contains("insufficient_buying_power")), "errors: {:?}", p.errors);
    b.close().await;
}
