//! The paper broker through the real relay binary: orders over REST fill against a deterministic price path (the
//! Twelve Data mock's sawtooth: +0.01 every 50 ms from 100.00 to 100.99, then back to 100.00), accounts are per
//! identity, and a SIGKILL loses nothing that was acknowledged.

use std::time::{Duration, Instant};

use hamster_shared::broker::{Account, Order, OrderReject, OrderRejectCode, OrderStatus, Position};
use hamster_tests::mocks::twelvedata::TwelveDataMock;
use hamster_tests::{call, Relay, TempDir};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn relay_for(mock: &TwelveDataMock, extra: &[&str], env: &[(&str, &str)]) -> Relay {
    let upstream = mock.relay_args();
    let mut args: Vec<&str> = upstream.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    let mut vars = vec![("TWELVE_DATA_API_KEY", "td-test-key")];
    vars.extend_from_slice(env);
    Relay::start_with_env(0, &args, &vars)
}

async fn place(relay: &Relay, token: Option<&str>, body: Value) -> Order {
    let (status, order): (u16, Value) = call(relay, reqwest::Method::POST, "/api/orders", token, Some(body)).await;
    assert_eq!(status, 200, "{order}");
    serde_json::from_value(order).unwrap()
}

async fn orders(relay: &Relay, token: Option<&str>, status: &str) -> Vec<Order> {
    call(relay, reqwest::Method::GET, &format!("/api/orders?status={status}"), token, None).await.1
}

async fn order(relay: &Relay, id: &str) -> Order {
    orders(relay, None, "all").await.into_iter().find(|o| o.id == id).unwrap_or_else(|| panic!("no order {id}"))
}

/// Polls until order `id` reaches `status`.
async fn wait_status(relay: &Relay, id: &str, status: OrderStatus) -> Order {
    let deadline = Instant::now() + WAIT;
    loop {
        let o = order(relay, id).await;
        if o.status == status {
            return o;
        }
        assert!(Instant::now() < deadline, "order {id} never became {status:?}; last: {o:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the relay has a quote for AAPL (so market orders have a price to check buying power against).
async fn wait_quote(relay: &Relay) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, q): (u16, Value) = relay.get_json("/api/quotes?symbols=AAPL").await;
        if q["quotes"].as_array().is_some_and(|a| !a.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "no AAPL quote");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn buy(relay: &Relay, qty: f64) -> Order {
    let o =
        place(relay, None, json!({"symbol":"AAPL","qty":qty,"side":"buy","type":"market","time_in_force":"gtc"})).await;
    wait_status(relay, &o.id, OrderStatus::Filled).await
}

#[tokio::test]
async fn a_trailing_stop_follows_the_peak_and_fills_on_the_first_tick_down_by_the_trail() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[], &[]);
    wait_quote(&relay).await;
    buy(&relay, 2.0).await;
    let trailing = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":2,"side":"sell","type":"trailing_stop","trail_price":0.5,"time_in_force":"gtc"}),
    )
    .await;
    assert_eq!(trailing.status, OrderStatus::Accepted);
    let filled = wait_status(&relay, &trailing.id, OrderStatus::Filled).await;
    // The sawtooth peaks at 100.99 and then drops straight to 100.00: the stop followed the peak to 100.49 and
    // the fill is on the first tick below it.
    assert!((filled.hwm.unwrap() - 100.99).abs() < 1e-9, "{filled:?}");
    assert!((filled.stop_price.unwrap() - 100.49).abs() < 1e-9, "{filled:?}");
    assert!((filled.filled_avg_price.unwrap() - 100.0).abs() < 1e-9, "{filled:?}");
    let (_, positions): (u16, Vec<Position>) = call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    assert!(positions.is_empty(), "{positions:?}");
}

