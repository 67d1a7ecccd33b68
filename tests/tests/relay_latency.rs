//! The stamps that let a client measure latency by hop without trusting its own clock: every live quote carries
//! the relay's receive time next to the provider's event time, and a pong carries the relay's time, echoing the
//! ping's id (the dashboard sends its send time there).

use std::time::Duration;

use hamster_shared::{RequestId, ServerMessage};
use hamster_tests::{Relay, WsClient};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test]
async fn quotes_carry_the_relays_receive_time_and_pongs_its_clock() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let start = now_ms();
    ws.subscribe(&["AAPL"]).await;
    let mut live = 0;
    while live < 20 {
        if let ServerMessage::Quotes { quotes } =
            ws.recv_until("quotes", |m| matches!(m, ServerMessage::Quotes { .. })).await
        {
            for q in quotes {
                let recv = q.recv.unwrap_or_else(|| panic!("a live quote without a receive stamp: {q:?}"));
                // The relay and this test share a clock: the stamp falls inside the test's own window, and the
                // simulator's event time is never after the relay received it.
                assert!(recv >= start && recv <= now_ms(), "recv {recv} outside [{start}, now]");
                assert!(q.ts <= recv, "event time {} after receipt {recv}", q.ts);
                live += 1;
            }
        }
    }

    let sent = now_ms();
    ws.send_json(serde_json::json!({ "type": "ping", "id": sent })).await;
    let pong = ws.recv_until("pong", |m| matches!(m, ServerMessage::Pong { .. })).await;
    let arrived = now_ms();
    let ServerMessage::Pong { id, ts } = pong else { unreachable!() };
    assert_eq!(id, Some(RequestId::Num(sent as u64)), "the ping's id is echoed");
    let ts = ts.expect("the relay's time in the pong");
    assert!(ts >= sent && ts <= arrived, "pong time {ts} outside the round trip [{sent}, {arrived}]");
    tokio::time::timeout(Duration::from_secs(5), ws.close()).await.ok();
}
