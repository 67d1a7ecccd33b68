//! Hub behaviour without sockets: ref-counting, snapshots, fan-out sharing, conflation, leases, rejections.

use super::*;
use hamster_shared::api::Timeframe;

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

fn quote(s: &str, price: f64) -> Quote {
    Quote {
        seq: None,
        recv: None,
        symbol: sym(s),
        price,
        ts: 1_700_000_000_000,
        provider: "sim".into(),
        bid: None,
        ask: None,
        volume: None,
        change: None,
        change_pct: None,
    }
}

/// `quote` as the hub sends it: numbered within its symbol's sequence.
fn numbered(s: &str, price: f64, seq: u64) -> Quote {
    Quote { seq: Some(seq), ..quote(s, price) }
}

fn hub_with(config: HubConfig) -> (Arc<Hub>, mpsc::UnboundedReceiver<Demand>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Hub::new(config, tx, Metrics::new()), rx)
}

fn hub() -> (Arc<Hub>, mpsc::UnboundedReceiver<Demand>) {
    hub_with(HubConfig::default())
}

fn demands(rx: &mut mpsc::UnboundedReceiver<Demand>) -> Vec<Demand> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn messages(client: &ClientHandle) -> Vec<ServerMessage> {
    let d = client.outbox().drain();
    d.frames.iter().map(|f| serde_json::from_slice(&f.json).unwrap()).collect()
}

#[test]
fn demand_is_reference_counted_across_clients() {
    let (hub, mut rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    let b = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("AAPL"), sym("BTC/USD")], vec![]);
    hub.subscribe(b.id(), None, vec![sym("AAPL")], vec![]);
    assert_eq!(demands(&mut rx), [Demand::Add(sym("AAPL")), Demand::Add(sym("BTC/USD"))]);

    hub.unsubscribe(a.id(), None, vec![sym("AAPL")]);
    assert_eq!(demands(&mut rx), [], "b still wants AAPL");
    drop(b);
    assert_eq!(demands(&mut rx), [Demand::Remove(sym("AAPL"))]);
    drop(a);
    assert_eq!(demands(&mut rx), [Demand::Remove(sym("BTC/USD"))]);
    assert_eq!(hub.counts(), (0, 0));
}

#[test]
fn resubscribing_is_idempotent() {
    let (hub, mut rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("AAPL"), sym("AAPL")], vec![]);
    hub.subscribe(a.id(), None, vec![sym("AAPL")], vec![]);
    assert_eq!(demands(&mut rx), [Demand::Add(sym("AAPL"))]);
    hub.unsubscribe(a.id(), None, vec![sym("AAPL")]);
    assert_eq!(demands(&mut rx), [Demand::Remove(sym("AAPL"))]);
}

#[test]
fn subscribe_replies_then_snapshots_from_cache() {
    let (hub, _rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), Some(RequestId::Num(1)), vec![sym("AAPL")], vec![]);
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 190.0)])]);
    let _ = messages(&a);

    let b = hub.connect("ws", |_| Vec::new());
    let bad = Rejection {
        symbol: "x y".into(),
        code: ErrorCode::InvalidSymbol,
        message: "no".into(),
        suggestions: Vec::new(),
    };
    hub.subscribe(b.id(), Some(RequestId::Num(9)), vec![sym("AAPL"), sym("MSFT")], vec![bad.clone()]);
    let got = messages(&b);
    assert_eq!(
        got[0],
        ServerMessage::Subscribed {
            continuity: Vec::new(),
            id: Some(RequestId::Num(9)),
            symbols: vec![sym("AAPL"), sym("MSFT")],
            rejected: vec![bad]
        }
    );
    assert_eq!(got[1], ServerMessage::Snapshot { quotes: vec![numbered("AAPL", 190.0, 1)] });
}