#[tokio::test]
async fn bracket_exits_wait_for_the_entry_and_oco_legs_cancel_each_other() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[], &[]);
    wait_quote(&relay).await;
    let entry = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit","limit_price":100.05,"time_in_force":"gtc",
               "order_class":"bracket","take_profit":{"limit_price":100.9},"stop_loss":{"stop_price":50}}),
    )
    .await;
    let legs: Vec<Order> =
        orders(&relay, None, "all").await.into_iter().filter(|o| o.parent_id.as_deref() == Some(&entry.id)).collect();
    assert_eq!(legs.len(), 2);
    let entry_filled = wait_status(&relay, &entry.id, OrderStatus::Filled).await;
    for leg in &legs {
        let now = order(&relay, &leg.id).await;
        // Until the entry filled they were held; after it they work (or the take-profit already filled).
        assert_ne!(now.status, OrderStatus::Held, "{now:?}");
        assert!(now.updated_at >= entry_filled.updated_at);
    }
    let tp = legs.iter().find(|o| o.limit_price == Some(100.9)).unwrap();
    let sl = legs.iter().find(|o| o.stop_price == Some(50.0)).unwrap();
    wait_status(&relay, &tp.id, OrderStatus::Filled).await;
    assert_eq!(order(&relay, &sl.id).await.status, OrderStatus::Canceled);

    buy(&relay, 1.0).await;
    let oco = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":1,"side":"sell","type":"limit","time_in_force":"gtc","order_class":"oco",
               "take_profit":{"limit_price":100.95},"stop_loss":{"stop_price":10}}),
    )
    .await;
    // "all", not "open": the take-profit leg can fill on the very next tick, which cancels its sibling before this
    // listing.
    let sibling =
        orders(&relay, None, "all").await.into_iter().find(|o| o.parent_id.as_deref() == Some(&oco.id)).unwrap();
    wait_status(&relay, &oco.id, OrderStatus::Filled).await;
    assert_eq!(order(&relay, &sibling.id).await.status, OrderStatus::Canceled);
}

#[tokio::test]
async fn bad_orders_are_refused_with_their_codes() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &["--paper-starting-cash", "1000"], &[]);
    let cases = [
        (
            json!({"symbol":"AAPL","qty":100,"side":"buy","type":"limit","limit_price":50}),
            403,
            OrderRejectCode::InsufficientBuyingPower,
        ),
        (json!({"symbol":"AAPL","qty":0,"side":"buy","type":"market"}), 422, OrderRejectCode::InvalidQty),
        (json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit"}), 422, OrderRejectCode::LimitPriceMissing),
        (json!({"symbol":"AAPL","qty":1,"side":"sell","type":"market"}), 403, OrderRejectCode::InsufficientQty),
        (json!({"symbol":"nope nope","qty":1,"side":"buy","type":"market"}), 422, OrderRejectCode::UnknownSymbol),
        (json!({"symbol":"AAPL","qty":1,"side":"buy","type":"teleport"}), 422, OrderRejectCode::InvalidOrder),
    ];
    for (body, want_status, want_code) in cases {
        let (status, reject): (u16, OrderReject) =
            call(&relay, reqwest::Method::POST, "/api/orders", None, Some(body.clone())).await;
        assert_eq!((status, reject.code), (want_status, want_code), "{body}: {}", reject.message);
    }
    let (_, account): (u16, Account) = call(&relay, reqwest::Method::GET, "/api/account", None, None).await;
    assert_eq!(account.cash, 1000.0);
    let (status, _): (u16, OrderReject) = call(&relay, reqwest::Method::DELETE, "/api/orders/nope", None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn identities_see_only_their_own_account_and_anonymous_requests_are_refused() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[], &[("AUTH_TOKENS", "tok-alpha,tok-beta")]);
    let limit = json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit","limit_price":1,"time_in_force":"gtc"});
    let mine = place(&relay, Some("tok-alpha"), limit.clone()).await;
    let alpha = orders(&relay, Some("tok-alpha"), "open").await;
    assert_eq!(alpha.iter().map(|o| &o.id).collect::<Vec<_>>(), [&mine.id]);
    assert!(orders(&relay, Some("tok-beta"), "all").await.is_empty());
    let (status, reject): (u16, OrderReject) =
        call(&relay, reqwest::Method::DELETE, &format!("/api/orders/{}", mine.id), Some("tok-beta"), None).await;
    assert_eq!((status, reject.code), (404, OrderRejectCode::NotFound));
    for (method, path) in [
        (reqwest::Method::GET, "/api/account"),
        (reqwest::Method::GET, "/api/positions"),
        (reqwest::Method::GET, "/api/orders"),
        (reqwest::Method::POST, "/api/orders"),
    ] {
        let (status, _): (u16, Value) = call(&relay, method.clone(), path, None, Some(limit.clone())).await;
        assert_eq!(status, 401, "{method} {path}");
        let (status, _): (u16, Value) =
            call(&relay, method.clone(), path, Some("tok-wrong"), Some(limit.clone())).await;
        assert_eq!(status, 401, "{method} {path}");
    }
    let still = orders(&relay, Some("tok-alpha"), "all").await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].status, OrderStatus::Accepted, "nobody else could touch it");
}

