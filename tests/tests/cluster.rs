//! Cluster mode with real processes: a real `redis-server`, three real relay nodes, and a Binance mock that counts
//! its connections. Exactly one upstream connection and one subscribe per instrument serve clients on every node;
//! the owner killed, paused or stopped gracefully is replaced within measured bounds, and a paused owner that
//! wakes up never opens a second connection (the mock's peak of open connections stays 1 through the whole
//! test); a Redis restart costs seconds, not the cluster.
//!
//! The failover times printed here are the ones `docs/scaling.md` reports. The tests assert generous bounds only
//! (timings are benchmarks' business); they run one at a time, as each starts three relays.

use std::time::{Duration, Instant};

use hamster_shared::api::{ClusterStatus, StatusResponse};
use hamster_shared::ServerMessage;
use hamster_tests::mocks::binance::BinanceMock;
use hamster_tests::redis::RedisServer;
use hamster_tests::ws::Received;
use hamster_tests::{eventually_within, Relay, WsClient};

/// Each test starts three relays, a Redis and a mock: they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LINGER_SECS: &str = "2";

fn node(redis: &RedisServer, mock: &BinanceMock, id: &str) -> Relay {
    let url = redis.url();
    let ws = mock.ws_url();
    let args = [
        "--providers",
        "binance",
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &mock.rest_url,
        "--node-id",
        id,
        "--cluster-linger-secs",
        LINGER_SECS,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
    ];
    Relay::start_with_env(0, &args, &[("REDIS_URL", &url)])
}

async fn cluster(relay: &Relay) -> ClusterStatus {
    let (code, status): (u16, StatusResponse) = relay.get_json("/api/status").await;
    assert_eq!(code, 200);
    status.cluster.expect("cluster section in /api/status")
}

/// Waits until every node agrees on one live owner of `binance` and sees all `n` nodes; returns the owner's
/// index and token.
async fn agreed_owner(relays: &[&Relay], n: usize) -> (usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for r in relays {
            views.push(cluster(r).await);
        }
        let owners: Vec<usize> = views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.providers.iter().any(|p| p.provider == "binance" && p.this_node))
            .map(|(i, _)| i)
            .collect();
        if let [owner] = owners.as_slice() {
            let name = views[*owner].node.clone();
            let token = views[*owner].providers[0].token;
            let agree = views.iter().all(|v| {
                v.nodes.len() == n && v.providers.iter().any(|p| p.owner.as_deref() == Some(&name) && p.token == token)
            });
            if let (true, Some(token)) = (agree, token) {
                return (*owner, token);
            }
        }
        assert!(Instant::now() < deadline, "no agreed owner within 30 s: {views:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long after `since_ms` (wall clock) the first quote for `symbol` stamped after it reaches `ws`.
async fn quote_stamped_after(ws: &mut WsClient, symbol: &str, since_ms: i64, limit: Duration) -> Option<i64> {
    quote_stamped_after_noting(ws, symbol, since_ms, limit, &mut Vec::new()).await
}

/// [`quote_stamped_after`], keeping the provider status details seen on the way.
async fn quote_stamped_after_noting(
    ws: &mut WsClient,
    symbol: &str,
    since_ms: i64,
    limit: Duration,
    statuses: &mut Vec<String>,
) -> Option<i64> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match ws.next_within(left).await? {
            Received::Message(ServerMessage::Quotes { quotes }) => {
                if quotes.iter().any(|q| q.symbol.as_str() == symbol && q.ts > since_ms) {
                    return Some(now_ms() - since_ms);
                }
            }
            Received::Message(ServerMessage::Status { state, detail, .. }) => {
                statuses.push(format!("{state:?}: {}", detail.unwrap_or_default()));
            }
            Received::Message(_) => {}
            Received::Closed(frame) => panic!("client closed: {frame:?}"),
        }
    }
    None
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

