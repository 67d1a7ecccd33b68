//! Protocol version 2 over real sockets against the real binary: every update numbered within the relay's
//! epoch, a reconnecting client sent exactly what it missed (or told how much it missed, never a silent jump),
//! a relay restart reported as a gap, the same over SSE through `Last-Event-ID`, and `max_hz` limiting one
//! client's rate without touching anyone else's.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use hamster_shared::{Continuity, Quote, ServerMessage};
use hamster_tests::ws::Received;
use hamster_tests::{Relay, WsClient, WAIT};

/// The `hello` epoch.
fn epoch_of(hello: &ServerMessage) -> u64 {
    match hello {
        ServerMessage::Hello { epoch, .. } => *epoch,
        other => panic!("expected hello, got {other:?}"),
    }
}

/// Every message received for `window`.
async fn collect(ws: &mut WsClient, window: Duration) -> Vec<ServerMessage> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match ws.next_within(left).await {
            Some(Received::Message(m)) => got.push(m),
            Some(Received::Closed(frame)) => panic!("closed: {frame:?}"),
            None => break,
        }
    }
    got
}

/// Sequence numbers of `symbol` in live `quotes` messages, in arrival order.
fn live_seqs(messages: &[ServerMessage], symbol: &str) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Quotes { quotes } => Some(quotes),
            _ => None,
        })
        .flatten()
        .filter(|q| q.symbol.as_str() == symbol)
        .map(|q| q.seq.expect("every live quote is numbered"))
        .collect()
}

fn assert_consecutive(seqs: &[u64], what: &str) {
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{what}: a jump from {} to {} in {seqs:?}", pair[0], pair[1]);
    }
}