#[tokio::test]
async fn sigkill_and_restart_keep_orders_positions_and_cash_exact() {
    let mock = TwelveDataMock::start().await;
    let dir = TempDir::new("broker-kill");
    let args = ["--data-dir", &dir.arg(), "--paper-commission", "0.35", "--paper-slippage-bps", "3"];
    let mut relay = relay_for(&mock, &args, &[]);
    wait_quote(&relay).await;
    buy(&relay, 3.3).await;
    buy(&relay, 1.7).await;
    let open = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":2,"side":"buy","type":"limit","limit_price":1.23,"time_in_force":"gtc",
               "client_order_id":"keep-me"}),
    )
    .await;
    let (_, before): (u16, Account) = call(&relay, reqwest::Method::GET, "/api/account", None, None).await;
    let (_, positions_before): (u16, Vec<Position>) =
        call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    let orders_before = orders(&relay, None, "all").await;
    let opened = "local paper trading account is open";
    assert!(relay.wait_for_logs(&[opened], Duration::from_secs(10)).contains(opened));
    relay.kill();

    let relay = relay_for(&mock, &args, &[]);
    let (_, after): (u16, Account) = call(&relay, reqwest::Method::GET, "/api/account", None, None).await;
    assert_eq!(after.cash.to_bits(), before.cash.to_bits(), "{} vs {}", after.cash, before.cash);
    assert_eq!(format!("{:.2}", after.cash), format!("{:.2}", before.cash));
    let (_, positions_after): (u16, Vec<Position>) =
        call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    assert_eq!(positions_after.len(), 1);
    assert_eq!(positions_after[0].qty.to_bits(), positions_before[0].qty.to_bits());
    assert_eq!(positions_after[0].avg_entry_price.to_bits(), positions_before[0].avg_entry_price.to_bits());
    assert_eq!(orders(&relay, None, "all").await, orders_before);
    // The open order still works after the restart, and its client_order_id still answers with it.
    let again = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":2,"side":"buy","type":"limit","limit_price":1.23,"time_in_force":"gtc",
               "client_order_id":"keep-me"}),
    )
    .await;
    assert_eq!(again.id, open.id);
}

#[tokio::test]
async fn the_account_stream_reports_every_order_transition_and_the_account_over_ws() {
    use hamster_shared::ServerMessage;
    use hamster_tests::WsClient;

    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[], &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.send_json(json!({"type":"subscribe_account","id":1})).await;
    let first = ws.recv_until("account", |m| matches!(m, ServerMessage::Account { .. })).await;
    let ServerMessage::Account { account } = first else { unreachable!() };
    assert_eq!((account.id.as_str(), account.cash), ("local", 100_000.0));

    ws.send_json(json!({"type":"place_order","id":2,"order":{"symbol":"AAPL","qty":1,"side":"buy","type":"limit",
        "limit_price":100.02,"time_in_force":"gtc"}}))
        .await;
    let reply = ws.recv_until("the reply", |m| matches!(m, ServerMessage::Order { id: Some(_), .. })).await;
    let ServerMessage::Order { order: placed, .. } = reply else { unreachable!() };
    // The sawtooth comes back to 100.00 within five seconds: the limit fills and the stream says so.
    let filled = ws
        .recv_until("the fill", |m| {
            matches!(m, ServerMessage::Order { id: None, order } if order.id == placed.id && order.status == OrderStatus::Filled)
        })
        .await;
    let ServerMessage::Order { order: filled, .. } = filled else { unreachable!() };
    assert!(filled.filled_avg_price.unwrap() <= 100.02);
    let positions = ws
        .recv_until("positions", |m| matches!(m, ServerMessage::Positions { positions } if !positions.is_empty()))
        .await;
    let ServerMessage::Positions { positions } = positions else { unreachable!() };
    assert_eq!(positions[0].qty, 1.0);

    ws.send_json(
        json!({"type":"place_order","id":3,"order":{"symbol":"AAPL","qty":1000,"side":"buy","type":"market"}}),
    )
    .await;
    let rejected = ws.recv_until("rejection", |m| matches!(m, ServerMessage::OrderRejected { .. })).await;
    let ServerMessage::OrderRejected { id, reject } = rejected else { unreachable!() };
    assert_eq!((id, reject.code), (Some(hamster_shared::RequestId::Num(3)), OrderRejectCode::InsufficientBuyingPower));
}

