//! The built-in simulator through the real relay binary: options-flow alerts and headlines on its event channels in
//! Unusual Whales' payload shapes, plausible prices for crosses, refusal of currencies it does not know, and a
//! symbol that leaves and comes back continuing from its last price.

use std::time::Duration;

use hamster_shared::{ErrorCode, ServerMessage};
use hamster_tests::{Relay, WsClient};

#[tokio::test]
async fn flow_alerts_follow_the_subscribed_equities() {
    let relay = Relay::start(&["--sim-events-per-min", "600", "--sim-seed", "7"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["NVDA", "FLOW-ALERTS", "NEWS"]).await;
    let (mut alerts, mut news) = (0, 0);
    while alerts < 5 || news < 1 {
        let message = ws.recv_until("an event", |m| matches!(m, ServerMessage::Event { .. })).await;
        let ServerMessage::Event { channel, payload, ts, .. } = message else { continue };
        assert!(ts > 1_600_000_000_000);
        match channel.as_str() {
            "FLOW-ALERTS" => {
                alerts += 1;
                assert_eq!(payload["ticker"], "NVDA", "alerts are about the subscribed equity: {payload}");
                assert!(payload["option_chain"].as_str().is_some_and(|c| c.starts_with("NVDA")), "{payload}");
                assert!(payload["total_premium"].as_f64().is_some_and(|p| p > 0.0), "{payload}");
            }
            "NEWS" => {
                news += 1;
                assert!(payload["headline"].as_str().is_some_and(|h| !h.is_empty()), "{payload}");
            }
            other => panic!("event on {other}"),
        }
    }
}

#[tokio::test]
async fn prices_are_plausible_unknown_currencies_are_refused_and_walks_continue() {
    let relay = Relay::start(&["--sim-tick-hz", "1000"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.send_text(r#"{"type":"subscribe","symbols":["USD/JPY","META","FOO/BAR"]}"#).await;
    let rejected = ws
        .recv_until(
            "FOO/BAR refused",
            |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()),
        )
        .await;
    let ServerMessage::Subscribed { rejected, .. } = rejected else { unreachable!() };
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("FOO/BAR", ErrorCode::ProviderRejected));
    let jpy = ws.quote_for("USD/JPY").await;
    assert!((100.0..200.0).contains(&jpy.price), "USD/JPY at {}", jpy.price);
    let meta = ws.quote_for("META").await;
    assert!((300.0..700.0).contains(&meta.price), "META at {}", meta.price);

    // Let the walk wander (about 1.8 % in 2 s at this rate), leave, and come back: the first new price is one tick
    // away from the last value the relay kept (which the dashboard's sparkline ends on), not a restart near the
    // base level.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ws.send_text(r#"{"type":"unsubscribe","symbols":["META"]}"#).await;
    ws.recv_until("unsubscribed", |m| matches!(m, ServerMessage::Unsubscribed { .. })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send_text(r#"{"type":"subscribe","symbols":["META"]}"#).await;
    let snapshot = ws.recv_until("the snapshot", |m| matches!(m, ServerMessage::Snapshot { .. })).await;
    let ServerMessage::Snapshot { quotes } = snapshot else { unreachable!() };
    let kept = quotes.iter().find(|q| q.symbol.as_str() == "META").expect("the relay kept META's last value").price;
    let after = ws.quote_for("META").await.price;
    assert!((after / kept - 1.0).abs() < 0.003, "resumed at {after}, the relay's last value was {kept}");
}