async fn resume(ws: &mut WsClient, epoch: u64, symbol: &str, seen: u64) -> Vec<Continuity> {
    ws.send_json(serde_json::json!({
        "type": "subscribe", "symbols": [symbol], "resume": {"epoch": epoch, "seqs": {symbol: seen}}
    }))
    .await;
    match ws.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await {
        ServerMessage::Subscribed { continuity, .. } => continuity,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_reconnects_receives_every_missed_tick_in_order_then_the_live_stream() {
    let relay = Relay::start(&["--sim-tick-hz", "50"]);
    // Another dashboard keeps the symbol subscribed while ours is away, as on any shared relay.
    let _keeper = WsClient::subscribed(&relay.ws_url(), &["AAPL"]).await;

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    let epoch = epoch_of(&ws.hello().await);
    ws.subscribe(&["AAPL"]).await;
    let before = live_seqs(&collect(&mut ws, Duration::from_millis(800)).await, "AAPL");
    assert!(before.len() >= 10, "50 ticks/s for 0.8 s: {before:?}");
    assert_consecutive(&before, "a fast client sees every update");
    let seen = *before.last().expect("checked above");
    drop(ws);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    assert_eq!(epoch_of(&ws.hello().await), epoch, "same relay, same epoch");
    let continuity = resume(&mut ws, epoch, "AAPL", seen).await;
    assert_eq!(continuity.len(), 1, "{continuity:?}");
    assert!(!continuity[0].gap, "{continuity:?}");
    let recovered: Vec<Quote> = match ws.recv().await {
        ServerMessage::Recovered { quotes } => quotes,
        other => panic!("recovered updates come right after subscribed: {other:?}"),
    };
    assert_eq!(recovered.len() as u64, continuity[0].recovered);
    assert!(recovered.len() >= 20, "about a second at 50 ticks/s was missed: {}", recovered.len());
    let recovered: Vec<u64> = recovered.iter().map(|q| q.seq.expect("numbered")).collect();
    assert_eq!(recovered[0], seen + 1, "starts right after the last one seen");
    assert_consecutive(&recovered, "recovered");
    assert_eq!(ws.recv().await, ServerMessage::Snapshot { quotes: vec![] }, "up to date: no snapshot value");

    let after = live_seqs(&collect(&mut ws, Duration::from_millis(500)).await, "AAPL");
    assert!(!after.is_empty());
    let all: Vec<u64> = before.iter().chain(&recovered).chain(&after).copied().collect();
    assert_consecutive(&all, "before + recovered + after");
}

#[tokio::test]
async fn a_gap_beyond_what_the_relay_keeps_is_counted_and_a_restart_is_reported() {
    let args = ["--sim-tick-hz", "50", "--resume-updates", "10"];
    let mut relay = Relay::start(&args);
    let _keeper = WsClient::subscribed(&relay.ws_url(), &["AAPL"]).await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    let epoch = epoch_of(&ws.hello().await);
    ws.subscribe(&["AAPL"]).await;
    let seen = ws.quote_for("AAPL").await.seq.expect("numbered");
    drop(ws);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let continuity = resume(&mut ws, epoch, "AAPL", seen).await;
    let missed = continuity[0].missed.expect("same epoch: the relay can count");
    assert!(continuity[0].gap && missed > 10, "more than the 10 kept: {continuity:?}");
    match ws.recv().await {
        ServerMessage::Snapshot { quotes } => {
            assert_eq!(quotes.len(), 1);
            assert_eq!(quotes[0].seq, Some(seen + missed), "the latest value, and the count matches it");
        }
        other => panic!("a gap comes with the latest value: {other:?}"),
    }
    drop(ws);

    let port = relay.port();
    relay.kill();
    let relay = Relay::start_on_port(port, &args);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    let new_epoch = epoch_of(&ws.hello().await);
    assert!(new_epoch > epoch, "a restart starts a new epoch");
    let continuity = resume(&mut ws, epoch, "AAPL", seen + missed).await;
    assert_eq!(
        continuity,
        [Continuity { symbol: continuity[0].symbol.clone(), recovered: 0, gap: true, missed: None }],
        "numbers of another epoch: a gap of unknown size, not a silent jump"
    );
    let first = ws.quote_for("AAPL").await.seq.expect("numbered");
    assert!(first < seen + missed, "numbering started again: {first}");
}

#[tokio::test]
async fn max_hz_limits_one_client_and_lifting_it_takes_effect_at_once() {
    let relay = Relay::start(&["--sim-tick-hz", "50"]);
    let mut full = WsClient::subscribed(&relay.ws_url(), &["AAPL"]).await;
    let mut slow = WsClient::connect(&relay.ws_url()).await;
    slow.hello().await;
    slow.send_json(serde_json::json!({"type": "subscribe", "symbols": ["AAPL"], "max_hz": 2})).await;
    slow.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await;

    let window = Duration::from_secs(4);
    let (slow_got, full_got) = tokio::join!(collect(&mut slow, window), collect(&mut full, window));
    let slow_rate = live_seqs(&slow_got, "AAPL").len() as f64 / window.as_secs_f64();
    let full_rate = live_seqs(&full_got, "AAPL").len() as f64 / window.as_secs_f64();
    assert!((1.5..=2.5).contains(&slow_rate), "max_hz 2 gave {slow_rate:.2}/s");
    assert!(full_rate > 20.0, "the other client still gets every update: {full_rate:.1}/s");
    let seqs = live_seqs(&slow_got, "AAPL");
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "never an older value after a newer one: {seqs:?}");

    // Subscribing again without a limit lifts it on the spot.
    slow.send_json(serde_json::json!({"type": "subscribe", "symbols": ["AAPL"]})).await;
    slow.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await;
    let lifted = live_seqs(&collect(&mut slow, Duration::from_secs(1)).await, "AAPL").len();
    assert!(lifted > 20, "{lifted} updates in a second after lifting the limit");

    let bad = serde_json::json!({"type": "subscribe", "id": 5, "symbols": ["AAPL"], "max_hz": -1});
    slow.send_json(bad).await;
    match slow.recv_until("error", |m| matches!(m, ServerMessage::Error { .. })).await {
        ServerMessage::Error { id, code, message } => {
            assert_eq!(id, Some(hamster_shared::RequestId::Num(5)));
            assert_eq!(code, hamster_shared::ErrorCode::BadMessage);
            assert!(message.contains("max_hz"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// One SSE event as the relay wrote it.
#[derive(Debug)]
struct SseEvent {
    id: Option<String>,
    message: ServerMessage,
}

/// A plain HTTP reader of `/api/stream`, sending `Last-Event-ID` as a reconnecting `EventSource` does.
struct SseClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buf: String,
}

impl SseClient {
    async fn open(relay: &Relay, symbols: &str, last_event_id: Option<&str>) -> SseClient {
        let url = format!("{}/api/stream?symbols={symbols}", relay.http_url());
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("relay reachable");
        assert_eq!(response.status(), 200);
        SseClient { body: Box::pin(response.bytes_stream()), buf: String::new() }
    }

    /// The next event within `limit`, or `None` when none came.
    async fn next_within(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
                let Some(data) = field("data: ") else { continue }; // a keep-alive comment
                let message = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
                return Some(SseEvent { id: field("id: "), message });
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(other) => panic!("stream ended: {other:?}"),
                Err(_) => return None,
            }
        }
    }

    async fn next(&mut self) -> SseEvent {
        self.next_within(WAIT).await.expect("an SSE event in time")
    }

    /// Every event received for `window`.
    async fn collect(&mut self, window: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_within(left).await {
                Some(event) => got.push(event),
                None => break,
            }
        }
        got
    }
}

/// `seq`s of `symbol` in every quote-carrying message, in arrival order.
fn sse_seqs(events: &[SseEvent], symbol: &str) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match &e.message {
            ServerMessage::Quotes { quotes } | ServerMessage::Snapshot { quotes } => Some(quotes),
            _ => None,
        })
        .flatten()
        .filter(|q| q.symbol.as_str() == symbol)
        .map(|q| q.seq.expect("every streamed quote is numbered"))
        .collect()
}

