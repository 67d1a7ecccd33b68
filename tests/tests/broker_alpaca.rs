//! Alpaca as the broker behind the real relay binary, against a mock of Alpaca's Trading API and its
//! `trade_updates` stream (`docs/providers/alpaca-broker.md`): orders placed over the relay's REST and streams
//! reach Alpaca with Alpaca's field names and the key headers, `new` and `fill` events become `order` messages and
//! positions, a refused key is a clear status and a typed refusal, a dropped stream is resynced, and only the
//! owning identity can trade.

use std::time::Duration;

use hamster_shared::api::StatusResponse;
use hamster_shared::broker::{Account, Fill, Order, OrderReject, OrderRejectCode, OrderStatus, Position};
use hamster_shared::{ProviderState, ServerMessage};
use hamster_tests::mocks::alpaca_trading::AlpacaTradingMock;
use hamster_tests::{call, eventually, Relay, WsClient};
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str = "PKMOCKKEY0001";
const SECRET: &str = "mock-secret-7f3a9c2e";

fn relay_for(mock: &AlpacaTradingMock, extra: &[&str], env: &[(&str, &str)]) -> Relay {
    let own = mock.relay_args();
    let mut args: Vec<&str> = own.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    let mut vars = vec![("APCA_API_KEY_ID", KEY), ("APCA_API_SECRET_KEY", SECRET)];
    vars.extend_from_slice(env);
    Relay::start_with_env(0, &args, &vars)
}

async fn broker_state(relay: &Relay, state: ProviderState) -> StatusResponse {
    relay.wait_status(&format!("broker {state:?}"), |s| s.broker.as_ref().is_some_and(|b| b.state == state)).await
}

async fn place(relay: &Relay, token: Option<&str>, body: Value) -> Order {
    let (status, order): (u16, Value) = call(relay, Method::POST, "/api/orders", token, Some(body)).await;
    assert_eq!(status, 200, "{order}");
    serde_json::from_value(order).unwrap()
}

async fn orders(relay: &Relay, status: &str) -> Vec<Order> {
    call(relay, Method::GET, &format!("/api/orders?status={status}"), None, None).await.1
}

