//! The dashboard's socket and permessage-deflate (RFC 7692), seen by a real headless Chromium: Chromium offers
//! the extension on its own, the relay accepts it (without context takeover, its default), and the page goes
//! live on compressed frames; with `--ws-deflate off` the same page gets a handshake answer without the
//! extension and still goes live. The evidence is the browser's own record of the handshake: the
//! `Sec-WebSocket-Extensions` headers of `Network.webSocketHandshakeResponseReceived` in Chrome's performance log.

use std::time::Duration;

use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::Relay;
use serde_json::Value;

/// Whether the page is live with at least `n` rows priced.
const LIVE_JS: &str = r#"
const badge = document.querySelector('[data-testid="connection-status"]');
const priced = [...document.querySelectorAll('[data-testid="quote-row"] [data-testid="price"]')]
    .filter(p => /[0-9]/.test(p.textContent)).length;
return (badge && badge.dataset.state === 'live') ? priced : 0;
"#;

/// A header's value from a DevTools headers object, whatever the case of its name.
fn header(headers: &Value, name: &str) -> Option<String> {
    headers
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}

/// The `/ws` handshakes in `events`: (what the browser offered, what the relay answered), from the response
/// events of sockets created for `/ws`.
fn ws_handshakes(events: &[Value]) -> Vec<(Option<String>, Option<String>)> {
    let ws_requests: Vec<&str> = events
        .iter()
        .filter(|e| e["method"] == "Network.webSocketCreated")
        .filter(|e| e["params"]["url"].as_str().is_some_and(|u| u.ends_with("/ws") || u.contains("/ws?")))
        .filter_map(|e| e["params"]["requestId"].as_str())
        .collect();
    events
        .iter()
        .filter(|e| e["method"] == "Network.webSocketHandshakeResponseReceived")
        .filter(|e| e["params"]["requestId"].as_str().is_some_and(|id| ws_requests.contains(&id)))
        .map(|e| {
            let response = &e["params"]["response"];
            (
                header(&response["requestHeaders"], "sec-websocket-extensions"),
                header(&response["headers"], "sec-websocket-extensions"),
            )
        })
        .collect()
}

/// Opens the dashboard on `relay`, waits until it is live with prices, and returns its `/ws` handshakes.
async fn open_live(b: &Browser, relay: &Relay) -> Vec<(Option<String>, Option<String>)> {
    b.goto(&relay.http_url()).await;
    b.wait_for("the dashboard live with prices", Duration::from_secs(30), || async {
        let priced: u64 = serde_json::from_value(b.client().execute(LIVE_JS, vec![]).await.ok()?).ok()?;
        (priced >= 4).then_some(())
    })
    .await;
    ws_handshakes(&b.network_events().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_socket_negotiates_permessage_deflate_and_off_turns_it_off() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let b = Browser::launch_logging_network(1280, 800).await;

    let relay = Relay::start(&["--static-dir", &dist]);
    let handshakes = open_live(&b, &relay).await;
    println!("with compression: {handshakes:?}");
    let (offered, answered) = handshakes.first().cloned().expect("the browser recorded the /ws handshake");
    assert!(
        offered.as_deref().is_some_and(|o| o.contains("permessage-deflate")),
        "Chromium offers permessage-deflate by itself: {offered:?}"
    );
    let answered = answered.expect("the relay answered with Sec-WebSocket-Extensions");
    assert!(answered.starts_with("permessage-deflate"), "{answered}");
    assert!(answered.contains("server_no_context_takeover"), "{answered}");
    relay.stop();

    let relay = Relay::start(&["--static-dir", &dist, "--ws-deflate", "off"]);
    let handshakes = open_live(&b, &relay).await;
    println!("with --ws-deflate off: {handshakes:?}");
    let (offered, answered) = handshakes.first().cloned().expect("the browser recorded the /ws handshake");
    assert!(offered.is_some_and(|o| o.contains("permessage-deflate")));
    assert_eq!(answered, None, "no extension with --ws-deflate off");
    relay.stop();
    b.close().await;
}