#[test]
fn connection_symbol_limit_rejects_the_excess() {
    let (hub, _rx) = hub_with(HubConfig { max_symbols_per_client: 2, ..HubConfig::default() });
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("A"), sym("B"), sym("C")], vec![]);
    match &messages(&a)[0] {
        ServerMessage::Subscribed { symbols, rejected, .. } => {
            assert_eq!(symbols, &[sym("A"), sym("B")]);
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].symbol, "C");
            assert_eq!(rejected[0].code, ErrorCode::TooManySymbols);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn fan_out_shares_one_frame_per_distinct_share() {
    let (hub, _rx) = hub();
    let clients: Vec<_> = (0..3).map(|_| hub.connect("ws", |_| Vec::new())).collect();
    for c in &clients[..2] {
        hub.subscribe(c.id(), None, vec![sym("AAPL"), sym("MSFT")], vec![]);
    }
    hub.subscribe(clients[2].id(), None, vec![sym("MSFT")], vec![]);
    for c in &clients {
        let _ = c.outbox().drain();
    }
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 1.0), quote("MSFT", 2.0), quote("NVDA", 3.0)])]);
    let frames: Vec<Frame> = clients.iter().map(|c| c.outbox().drain().frames.remove(0)).collect();
    assert_eq!(frames[0].json.as_ptr(), frames[1].json.as_ptr(), "same share, same bytes");
    assert_ne!(frames[0].json.as_ptr(), frames[2].json.as_ptr());
    let parsed: ServerMessage = serde_json::from_slice(&frames[0].json).unwrap();
    assert_eq!(parsed, ServerMessage::Quotes { quotes: vec![numbered("AAPL", 1.0, 1), numbered("MSFT", 2.0, 1)] });
    assert_eq!(frames[0].json, Bytes::from(parsed.to_json()), "hand-assembled frame equals serde's");
    let parsed: ServerMessage = serde_json::from_slice(&frames[2].json).unwrap();
    assert_eq!(parsed, ServerMessage::Quotes { quotes: vec![numbered("MSFT", 2.0, 1)] });
}

#[test]
fn every_tick_in_a_batch_reaches_a_fast_client() {
    let (hub, _rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("AAPL")], vec![]);
    let _ = a.outbox().drain();
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 1.0), quote("AAPL", 2.0)])]);
    assert_eq!(
        messages(&a),
        [ServerMessage::Quotes { quotes: vec![numbered("AAPL", 1.0, 1), numbered("AAPL", 2.0, 2)] }]
    );
}

#[tokio::test]
async fn slow_client_is_conflated_while_fast_client_gets_everything() {
    let (hub, _rx) = hub_with(HubConfig { client_queue_frames: 4, ..HubConfig::default() });
    let slow = hub.connect("ws", |_| Vec::new());
    let fast = hub.connect("ws", |_| Vec::new());
    for c in [&slow, &fast] {
        hub.subscribe(c.id(), None, vec![sym("AAPL"), sym("MSFT")], vec![]);
        let _ = c.outbox().drain();
    }
    let mut fast_got = 0;
    for i in 0..1000 {
        hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", i as f64), quote("MSFT", -(i as f64))])]);
        // The fast client drains after every batch, like a writer that keeps up.
        let frames = fast.next_frames().await.unwrap();
        fast.delivered(&frames);
        fast_got += frames.iter().map(|f| f.quotes).sum::<u32>();
    }
    assert_eq!(fast_got, 2000);
    let (_, fast_conflated, _) = fast.outbox().counters();
    assert_eq!(fast_conflated, 0);

    let (_, slow_conflated, queued) = slow.outbox().counters();
    assert_eq!(queued, 4, "the slow client's queue stayed bounded");
    assert_eq!(slow_conflated, 2000 - 4 * 2 - 2);
    // When it finally reads: its 4 queued frames, then exactly the latest value of each symbol.
    let frames = slow.next_frames().await.unwrap();
    assert_eq!(frames.len(), 5);
    let last: ServerMessage = serde_json::from_slice(&frames[4].json).unwrap();
    assert_eq!(
        last,
        ServerMessage::Quotes { quotes: vec![numbered("AAPL", 999.0, 1000), numbered("MSFT", -999.0, 1000)] }
    );
    assert_eq!(hub.metrics().conflated.get(), slow_conflated);
}

