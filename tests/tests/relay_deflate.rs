//! permessage-deflate (RFC 7692) on `/ws`, against the real relay binary with its simulator: a Rust client
//! (yawc) that offers the extension gets it, with no context takeover by default, and receives valid quotes in
//! compressed frames; `--ws-deflate context` keeps the context and still decodes; `--ws-deflate off`, or a client
//! that offers nothing, gets plain frames and no extension in the answer; a compressed command is inflated, and
//! one that inflates past `--max-message-bytes` closes with 1009 however small it was on the wire.

use std::time::Duration;

use hamster_shared::ServerMessage;
use hamster_tests::deflate::{parse_frames, DeflateClient, WireFrame};
use hamster_tests::{Relay, WAIT};
use yawc::OpCode;

/// Twenty equity tickers the simulator prices (other tickers get a stable price derived from the name).
fn symbols() -> Vec<String> {
    (0..20).map(|i| format!("DFL{}", (b'A' + i as u8) as char)).collect()
}

/// Connects, reads `hello`, subscribes to [`symbols`] and reads `subscribed` and `snapshot`.
async fn subscribed(relay: &Relay, offer: bool) -> DeflateClient {
    let mut client = DeflateClient::connect(&relay.ws_url(), offer).await;
    let hello = client.recv().await;
    assert!(matches!(hello, ServerMessage::Hello { .. }), "hello first: {hello:?}");
    client.send_json(serde_json::json!({"type": "subscribe", "symbols": symbols()})).await;
    loop {
        match client.recv().await {
            ServerMessage::Subscribed { symbols: got, .. } => {
                assert_eq!(got.len(), symbols().len(), "every symbol accepted: {got:?}");
                break;
            }
            ServerMessage::Status { .. } => {}
            other => panic!("expected subscribed, got {other:?}"),
        }
    }
    let snapshot = client.recv().await;
    assert!(matches!(snapshot, ServerMessage::Snapshot { .. }), "snapshot after subscribed: {snapshot:?}");
    client
}

