//! `docs/protocol.md` against the types: every one-line JSON example of a message there (a line that starts with
//! `{"type":`) must read as a `ServerMessage` or a `ClientMessage`, so the page cannot drift from the protocol,
//! and the streaming messages each have at least one. (The trading messages are described field by field in §11
//! instead, with the types they carry.)

use std::collections::BTreeSet;

use hamster_shared::{ClientMessage, ServerMessage};

const PAGE: &str = include_str!("../../docs/protocol.md");

/// Kinds the page must show an example of.
const SERVER: &[&str] = &[
    "hello",
    "subscribed",
    "no_data",
    "unsubscribed",
    "snapshot",
    "quotes",
    "recovered",
    "status",
    "error",
    "event",
    "pong",
    "replay_state",
];
const CLIENT: &[&str] = &["subscribe", "unsubscribe", "ping", "replay", "replay_control"];

#[test]
fn every_message_example_in_the_protocol_page_reads_as_the_protocols_types() {
    let (mut server, mut client) = (BTreeSet::new(), BTreeSet::new());
    let mut unreadable = Vec::new();
    for (n, line) in PAGE.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with("{\"type\":") {
            continue;
        }
        if let Ok(m) = serde_json::from_str::<ServerMessage>(line) {
            assert_eq!(ServerMessage::from_json(line).ok().as_ref(), Some(&m), "the dashboard's reader: {line}");
            server.insert(m.kind());
        } else if let Ok(m) = ClientMessage::parse(line) {
            client.insert(m.kind());
        } else {
            unreadable.push(format!("line {}: {line}", n + 1));
        }
    }
    assert!(unreadable.is_empty(), "examples the types cannot read:\n{}", unreadable.join("\n"));
    let missing: Vec<&&str> = SERVER.iter().filter(|k| !server.contains(**k)).collect();
    assert!(missing.is_empty(), "relay messages without an example: {missing:?}");
    let missing: Vec<&&str> = CLIENT.iter().filter(|k| !client.contains(**k)).collect();
    assert!(missing.is_empty(), "client commands without an example: {missing:?}");
}