#[test]
fn conflated_catch_up_skips_symbols_unsubscribed_meanwhile() {
    let (hub, _rx) = hub_with(HubConfig { client_queue_frames: 1, ..HubConfig::default() });
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("AAPL"), sym("MSFT")], vec![]);
    let _ = a.outbox().drain();
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 1.0)])]);
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 2.0), quote("MSFT", 3.0)])]);
    hub.unsubscribe(a.id(), None, vec![sym("MSFT")]);
    let d = a.outbox().drain();
    let parsed: Vec<ServerMessage> = d.frames.iter().map(|f| serde_json::from_slice(&f.json).unwrap()).collect();
    assert_eq!(parsed.len(), 3, "{parsed:?}");
    assert_eq!(parsed[0], ServerMessage::Quotes { quotes: vec![numbered("AAPL", 1.0, 1)] });
    assert!(matches!(parsed[1], ServerMessage::Unsubscribed { .. }));
    assert_eq!(parsed[2], ServerMessage::Quotes { quotes: vec![numbered("AAPL", 2.0, 2)] });
}

#[test]
fn greeting_comes_first_with_current_provider_states() {
    let (hub, _rx) = hub();
    hub.ingest(vec![HubEvent::Status { provider: "sim".into(), state: ProviderState::Live, detail: None, since: 5 }]);
    let a = hub.connect("ws", |providers| {
        vec![control_frame(&ServerMessage::Pong { ts: None, id: Some(RequestId::Num(providers.len() as u64)) })]
    });
    assert_eq!(messages(&a), [ServerMessage::Pong { ts: None, id: Some(RequestId::Num(1)) }]);
}

#[test]
fn status_is_cached_and_broadcast() {
    let (hub, _rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    hub.ingest(vec![HubEvent::Status { provider: "sim".into(), state: ProviderState::Live, detail: None, since: 5 }]);
    assert_eq!(hub.providers()[0].state, ProviderState::Live);
    assert!(matches!(messages(&a)[0], ServerMessage::Status { state: ProviderState::Live, .. }));
}

#[test]
fn upstream_rejection_drops_the_symbol_and_tells_subscribers() {
    let (hub, mut rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("NOPE")], vec![]);
    let _ = messages(&a);
    hub.ingest(vec![HubEvent::Rejected {
        symbol: sym("NOPE"),
        code: ErrorCode::ProviderRejected,
        message: "unknown instrument".into(),
    }]);
    match &messages(&a)[0] {
        ServerMessage::Subscribed { symbols, rejected, .. } => {
            assert!(symbols.is_empty());
            assert_eq!(rejected[0].code, ErrorCode::ProviderRejected);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(demands(&mut rx), [Demand::Add(sym("NOPE")), Demand::Remove(sym("NOPE"))]);
    assert_eq!(hub.counts(), (1, 0));
}

#[test]
fn leases_keep_symbols_demanded_until_they_expire() {
    let (hub, mut rx) = hub_with(HubConfig { lease_ttl: Duration::from_secs(10), ..HubConfig::default() });
    hub.lease(&[sym("AAPL")]).unwrap();
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("AAPL")], vec![]);
    drop(a);
    assert_eq!(demands(&mut rx), [Demand::Add(sym("AAPL"))], "the lease still holds it");
    hub.sweep(Instant::now() + Duration::from_secs(11));
    assert_eq!(demands(&mut rx), [Demand::Remove(sym("AAPL"))]);
    assert_eq!(hub.counts(), (0, 0));
}