/// Reads live `quotes` until `count` quotes have arrived, checking each one; returns how many messages that took.
async fn receive_quotes(client: &mut DeflateClient, count: usize) -> usize {
    let wanted = symbols();
    let (mut quotes, mut messages) = (0, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while quotes < count {
        assert!(tokio::time::Instant::now() < deadline, "only {quotes} of {count} quotes within {WAIT:?}");
        if let ServerMessage::Quotes { quotes: batch } = client.recv().await {
            messages += 1;
            for q in batch {
                assert!(wanted.contains(&q.symbol.to_string()), "a quote for a symbol never asked for: {q:?}");
                assert!(q.price.is_finite() && q.price > 0.0, "a price that is not one: {q:?}");
                quotes += 1;
            }
        }
    }
    messages
}

/// The relay's text frames so far (hello, status, subscribed, snapshot, quotes...).
fn text_frames(client: &DeflateClient) -> Vec<WireFrame> {
    client.frames_received().into_iter().filter(|f| f.opcode == 1).collect()
}

#[tokio::test]
async fn a_client_offering_deflate_gets_compressed_quotes_without_context_takeover() {
    let relay = Relay::start(&["--sim-tick-hz", "10"]);
    let mut client = subscribed(&relay, true).await;
    let extensions = client.extensions().expect("the relay accepted permessage-deflate");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    assert!(extensions.contains("server_no_context_takeover"), "{extensions}");
    assert!(extensions.contains("client_no_context_takeover"), "{extensions}");
    receive_quotes(&mut client, 400).await;
    let frames = text_frames(&client);
    let compressed: Vec<&WireFrame> = frames.iter().filter(|f| f.compressed).collect();
    let wire: usize = frames.iter().map(|f| f.len).sum();
    println!(
        "{} text frames, {} compressed; {wire} payload bytes on the wire for {} bytes of JSON ({extensions})",
        frames.len(),
        compressed.len(),
        client.text_bytes
    );
    // Every quote batch is over the 64-byte threshold; only short control messages may go plain.
    assert!(compressed.len() * 2 > frames.len(), "most frames compressed: {frames:?}");
    assert!(wire * 10 < client.text_bytes * 9, "{wire} wire bytes for {} bytes of JSON", client.text_bytes);
    relay.stop();
}

#[tokio::test]
async fn context_takeover_mode_keeps_the_context_and_every_message_still_decodes() {
    let relay = Relay::start(&["--sim-tick-hz", "10", "--ws-deflate", "context", "--ws-deflate-window-bits", "10"]);
    let mut client = subscribed(&relay, true).await;
    let extensions = client.extensions().expect("the relay accepted permessage-deflate");
    assert!(!extensions.contains("no_context_takeover"), "{extensions}");
    assert!(extensions.contains("server_max_window_bits=10"), "{extensions}");
    let messages = receive_quotes(&mut client, 400).await;
    assert!(messages > 10, "many messages, each depending on the ones before: {messages}");
    assert!(text_frames(&client).iter().any(|f| f.compressed));
    relay.stop();
}

#[tokio::test]
async fn ws_deflate_off_answers_without_the_extension_and_sends_plain_frames() {
    let relay = Relay::start(&["--sim-tick-hz", "10", "--ws-deflate", "off"]);
    let mut client = subscribed(&relay, true).await;
    assert_eq!(client.extensions(), None, "an extension answered with --ws-deflate off");
    receive_quotes(&mut client, 100).await;
    let frames = text_frames(&client);
    assert!(frames.iter().all(|f| !f.compressed), "{frames:?}");
    assert_eq!(frames.iter().map(|f| f.len).sum::<usize>(), client.text_bytes);
    relay.stop();
}

#[tokio::test]
async fn a_client_that_offers_nothing_gets_plain_frames() {
    let relay = Relay::start(&["--sim-tick-hz", "10"]);
    let mut client = subscribed(&relay, false).await;
    assert_eq!(client.extensions(), None);
    receive_quotes(&mut client, 100).await;
    assert!(text_frames(&client).iter().all(|f| !f.compressed));
    relay.stop();
}

#[tokio::test]
async fn a_compressed_command_that_inflates_past_the_limit_closes_with_1009() {
    let relay = Relay::start(&["--max-message-bytes", "4096"]);
    let mut client = DeflateClient::connect(&relay.ws_url(), true).await;
    assert!(matches!(client.recv().await, ServerMessage::Hello { .. }));
    // A compressed command within the limit is inflated and answered.
    client.send_json(serde_json::json!({"type": "ping", "id": "small"})).await;
    loop {
        match client.recv().await {
            ServerMessage::Pong { .. } => break,
            ServerMessage::Status { .. } => {}
            other => panic!("expected pong, got {other:?}"),
        }
    }
    // 100 KB of JSON that deflates to a few hundred bytes.
    let written = client.bytes_written();
    let padding = " ".repeat(100_000);
    client.send_json(serde_json::json!({"type": "ping", "id": padding})).await;
    let on_the_wire = client.bytes_written() - written;
    assert!(on_the_wire < 4096, "the command took {on_the_wire} bytes on the wire, not a small one");
    let close = loop {
        let frame = client.next_frame(Duration::from_secs(10)).await.expect("a close frame before the socket ends");
        if frame.opcode() == OpCode::Close {
            break frame;
        }
    };
    assert_eq!(close.close_code().map(u16::from), Some(1009), "{:?}", close.close_reason());
    // Others are unaffected.
    let mut other = DeflateClient::connect(&relay.ws_url(), true).await;
    assert!(matches!(other.recv().await, ServerMessage::Hello { .. }));
    relay.stop();
}

#[test]
fn frames_are_parsed_with_their_compression_bit() {
    let mut bytes = vec![0xc1, 3, b'a', b'b', b'c', 0x81, 126, 0, 200];
    bytes.extend(std::iter::repeat_n(b'x', 200));
    bytes.extend([0x89, 0]);
    bytes.extend([0x81, 5, b'p']); // incomplete
    assert_eq!(
        parse_frames(&bytes),
        [
            WireFrame { opcode: 1, compressed: true, len: 3 },
            WireFrame { opcode: 1, compressed: false, len: 200 },
            WireFrame { opcode: 9, compressed: false, len: 0 },
        ]
    );
}