#[tokio::test]
async fn an_sse_stream_cut_while_ticks_flow_resumes_from_last_event_id_with_every_missed_update_in_order() {
    let relay = Relay::start(&["--sim-tick-hz", "50"]);
    let _keeper = WsClient::subscribed(&relay.ws_url(), &["AAPL", "MSFT"]).await;

    let mut sse = SseClient::open(&relay, "AAPL,MSFT", None).await;
    let before = sse.collect(Duration::from_millis(800)).await;
    for e in &before {
        let numbered = matches!(e.message, ServerMessage::Quotes { .. } | ServerMessage::Snapshot { .. });
        assert_eq!(e.id.is_some(), numbered, "ids on numbered updates only: {e:?}");
    }
    let last_id = before.iter().rev().find_map(|e| e.id.clone()).expect("numbered events came");
    let before: Vec<Vec<u64>> = ["AAPL", "MSFT"].iter().map(|s| sse_seqs(&before, s)).collect();
    for (symbol, seqs) in ["AAPL", "MSFT"].iter().zip(&before) {
        assert!(seqs.len() >= 10, "{symbol}: 50 ticks/s for 0.8 s: {seqs:?}");
        assert_consecutive(seqs, symbol);
    }
    drop(sse);

    // Ticks keep flowing while the stream is cut; the reconnect names where it stopped, as EventSource does.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sse = SseClient::open(&relay, "AAPL,MSFT", Some(&last_id)).await;
    let continuity = loop {
        if let ServerMessage::Subscribed { continuity, .. } = sse.next().await.message {
            break continuity;
        }
    };
    assert_eq!(continuity.len(), 2, "{continuity:?}");
    assert!(continuity.iter().all(|c| !c.gap && c.recovered >= 20), "about a second missed: {continuity:?}");
    let recovered = sse.next().await;
    let ServerMessage::Recovered { quotes } = &recovered.message else {
        panic!("recovered updates come right after subscribed: {recovered:?}")
    };
    assert!(recovered.id.is_some(), "a recovered batch moves the resume point too");
    assert_eq!(quotes.len() as u64, continuity.iter().map(|c| c.recovered).sum::<u64>());
    let snapshot = sse.next().await;
    assert_eq!(snapshot.message, ServerMessage::Snapshot { quotes: vec![] }, "both brought up to date");

    let after = sse.collect(Duration::from_millis(500)).await;
    for (i, symbol) in ["AAPL", "MSFT"].iter().enumerate() {
        let recovered: Vec<u64> =
            quotes.iter().filter(|q| q.symbol.as_str() == *symbol).map(|q| q.seq.expect("numbered")).collect();
        assert_eq!(recovered[0], before[i].last().expect("checked above") + 1, "{symbol}: right after the last seen");
        let after = sse_seqs(&after, symbol);
        assert!(!after.is_empty(), "{symbol}: live again");
        let all: Vec<u64> = before[i].iter().chain(&recovered).chain(&after).copied().collect();
        assert_consecutive(&all, &format!("{symbol}: before + recovered + after"));
    }
}

#[tokio::test]
async fn an_sse_resume_from_another_epoch_or_an_unreadable_id_reports_a_gap() {
    let args = ["--sim-tick-hz", "50"];
    let mut relay = Relay::start(&args);
    let mut sse = SseClient::open(&relay, "AAPL", None).await;
    // The first live quote's id: it names a seq of AAPL (a fresh relay's snapshot may have none yet).
    let old_id = loop {
        let event = sse.next().await;
        if let (ServerMessage::Quotes { .. }, Some(id)) = (event.message, event.id) {
            break id;
        }
    };
    drop(sse);
    let port = relay.port();
    relay.kill();
    let relay = Relay::start_on_port(port, &args);

    for id in [old_id.as_str(), "not an id", "1.2.3"] {
        let mut sse = SseClient::open(&relay, "AAPL", Some(id)).await;
        let continuity = loop {
            if let ServerMessage::Subscribed { continuity, .. } = sse.next().await.message {
                break continuity;
            }
        };
        assert_eq!(
            continuity,
            [Continuity { symbol: continuity[0].symbol.clone(), recovered: 0, gap: true, missed: None }],
            "Last-Event-ID {id:?}: a gap of unknown size, not a silent jump"
        );
        let first = sse_seqs(&sse.collect(Duration::from_millis(300)).await, "AAPL");
        assert!(!first.is_empty(), "the stream goes on after the gap");
    }
}