#[test]
fn lease_limit_is_enforced() {
    let (hub, _rx) = hub_with(HubConfig { max_leases: 2, ..HubConfig::default() });
    hub.lease(&[sym("A"), sym("B")]).unwrap();
    hub.lease(&[sym("A")]).unwrap();
    assert_eq!(hub.lease(&[sym("C")]), Err(LeaseLimit { max: 2 }));
}

#[test]
fn idle_topics_keep_their_cache_up_to_the_cap() {
    let (hub, _rx) = hub_with(HubConfig { max_idle_topics: 1, ..HubConfig::default() });
    let a = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("A"), sym("B")], vec![]);
    hub.ingest(vec![HubEvent::Quotes(vec![quote("A", 1.0), quote("B", 2.0)])]);
    hub.unsubscribe(a.id(), None, vec![sym("A")]);
    hub.unsubscribe(a.id(), None, vec![sym("B")]);
    hub.sweep(Instant::now());
    let (quotes, pending) = hub.quotes(&[sym("A"), sym("B")]);
    assert_eq!(quotes, vec![numbered("B", 2.0, 1)], "the newest idle topic is kept");
    assert_eq!(pending, vec![sym("A")]);
    assert_eq!(hub.history(&sym("B"), Timeframe::M1, 0, i64::MAX).0.ticks.len(), 1);
}