/// Polls the relay's order list until order `id` has `status`.
async fn wait_order(relay: &Relay, id: &str, status: OrderStatus) -> Order {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(o) = orders(relay, "all").await.into_iter().find(|o| o.id == id && o.status == status) {
            return o;
        }
        assert!(tokio::time::Instant::now() < deadline, "order {id} never became {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_position(relay: &Relay, symbol: &str, qty: f64) -> Position {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, positions): (u16, Vec<Position>) = call(relay, Method::GET, "/api/positions", None, None).await;
        if let Some(p) = positions.into_iter().find(|p| p.symbol == symbol && p.qty == qty) {
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {symbol} position of {qty}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_no_secret(relay: &Relay) {
    let logs = relay.logs().join("\n");
    assert!(!logs.contains(SECRET), "the secret reached a log line");
}

#[tokio::test]
async fn a_market_order_goes_to_alpaca_and_its_new_and_fill_events_become_orders_positions_and_fills() {
    let mock = AlpacaTradingMock::start(KEY, SECRET, 10_000.0).await;
    mock.state.prices.lock().unwrap().insert("AAPL".into(), 150.0);
    let relay = relay_for(&mock, &[], &[]);
    let status = broker_state(&relay, ProviderState::Live).await;
    let broker = status.broker.unwrap();
    assert_eq!((broker.name.as_str(), broker.live_money), ("alpaca", false));

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.send_json(json!({"type":"subscribe_account","id":1})).await;
    let first = ws.recv_until("account", |m| matches!(m, ServerMessage::Account { .. })).await;
    let ServerMessage::Account { account } = first else { unreachable!() };
    assert_eq!(account.cash, 10_000.0, "the account is Alpaca's, read over REST");

    let placed = place(&relay, None, json!({"symbol":"AAPL","qty":2,"side":"buy","type":"market"})).await;
    assert_eq!(placed.symbol, "AAPL");
    // What Alpaca received: its own field names, decimals as strings, a client order id, the key headers.
    let at_alpaca = mock.order(&placed.id).expect("the order reached Alpaca");
    assert_eq!((at_alpaca["qty"].as_str(), at_alpaca["type"].as_str()), (Some("2"), Some("market")));
    assert!(at_alpaca["client_order_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(mock.state.seen_keys.lock().unwrap().iter().all(|k| k == KEY));

    let filled = ws
        .recv_until("the fill", |m| {
            matches!(m, ServerMessage::Order { id: None, order } if order.id == placed.id && order.status == OrderStatus::Filled)
        })
        .await;
    let ServerMessage::Order { order: filled, .. } = filled else { unreachable!() };
    assert_eq!((filled.filled_qty, filled.filled_avg_price), (2.0, Some(150.0)));
    let positions = ws
        .recv_until("positions", |m| matches!(m, ServerMessage::Positions { positions } if !positions.is_empty()))
        .await;
    let ServerMessage::Positions { positions } = positions else { unreachable!() };
    assert_eq!((positions[0].symbol.as_str(), positions[0].qty, positions[0].avg_entry_price), ("AAPL", 2.0, 150.0));

    let p = wait_position(&relay, "AAPL", 2.0).await;
    assert_eq!(p.cost_basis, 300.0);
    let (_, fills): (u16, Vec<Fill>) = call(&relay, Method::GET, "/api/fills", None, None).await;
    assert_eq!(fills.len(), 1);
    assert_eq!((fills[0].order_id.as_str(), fills[0].qty, fills[0].price), (placed.id.as_str(), 2.0, 150.0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, account): (u16, Account) = call(&relay, Method::GET, "/api/account", None, None).await;
        if account.cash == 9_700.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "cash never became 9700: {account:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_no_secret(&relay);
}

#[tokio::test]
async fn limit_orders_can_be_replaced_and_cancelled_and_refusals_keep_alpacas_meaning() {
    let mock = AlpacaTradingMock::start(KEY, SECRET, 10_000.0).await;
    let relay = relay_for(&mock, &[], &[]);
    broker_state(&relay, ProviderState::Live).await;

    let limit = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit","limit_price":90.5,"time_in_force":"gtc"}),
    )
    .await;
    assert_eq!(limit.limit_price, Some(90.5));
    assert_eq!(mock.order(&limit.id).unwrap()["limit_price"], "90.5");
    wait_order(&relay, &limit.id, OrderStatus::Accepted).await;

    let (status, replaced): (u16, Order) =
        call(&relay, Method::PATCH, &format!("/api/orders/{}", limit.id), None, Some(json!({"limit_price": 91}))).await;
    assert_eq!(status, 200);
    assert_ne!(replaced.id, limit.id);
    assert_eq!(replaced.limit_price, Some(91.0));
    wait_order(&relay, &limit.id, OrderStatus::Replaced).await;

    let (status, _): (u16, Value) =
        call(&relay, Method::DELETE, &format!("/api/orders/{}", replaced.id), None, None).await;
    assert_eq!(status, 200);
    wait_order(&relay, &replaced.id, OrderStatus::Canceled).await;
    let open = orders(&relay, "accepted").await;
    assert!(open.is_empty(), "nothing is left working: {open:?}");

    // Alpaca's own refusals, in the relay's codes.
    let (status, reject): (u16, OrderReject) =
        call(&relay, Method::DELETE, &format!("/api/orders/{}", replaced.id), None, None).await;
    assert_eq!((status, reject.code), (422, OrderRejectCode::NotCancelable));
    let (status, reject): (u16, OrderReject) = call(
        &relay,
        Method::POST,
        "/api/orders",
        None,
        Some(json!({"symbol":"AAPL","qty":1000,"side":"buy","type":"market"})),
    )
    .await;
    assert_eq!((status, reject.code), (403, OrderRejectCode::InsufficientBuyingPower), "{reject:?}");
    let (status, reject): (u16, OrderReject) =
        call(&relay, Method::DELETE, "/api/orders/00000000-0000-4000-8000-00000000dead", None, None).await;
    assert_eq!((status, reject.code), (404, OrderRejectCode::NotFound));
    assert_no_secret(&relay);
}

#[tokio::test]
async fn a_refused_key_is_a_clear_status_and_a_typed_refusal_without_the_secret() {
    let mock = AlpacaTradingMock::start(KEY, "the-right-secret-1234", 10_000.0).await;
    let relay = relay_for(&mock, &[], &[]);
    let status = broker_state(&relay, ProviderState::Down).await;
    let detail = status.broker.unwrap().detail.unwrap_or_default();
    assert!(detail.contains("refused the API key"), "{detail}");
    assert!(mock.state.auths.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(mock.state.auths_ok.load(std::sync::atomic::Ordering::SeqCst), 0);

    let (status, reject): (u16, OrderReject) = call(
        &relay,
        Method::POST,
        "/api/orders",
        None,
        Some(json!({"symbol":"AAPL","qty":1,"side":"buy","type":"market"})),
    )
    .await;
    assert_eq!((status, reject.code), (401, OrderRejectCode::Unauthorized));
    assert!(reject.message.contains("APCA_API_KEY_ID"), "{}", reject.message);
    assert!(!reject.message.contains(SECRET));
    assert_no_secret(&relay);
}

#[tokio::test]
async fn after_the_stream_drops_the_relay_resyncs_and_reports_what_filled_meanwhile() {
    let mock = AlpacaTradingMock::start(KEY, SECRET, 10_000.0).await;
    let relay = relay_for(&mock, &[], &[]);
    broker_state(&relay, ProviderState::Live).await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.send_json(json!({"type":"subscribe_account","id":1})).await;
    ws.recv_until("account", |m| matches!(m, ServerMessage::Account { .. })).await;

    let limit = place(
        &relay,
        None,
        json!({"symbol":"MSFT","qty":3,"side":"buy","type":"limit","limit_price":95,"time_in_force":"gtc"}),
    )
    .await;
    wait_order(&relay, &limit.id, OrderStatus::Accepted).await;
    let listens_before = mock.state.listens.load(std::sync::atomic::Ordering::SeqCst);

    // The stream is cut and stays refused (Alpaca's one-stream-per-account 429) while the order fills.
    mock.stream.refuse_with(429);
    mock.stream.cut_all();
    broker_state(&relay, ProviderState::Reconnecting).await;
    mock.fill(&limit.id, 94.5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(orders(&relay, "filled").await.len(), 0, "nobody could have told the relay yet");

    mock.stream.refuse_with(0);
    broker_state(&relay, ProviderState::Live).await;
    assert!(mock.state.listens.load(std::sync::atomic::Ordering::SeqCst) > listens_before);
    let filled = wait_order(&relay, &limit.id, OrderStatus::Filled).await;
    assert_eq!(filled.filled_avg_price, Some(94.5));
    ws.recv_until("the missed fill", |m| {
        matches!(m, ServerMessage::Order { order, .. } if order.id == limit.id && order.status == OrderStatus::Filled)
    })
    .await;
    wait_position(&relay, "MSFT", 3.0).await;
    let (_, fills): (u16, Vec<Fill>) = call(&relay, Method::GET, "/api/fills", None, None).await;
    assert_eq!(fills.iter().map(|f| (f.qty, f.price)).collect::<Vec<_>>(), [(3.0, 94.5)], "booked once");

    // Events flow again on the new stream, in text frames as well.
    mock.state.text_frames.store(true, std::sync::atomic::Ordering::SeqCst);
    let sell = place(&relay, None, json!({"symbol":"MSFT","qty":3,"side":"sell","type":"market"})).await;
    wait_order(&relay, &sell.id, OrderStatus::Filled).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, positions): (u16, Vec<Position>) = call(&relay, Method::GET, "/api/positions", None, None).await;
        if positions.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the position never closed: {positions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_no_secret(&relay);
}

#[tokio::test]
async fn only_the_owning_identity_trades_on_the_alpaca_account() {
    let mock = AlpacaTradingMock::start(KEY, SECRET, 10_000.0).await;
    let relay = relay_for(&mock, &["--alpaca-owner", "token-1"], &[("AUTH_TOKENS", "tok-owner,tok-other")]);
    // `/api/status` is behind auth here: the mock says when the relay listens.
    eventually("the relay to listen", || mock.state.listens.load(std::sync::atomic::Ordering::SeqCst) > 0).await;
    let body = json!({"symbol":"AAPL","qty":1,"side":"buy","type":"market"});
    let mine = place(&relay, Some("tok-owner"), body.clone()).await;
    let (status, reject): (u16, OrderReject) =
        call(&relay, Method::POST, "/api/orders", Some("tok-other"), Some(body.clone())).await;
    assert_eq!((status, reject.code), (403, OrderRejectCode::Forbidden));
    let (_, theirs): (u16, Vec<Order>) =
        call(&relay, Method::GET, "/api/orders?status=all", Some("tok-other"), None).await;
    assert!(theirs.is_empty(), "another identity sees nothing of the Alpaca account");
    let (_, account): (u16, Account) = call(&relay, Method::GET, "/api/account", Some("tok-other"), None).await;
    assert_eq!(account.cash, 0.0);
    let (status, _): (u16, Value) = call(&relay, Method::GET, "/api/orders", None, None).await;
    assert_eq!(status, 401, "anonymous requests are refused when auth is on");
    let (_, owned): (u16, Vec<Order>) =
        call(&relay, Method::GET, "/api/orders?status=all", Some("tok-owner"), None).await;
    assert!(owned.iter().any(|o| o.id == mine.id));
    assert_eq!(mock.calls("POST /v2/orders"), 1, "the refused order never reached Alpaca");
}

#[tokio::test]
async fn live_trading_is_announced_and_paper_is_the_default() {
    let mock = AlpacaTradingMock::start(KEY, SECRET, 10_000.0).await;
    let relay = relay_for(&mock, &["--alpaca-live"], &[]);
    let status = broker_state(&relay, ProviderState::Live).await;
    assert!(status.broker.unwrap().live_money);
    eventually("the live-trading warning", || relay.logs().iter().any(|l| l.contains("LIVE TRADING"))).await;

    let out = std::process::Command::new(hamster_tests::relay_binary()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--alpaca-live"), "{help}");
    let missing = std::process::Command::new(hamster_tests::relay_binary())
        .args(["--broker", "alpaca", "--port", "0"])
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("APCA_API_KEY_ID"), "{err}");
}