struct Setup {
    redis: RedisServer,
    mock: BinanceMock,
    relays: Vec<Relay>,
    clients: Vec<WsClient>,
}

/// Three nodes, one client on each watching BTC/USD (Binance's `btcusdt@ticker`), every client ticking.
async fn three_nodes() -> Setup {
    let redis = RedisServer::start();
    let mock = BinanceMock::start().await;
    mock.list_pairs(&["BTC/USDT", "ETH/USDT"]);
    let relays: Vec<Relay> = ["node-a", "node-b", "node-c"].iter().map(|id| node(&redis, &mock, id)).collect();
    agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let mut clients = Vec::new();
    for relay in &relays {
        let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD"]).await;
        ws.quote_for("BTC/USD").await;
        clients.push(ws);
    }
    Setup { redis, mock, relays, clients }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_connection_serves_every_node_and_the_last_client_leaving_unsubscribes_after_the_linger() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Setup { redis: _redis, mock, mut relays, mut clients } = three_nodes().await;
    // A symbol only one node wants (not the owner) also comes through the owner.
    let (owner_at, _) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let lonely = (owner_at + 1) % 3;
    clients[lonely].subscribe(&["ETH/USDT"]).await;
    clients[lonely].quote_for("ETH/USDT").await;
    for ws in &mut clients {
        let q = ws.quote_for("BTC/USD").await;
        assert_eq!(q.provider, "binance");
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection for the whole cluster");
    assert_eq!(mock.ws.peak_open(), 1);
    assert_eq!(mock.subscribe_requests_for("btcusdt@ticker"), 1, "one subscribe although three nodes want it");
    assert_eq!(mock.subscribe_requests_for("ethusdt@ticker"), 1);
    let views = [cluster(&relays[0]).await, cluster(&relays[1]).await, cluster(&relays[2]).await];
    let owner = &views[owner_at];
    assert!(owner.providers[0].this_node);
    assert_eq!(owner.providers[0].interest, 2, "the union of interest: {owner:?}");
    assert!(views.iter().filter(|v| !v.providers[0].this_node).all(|v| v.received_total > 0), "{views:#?}");
    // Each tick is recorded once per cluster: by the owner, which sees everything its provider streams.
    relays[owner_at]
        .wait_status("the owner records", |s| s.store.as_ref().is_some_and(|st| st.recorded_total > 0))
        .await;
    let metrics = reqwest::get(format!("{}/metrics", relays[owner_at].http_url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"hamster_cluster_owner{provider="binance"} 1"#), "{metrics}");
    assert!(metrics.contains("hamster_cluster_nodes 3"), "{metrics}");
    for (i, relay) in relays.iter().enumerate().filter(|(i, _)| *i != owner_at) {
        let (_, status): (u16, StatusResponse) = relay.get_json("/api/status").await;
        let recorded = status.store.map(|s| s.recorded_total);
        assert_eq!(recorded, Some(0), "node {i} relays but does not record");
    }

    // The node that alone wanted ETH/USDT crashes: nobody tells the owner, its interest expires by itself
    // (10 s) and the owner unsubscribes after the linger. BTC/USDT, still wanted elsewhere, stays.
    let crashed = Instant::now();
    relays[lonely].kill();
    eventually_within("the crashed node's interest expired", Duration::from_secs(40), || {
        !mock.subscribed().contains("ethusdt@ticker")
    })
    .await;
    eprintln!("a crashed node's symbol unsubscribed upstream after {:?}", crashed.elapsed());
    assert!(mock.subscribed().contains("btcusdt@ticker"));
    assert_eq!(mock.subscribe_requests_for("btcusdt@ticker"), 1);

    // Everyone else leaves; the owner unsubscribes upstream, but only after the linger.
    let left = Instant::now();
    for (i, ws) in clients.into_iter().enumerate() {
        if i != lonely {
            ws.close().await;
        }
    }
    eventually_within("upstream unsubscribed", Duration::from_secs(30), || mock.subscribed().is_empty()).await;
    let unsubscribed = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "UNSUBSCRIBE" && r.params.iter().any(|p| p == "btcusdt@ticker"))
        .map(|r| r.at)
        .next()
        .expect("an UNSUBSCRIBE for btcusdt@ticker");
    let after = unsubscribed.duration_since(left);
    eprintln!("upstream unsubscribe {after:?} after the last client left (linger {LINGER_SECS} s)");
    assert!(after >= Duration::from_secs(2), "the linger was not kept: {after:?}");
    assert_eq!(mock.ws.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_is_replaced_and_ticks_resume_on_the_other_nodes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Setup { redis: _redis, mock, mut relays, mut clients } = three_nodes().await;
    let (owner, token) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let killed = now_ms();
    relays[owner].kill();
    let mut gaps = Vec::new();
    for (i, ws) in clients.iter_mut().enumerate().filter(|(i, _)| *i != owner) {
        let mut statuses = Vec::new();
        let gap = quote_stamped_after_noting(ws, "BTC/USD", killed, Duration::from_secs(30), &mut statuses).await;
        let gap = gap.unwrap_or_else(|| panic!("node {i} got no tick within 30 s of the owner's SIGKILL"));
        gaps.push(gap);
        // Meanwhile its clients were told the data had stopped, not left believing the feed was live.
        assert!(
            statuses.iter().any(|s| s.starts_with("Reconnecting") && s.contains("stopped renewing")),
            "node {i}: {statuses:?}"
        );
    }
    eprintln!("owner SIGKILL: ticks again on the surviving nodes after {gaps:?} ms");
    let survivors: Vec<&Relay> = relays.iter().enumerate().filter(|(i, _)| *i != owner).map(|(_, r)| r).collect();
    let (_, new_token) = agreed_owner(&survivors, 2).await;
    assert!(new_token > token, "a later owner has a higher token: {new_token} vs {token}");
    assert_eq!(mock.ws.peak_open(), 1, "never two upstream connections at once");
    assert!(gaps.iter().all(|g| *g < 15_000), "{gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_fences_itself_and_never_overlaps_the_new_one() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Setup { redis: _redis, mock, relays, mut clients } = three_nodes().await;
    // Binance drops a client that stops answering pings (after a minute; here after 2 s of silence).
    mock.ws.drop_silent_clients_after(Duration::from_secs(2));
    let (owner, token) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let paused = now_ms();
    relays[owner].signal(libc::SIGSTOP);
    for (i, ws) in clients.iter_mut().enumerate().filter(|(i, _)| *i != owner) {
        let gap = quote_stamped_after(ws, "BTC/USD", paused, Duration::from_secs(30)).await;
        let gap = gap.unwrap_or_else(|| panic!("node {i} got no tick within 30 s of the owner's SIGSTOP"));
        eprintln!("owner SIGSTOP: node {i} ticks again after {gap} ms");
    }
    let survivors: Vec<&Relay> = relays.iter().enumerate().filter(|(i, _)| *i != owner).map(|(_, r)| r).collect();
    let (_, new_token) = agreed_owner(&survivors, 3).await;
    assert!(new_token > token);

    relays[owner].signal(libc::SIGCONT);
    let resumed = now_ms();
    // The woken node knows it lost the lease, does not reconnect, and serves its client through the bus.
    let gap = quote_stamped_after(&mut clients[owner], "BTC/USD", resumed, Duration::from_secs(30)).await;
    eprintln!("after SIGCONT the ex-owner's client ticks again after {gap:?} ms");
    assert!(gap.is_some(), "the ex-owner's client gets ticks again through the new owner");
    let all: Vec<&Relay> = relays.iter().collect();
    let (again, final_token) = agreed_owner(&all, 3).await;
    assert_ne!(again, owner, "the woken ex-owner did not take the lease back");
    assert_eq!(final_token, new_token);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(relays[owner].logs().iter().any(|l| l.contains("fencing")), "the ex-owner says it fenced itself");
    assert_eq!(mock.ws.peak_open(), 1, "never two upstream connections at once, before or after SIGCONT");
    assert_eq!(mock.ws.open(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_stopped_owner_hands_over_at_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Setup { redis: _redis, mock, mut relays, mut clients } = three_nodes().await;
    let (owner, _) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let stopped = now_ms();
    relays[owner].signal(libc::SIGTERM);
    let mut gaps = Vec::new();
    for (_, ws) in clients.iter_mut().enumerate().filter(|(i, _)| *i != owner) {
        gaps.push(quote_stamped_after(ws, "BTC/USD", stopped, Duration::from_secs(30)).await.expect("ticks resume"));
    }
    eprintln!("owner SIGTERM: ticks again on the other nodes after {gaps:?} ms");
    assert!(relays[owner].wait_exit(Duration::from_secs(10)).is_some(), "the owner exits");
    assert!(relays[owner].logs().iter().any(|l| l.contains("lease released")), "it handed over");
    assert!(gaps.iter().all(|g| *g < 3_000), "a hand-over is not a lease expiry: {gaps:?}");
    assert_eq!(mock.ws.peak_open(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_costs_seconds_and_the_nodes_keep_serving_meanwhile() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Setup { mut redis, mock: _mock, relays, mut clients } = three_nodes().await;
    let (owner, token) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
    let other = (owner + 1) % 3;

    // Redis gone: every node stays up, says so, and the owner's own clients keep their data.
    redis.kill();
    for relay in &relays {
        relay.wait_status("Redis reported down", |s| s.cluster.as_ref().is_some_and(|c| !c.redis_up)).await;
        let (code, _): (u16, serde_json::Value) = relay.get_json("/healthz").await;
        assert_eq!(code, 200);
    }
    let (_, quotes): (u16, serde_json::Value) = relays[other].get_json("/api/quotes").await;
    assert!(quotes["quotes"].as_array().is_some_and(|q| !q.is_empty()), "cached quotes are still served");

    // Long enough for the owner's lease to lapse: it fails closed (closes upstream) rather than risk two owners.
    eventually_within("the owner fenced itself", Duration::from_secs(15), || {
        relays[owner].logs().iter().any(|l| l.contains("fencing"))
    })
    .await;
    let restarted = now_ms();
    redis.restart();
    let gap = quote_stamped_after(&mut clients[other], "BTC/USD", restarted, Duration::from_secs(30)).await;
    eprintln!("Redis restarted empty: a non-owner's client ticks again after {gap:?} ms");
    assert!(gap.is_some(), "ticks resume on a non-owner after the restart");
    // The lease Redis lost is taken again (by the old owner at its next renewal, or by whoever is first) with a
    // higher token: the fence counter restarts from Redis's clock, above every token handed out before.
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_token = loop {
        let (_, new_token) = agreed_owner(&relays.iter().collect::<Vec<_>>(), 3).await;
        if new_token != token || Instant::now() > deadline {
            break new_token;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(new_token > token, "the fence keeps rising after Redis lost it: {new_token} vs {token}");
    // Interest is re-asserted by every node's heartbeat (every 3 s), so the union is known again.
    for relay in &relays {
        relay
            .wait_status("interest re-asserted", |s| {
                s.cluster.as_ref().is_some_and(|c| c.redis_up && c.providers.iter().all(|p| p.interest >= 1))
            })
            .await;
    }
    let now = now_ms();
    for (i, ws) in clients.iter_mut().enumerate() {
        if quote_stamped_after(ws, "BTC/USD", now, Duration::from_secs(15)).await.is_none() {
            let views = [cluster(&relays[0]).await, cluster(&relays[1]).await, cluster(&relays[2]).await];
            panic!("node {i} (owner before the restart: {owner}) gets no ticks after the restart: {views:#?}");
        }
    }
}