#[test]
fn channel_events_reach_subscribers_in_order() {
    let (hub, _rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    let b = hub.connect("ws", |_| Vec::new());
    hub.subscribe(a.id(), None, vec![sym("uw:flow-alerts")], vec![]);
    let _ = messages(&a);
    let _ = messages(&b);
    let event = |n: i64| ChannelEvent { channel: sym("uw:FLOW-ALERTS"), payload: serde_json::json!({"n": n}), ts: n };
    hub.ingest(vec![HubEvent::Events(vec![event(1), event(2)])]);
    assert_eq!(
        messages(&a),
        [
            ServerMessage::Event {
                seq: Some(1),
                channel: sym("uw:FLOW-ALERTS"),
                payload: serde_json::json!({"n": 1}),
                ts: 1
            },
            ServerMessage::Event {
                seq: Some(2),
                channel: sym("uw:FLOW-ALERTS"),
                payload: serde_json::json!({"n": 2}),
                ts: 2
            },
        ]
    );
    assert!(messages(&b).is_empty(), "only subscribers get events");
}

/// A client that subscribes `symbols` resuming from `seen` (per symbol) in `epoch`.
fn resume(hub: &Hub, client: &ClientHandle, epoch: u64, seen: &[(&str, u64)], symbols: &[&str]) -> Vec<ServerMessage> {
    let seen = seen.iter().map(|(s, n)| (sym(s), *n)).collect();
    let options = SubscribeOptions { resume: Some((epoch, seen)), interval: None };
    hub.subscribe_with(client.id(), None, symbols.iter().map(|s| sym(s)).collect(), vec![], options);
    messages(client)
}

fn continuity(m: &ServerMessage) -> Vec<Continuity> {
    match m {
        ServerMessage::Subscribed { continuity, .. } => continuity.clone(),
        other => panic!("expected subscribed, got {other:?}"),
    }
}

#[test]
fn a_resuming_client_gets_exactly_what_it_missed_before_anything_newer() {
    let (hub, _rx) = hub();
    let keeper = hub.connect("ws", |_| Vec::new());
    hub.subscribe(keeper.id(), None, vec![sym("AAPL"), sym("MSFT"), sym("uw:flow-alerts")], vec![]);
    for i in 1..=5 {
        hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", f64::from(i)), quote("MSFT", f64::from(i))])]);
    }
    let event = |n: i64| ChannelEvent { channel: sym("uw:flow-alerts"), payload: serde_json::json!({"n": n}), ts: n };
    hub.ingest(vec![HubEvent::Events(vec![event(1), event(2)])]);

    let back = hub.connect("ws", |_| Vec::new());
    let got = resume(
        &hub,
        &back,
        hub.epoch(),
        &[("AAPL", 3), ("MSFT", 5), ("uw:flow-alerts", 1)],
        &["AAPL", "MSFT", "uw:flow-alerts"],
    );
    assert_eq!(
        continuity(&got[0]),
        [
            Continuity { symbol: sym("AAPL"), recovered: 2, gap: false, missed: None },
            Continuity { symbol: sym("MSFT"), recovered: 0, gap: false, missed: None },
            Continuity { symbol: sym("uw:flow-alerts"), recovered: 1, gap: false, missed: None },
        ]
    );
    assert_eq!(got[1], ServerMessage::Recovered { quotes: vec![numbered("AAPL", 4.0, 4), numbered("AAPL", 5.0, 5)] });
    assert!(matches!(&got[2], ServerMessage::Event { seq: Some(2), .. }), "{:?}", got[2]);
    // Both quote symbols are up to date, so the snapshot carries neither.
    assert_eq!(got[3], ServerMessage::Snapshot { quotes: vec![] });
    hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", 6.0)])]);
    assert_eq!(messages(&back), [ServerMessage::Quotes { quotes: vec![numbered("AAPL", 6.0, 6)] }]);
    assert_eq!(hub.metrics().recovered.get(), 3);
}

#[test]
fn beyond_what_is_kept_or_from_another_epoch_the_client_is_told_the_gap_and_gets_the_latest_value() {
    let (hub, _rx) = hub_with(HubConfig { resume_updates: 2, ..HubConfig::default() });
    let keeper = hub.connect("ws", |_| Vec::new());
    hub.subscribe(keeper.id(), None, vec![sym("AAPL")], vec![]);
    for i in 1..=10 {
        hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", f64::from(i))])]);
    }
    let back = hub.connect("ws", |_| Vec::new());
    let got = resume(&hub, &back, hub.epoch(), &[("AAPL", 4)], &["AAPL"]);
    assert_eq!(continuity(&got[0]), [Continuity { symbol: sym("AAPL"), recovered: 0, gap: true, missed: Some(6) }]);
    assert_eq!(got[1], ServerMessage::Snapshot { quotes: vec![numbered("AAPL", 10.0, 10)] });

    let other = hub.connect("ws", |_| Vec::new());
    let got = resume(&hub, &other, hub.epoch() - 1, &[("AAPL", 9)], &["AAPL"]);
    assert_eq!(continuity(&got[0]), [Continuity { symbol: sym("AAPL"), recovered: 0, gap: true, missed: None }]);
    assert_eq!(got[1], ServerMessage::Snapshot { quotes: vec![numbered("AAPL", 10.0, 10)] });
    assert_eq!(hub.metrics().resume_gaps.get(), 2);
}

#[tokio::test]
async fn max_hz_holds_updates_and_the_writer_wakes_for_the_final_value() {
    let (hub, _rx) = hub();
    let a = hub.connect("ws", |_| Vec::new());
    let options = SubscribeOptions { resume: None, interval: Some(Duration::from_millis(100)) };
    hub.subscribe_with(a.id(), None, vec![sym("AAPL")], vec![], options);
    let _ = messages(&a);
    for i in 1..=20 {
        hub.ingest(vec![HubEvent::Quotes(vec![quote("AAPL", f64::from(i))])]);
    }
    assert_eq!(messages(&a), [ServerMessage::Quotes { quotes: vec![numbered("AAPL", 1.0, 1)] }]);
    // Nothing else arrives: the writer still wakes when the interval is over and gets the latest value.
    let frames = tokio::time::timeout(Duration::from_secs(5), a.next_frames()).await.unwrap().unwrap();
    let got: Vec<ServerMessage> = frames.iter().map(|f| serde_json::from_slice(&f.json).unwrap()).collect();
    assert_eq!(got, [ServerMessage::Quotes { quotes: vec![numbered("AAPL", 20.0, 20)] }]);
}