#[tokio::test]
async fn a_rebound_host_or_another_site_cannot_trade_while_the_relays_own_origin_can() {
    use hamster_shared::ServerMessage;
    use hamster_tests::WsClient;

    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[], &[]);
    let port = relay.port();
    let own = format!("127.0.0.1:{port}");
    let own_origin = format!("http://{own}");
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    let body = json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit","limit_price":1,"time_in_force":"gtc"});
    let post = |host: String, origin: Option<String>, content_type: &'static str| {
        let body = body.to_string();
        let url = format!("{}/api/orders", relay.http_url());
        async move {
            let mut request =
                reqwest::Client::new().post(url).header("host", host).header("content-type", content_type).body(body);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let response = request.send().await.expect("POST /api/orders");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // DNS rebinding: Host and Origin agree, on a domain the relay does not serve.
    let (status, refusal) = post(evil.clone(), Some(evil_origin.clone()), "application/json").await;
    assert_eq!((status, refusal["code"].as_str()), (403, Some("forbidden")), "{refusal}");
    // Cross-site: a page elsewhere posting to the real address, as JSON or as a form would.
    let (status, _) = post(own.clone(), Some("https://evil.example".into()), "application/json").await;
    assert_eq!(status, 403);
    let (status, _) = post(own.clone(), None, "text/plain").await;
    assert_eq!(status, 403);
    assert!(orders(&relay, None, "all").await.is_empty(), "nothing was placed");
    // The relay's own page (its dashboard) still trades.
    let (status, placed) = post(own.clone(), Some(own_origin.clone()), "application/json").await;
    assert_eq!(status, 200, "{placed}");

    // Over the socket: a rebound page still streams prices but cannot trade.
    let mut ws = WsClient::handshake(&relay.ws_url(), &[("host", &evil), ("origin", &evil_origin)])
        .await
        .unwrap_or_else(|r| panic!("streaming stays open to any origin by default: {}", r.status));
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    ws.quote_for("AAPL").await;
    ws.send_json(json!({"type":"place_order","id":9,"order":body})).await;
    let rejected = ws.recv_until("rejection", |m| matches!(m, ServerMessage::OrderRejected { .. })).await;
    let ServerMessage::OrderRejected { reject, .. } = rejected else { unreachable!() };
    assert_eq!(reject.code, OrderRejectCode::Forbidden);
    assert_eq!(orders(&relay, None, "all").await.len(), 1);
}

#[tokio::test]
async fn a_reset_starts_the_account_over_and_survives_a_restart() {
    let mock = TwelveDataMock::start().await;
    let dir = TempDir::new("broker-reset");
    let args = ["--data-dir", &dir.arg()];
    let mut relay = relay_for(&mock, &args, &[]);
    wait_quote(&relay).await;
    buy(&relay, 4.0).await;
    let working = place(
        &relay,
        None,
        json!({"symbol":"AAPL","qty":1,"side":"buy","type":"limit","limit_price":1.23,"time_in_force":"gtc"}),
    )
    .await;
    // Bought today: the day's P&L is the whole unrealised P&L, and the account's is the positions' sum.
    let (_, positions): (u16, Vec<Position>) = call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    let (_, account): (u16, Account) = call(&relay, reqwest::Method::GET, "/api/account", None, None).await;
    assert_eq!(positions.len(), 1);
    let p = &positions[0];
    assert!((p.day_pl - (p.unrealized_pl + p.realized_pl)).abs() < 0.05, "{p:?}");
    assert!(account.cash < 100_000.0 - 4.0 * 99.0, "{account:?}");

    let (status, reset): (u16, Account) = call(&relay, reqwest::Method::POST, "/api/account/reset", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (reset.cash, reset.equity, reset.buying_power, reset.realized_pl),
        (100_000.0, 100_000.0, 100_000.0, 0.0)
    );
    let (_, positions): (u16, Vec<Position>) = call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    assert!(positions.is_empty(), "{positions:?}");
    assert_eq!(order(&relay, &working.id).await.status, OrderStatus::Canceled);
    // The ledger is append-only: the earlier fill is still there.
    let (_, fills): (u16, Vec<Value>) = call(&relay, reqwest::Method::GET, "/api/fills", None, None).await;
    assert_eq!(fills.len(), 1);
    relay.kill();

    let relay = relay_for(&mock, &args, &[]);
    let (_, after): (u16, Account) = call(&relay, reqwest::Method::GET, "/api/account", None, None).await;
    assert_eq!(after.cash, 100_000.0);
    let (_, positions): (u16, Vec<Position>) = call(&relay, reqwest::Method::GET, "/api/positions", None, None).await;
    assert!(positions.is_empty(), "{positions:?}");
    assert!(orders(&relay, None, "open").await.is_empty());
}
