//! Cluster mode: several relay nodes share one Redis and hold **one** upstream connection per provider for the
//! whole cluster, while every node serves every symbol.
//!
//! It sits between the upstream router and the providers and nowhere else: the router hands each provider's
//! subscription diffs to a [`candidate`] instead of to the provider, and each node's hub is fed through the same
//! [`EventSink`] as without a cluster — by the provider itself on the node that owns it, by the [`bus`] on the
//! others. The hub, the transports, the store and the brokers know nothing of it. All Redis state is soft and
//! re-asserted on timers, so a Redis that restarts empty costs seconds, not the cluster. `docs/scaling.md` has
//! the design, the failure table with measured times and a deploy example.
//!
//! * [`keys`] — every key and channel name;
//! * [`lease`] — the lease script, the fencing token, the owner's [`lease::Gate`];
//! * [`candidate`] — one provider on one node: interest, lease, the owner's term, fencing, hand-over;
//! * [`bus`] — envelopes on the data channel, stale-token drops, gap detection and catch-up.

mod bus;
mod candidate;
mod keys;
mod lease;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::api::{ClusterProviderStatus, ClusterStatus};
use hamster_shared::Quote;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use self::bus::{Envelope, Naming, Receiver, Recording, Verdict};
use crate::clock::now_ms;
use crate::ingest::Tap;
use crate::providers::{EventSink, Provider, ProviderCommand, Report};
use crate::secret::Secret;

/// Cluster flags. Without a Redis URL the relay is a single node, exactly as before.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Redis URL that turns on cluster mode (`redis://host:6379/0`, `rediss://…` for TLS); every node given the
    /// same Redis shares one upstream connection per provider. Holds a password on managed Redis: set it in the
    /// environment.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<Secret>,

    /// This node's name in the cluster (default: the host name and process id).
    #[arg(long, env = "NODE_ID")]
    pub(crate) node_id: Option<String>,

    /// Lease on a provider's upstream connection in ms. A crashed owner is replaced about this long after it
    /// died; an owner that cannot renew closes its connection 1.5 s (or a third of this) before it lapses.
    #[arg(long, env = "CLUSTER_LEASE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1_000..=60_000))]
    pub(crate) cluster_lease_ms: u64,

    /// Seconds the owner keeps an instrument subscribed upstream after the last node stopped wanting it.
    #[arg(long, env = "CLUSTER_LINGER_SECS", default_value_t = 30)]
    pub(crate) cluster_linger_secs: u64,
}

/// Rebuilds a provider by name for a new term of ownership (a provider runs once per build).
pub(crate) type Rebuild = Arc<dyn Fn(&str) -> Option<Box<dyn Provider>> + Send + Sync>;

/// The cluster's timings, all derived from the lease.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) lease: Duration,
    /// Renewal period (a fifth of the lease, jittered ±20 %).
    pub(crate) renew: Duration,
    /// How long before the lease lapses the owner fences itself.
    pub(crate) margin: Duration,
    /// Interest sets and the node registry are rewritten this often…
    pub(crate) heartbeat: Duration,
    /// …and expire after this long without.
    pub(crate) interest_ttl: Duration,
    /// The owner re-reads the union of interest this often (pub/sub is at most once).
    pub(crate) union_every: Duration,
    pub(crate) linger: Duration,
    /// Bound on every Redis call, so a hung Redis never stalls a loop.
    pub(crate) op_timeout: Duration,
}

impl Timing {
    fn from(args: &ClusterArgs) -> Timing {
        let lease = Duration::from_millis(args.cluster_lease_ms);
        Timing {
            lease,
            renew: lease / 5,
            margin: Duration::from_millis(1_500).min(lease / 3),
            heartbeat: Duration::from_secs(3),
            interest_ttl: Duration::from_secs(10),
            union_every: Duration::from_secs(2),
            linger: Duration::from_secs(args.cluster_linger_secs),
            op_timeout: (lease / 6).max(Duration::from_millis(300)),
        }
    }
}

/// Signals from the control channel to a provider's candidate.
#[derive(Debug)]
enum Signal {
    Interest,
    Released,
}

/// This node's view of one provider in the cluster, for `/api/status`.
#[derive(Debug, Clone, Default)]
struct View {
    owner: Option<(String, u64)>,
    mine: bool,
    lease_left_ms: Option<i64>,
    interest: usize,
    upstream: usize,
}

/// One provider's receiving side on this node.
struct Side {
    sink: EventSink,
    receiver: Receiver,
    signals: mpsc::UnboundedSender<Signal>,
}

/// The node's membership in the cluster. Share as `Arc<Cluster>`.
pub(crate) struct Cluster {
    node: String,
    timing: Timing,
    /// Lease calls only, so publishing never delays a renewal.
    lease: ConnectionManager,
    data: ConnectionManager,
    pubsub: ConnectionManager,
    pushes: Mutex<Option<mpsc::UnboundedReceiver<PushInfo>>>,
    rebuild: Rebuild,
    sides: Mutex<HashMap<&'static str, Side>>,
    views: Mutex<BTreeMap<&'static str, View>>,
    nodes: Mutex<Vec<String>>,
    redis_up: AtomicBool,
    published: Arc<AtomicU64>,
    /// The store's recorder, used while this node owns a provider.
    recording: Arc<Mutex<Option<Recording>>>,
    received: AtomicU64,
    stale_dropped: AtomicU64,
    catch_ups: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).field("timing", &self.timing).finish_non_exhaustive()
    }
}

impl Cluster {
    /// Prepares cluster mode from `args`; `None` without a Redis URL. Connections are made lazily and retried
    /// forever, so a node starts (and serves its own cache) while Redis is down.
    pub(crate) fn new(args: &ClusterArgs, rebuild: Rebuild) -> anyhow::Result<Option<Arc<Cluster>>> {
        let Some(url) = &args.redis_url else { return Ok(None) };
        // Errors never quote the URL: it may carry a password.
        let info = url
            .expose()
            .into_connection_info()
            .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL ({:?})", e.kind()))?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| anyhow::anyhow!("REDIS_URL cannot be used ({:?})", e.kind()))?;
        let timing = Timing::from(args);
        let base = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let lease = ConnectionManager::new_lazy_with_config(
            client.clone(),
            base.clone().set_response_timeout(Some(timing.op_timeout)),
        )?;
        let data = ConnectionManager::new_lazy_with_config(
            client.clone(),
            base.clone().set_response_timeout(Some(Duration::from_secs(2))),
        )?;
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let pubsub = ConnectionManager::new_lazy_with_config(
            client,
            base.set_response_timeout(Some(Duration::from_secs(2)))
                .set_push_sender(push_tx)
                .set_automatic_resubscription(),
        )?;
        let node = args.node_id.clone().unwrap_or_else(default_node_id);
        if node.is_empty() || node.contains(['|', '{', '}']) {
            anyhow::bail!("--node-id/NODE_ID must be non-empty and contain none of | {{ }}");
        }
        Ok(Some(Arc::new(Cluster {
            node,
            timing,
            lease,
            data,
            pubsub,
            pushes: Mutex::new(Some(push_rx)),
            rebuild,
            sides: Mutex::new(HashMap::new()),
            views: Mutex::new(BTreeMap::new()),
            nodes: Mutex::new(Vec::new()),
            redis_up: AtomicBool::new(false),
            published: Arc::new(AtomicU64::new(0)),
            recording: Arc::new(Mutex::new(None)),
            received: AtomicU64::new(0),
            stale_dropped: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
        })))
    }

    /// Records through `tap` what this node's providers stream while it owns them (and only then).
    pub(crate) fn record_on_owner(&self, tap: Box<dyn Tap>, naming: Naming) {
        *self.recording.lock() = Some(Recording { tap, naming });
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Runs `provider` the cluster's way: as a candidate for its lease, fed this node's subscription diffs.
    pub(crate) fn run_provider(
        self: Arc<Self>,
        provider: Box<dyn Provider>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        sink: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        // Registered now, not when the task first runs: the node's loop subscribes to the channels of every
        // provider registered when it starts, and must not find none.
        let (signal_tx, signals) = mpsc::unbounded_channel();
        self.register(provider.name(), sink.clone(), signal_tx);
        candidate::run(self, provider, commands, signals, sink, stop).boxed()
    }

    fn register(&self, provider: &'static str, sink: EventSink, signals: mpsc::UnboundedSender<Signal>) {
        self.sides.lock().insert(provider, Side { sink, receiver: Receiver::default(), signals });
        self.views.lock().entry(provider).or_default();
    }

    fn rebuild(&self, provider: &str) -> Option<Box<dyn Provider>> {
        (self.rebuild)(provider)
    }

    fn redis_ok(&self, up: bool) {
        let was = self.redis_up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!(node = %self.node, "Redis reachable");
            } else {
                tracing::warn!(node = %self.node, "Redis unreachable: serving cached data; the lease owner fences itself if this lasts");
            }
        }
    }

    fn set_owner_view(&self, provider: &'static str, owner: Option<(String, u64)>, mine: bool) {
        let mut views = self.views.lock();
        let view = views.entry(provider).or_default();
        view.owner = owner;
        view.mine = mine;
        if mine {
            view.lease_left_ms = Some(self.timing.lease.as_millis() as i64);
        }
    }

    fn set_lease_left(&self, provider: &'static str, ms: i64) {
        self.views.lock().entry(provider).or_default().lease_left_ms = Some(ms);
    }

    fn set_interest_view(&self, provider: &'static str, interest: usize, upstream: usize) {
        let mut views = self.views.lock();
        let view = views.entry(provider).or_default();
        view.interest = interest;
        view.upstream = upstream;
    }

    /// Nodes seen alive within the interest TTL, pruning the ones that are not.
    async fn live_nodes(&self) -> Option<Vec<String>> {
        let mut redis = self.data.clone();
        let since = now_ms() - self.timing.interest_ttl.as_millis() as i64;
        let nodes: Vec<String> =
            timeout(self.timing.op_timeout, redis.zrangebyscore(keys::NODES, since, "+inf")).await.ok()?.ok()?;
        Some(nodes)
    }

    /// Re-reads the last values of `only` (or of every instrument this node serves) and delivers them, so a new
    /// subscriber gets a price at once and a node that missed envelopes catches up.
    async fn catch_up(&self, provider: &'static str, only: Option<Vec<String>>) {
        let sink = match self.sides.lock().get(provider) {
            Some(side) => side.sink.clone(),
            None => return,
        };
        let instruments = only.unwrap_or_else(|| sink.instruments());
        if instruments.is_empty() {
            return;
        }
        let mut redis = self.data.clone();
        let values: Option<Vec<Option<Vec<u8>>>> = match timeout(
            self.timing.op_timeout,
            redis::cmd("HMGET").arg(keys::last(provider)).arg(&instruments).query_async(&mut redis),
        )
        .await
        {
            Ok(Ok(values)) => Some(values),
            _ => None,
        };
        let Some(values) = values else { return };
        let quotes: Vec<Quote> = values.into_iter().flatten().filter_map(|v| serde_json::from_slice(&v).ok()).collect();
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        if !quotes.is_empty() {
            sink.report(Report::Quotes { quotes }).await;
        }
    }

    /// The node's own loop: subscribes to every provider's channels, receives envelopes and signals, and says it
    /// is alive. Ends on `stop`, removing the node from the registry.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(mut pushes) = self.pushes.lock().take() else { return };
        let providers: Vec<&'static str> = self.sides.lock().keys().copied().collect();
        if providers.is_empty() {
            tracing::error!(node = %self.node, "cluster started with no provider registered");
            return;
        }
        let channels: Vec<String> = providers.iter().flat_map(|p| [keys::data(p), keys::control(p)]).collect();
        let mut pubsub = self.pubsub.clone();
        let mut subscribed = false;
        let mut heartbeat = tokio::time::interval(self.timing.heartbeat);
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    let mut redis = self.data.clone();
                    let _ = timeout(self.timing.op_timeout, redis.zrem::<_, _, ()>(keys::NODES, &self.node)).await;
                    return;
                }
                _ = retry.tick(), if !subscribed => {
                    match timeout(Duration::from_secs(2), pubsub.subscribe(&channels)).await {
                        Ok(Ok(())) => {
                            subscribed = true;
                            self.heartbeat().await;
                            for p in &providers {
                                self.catch_up(p, None).await;
                                self.adopt_status(p).await;
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(node = %self.node, error = %e, "cannot subscribe to the cluster's channels; retrying");
                            self.redis_ok(false);
                        }
                        Err(_) => self.redis_ok(false),
                    }
                }
                _ = heartbeat.tick() => {
                    self.heartbeat().await;
                    // The subscription's own liveness: a connection that broke while idle is only noticed (and
                    // remade) when something is sent on it.
                    if subscribed && !matches!(timeout(self.timing.op_timeout, redis::cmd("PING").query_async::<()>(&mut pubsub)).await, Ok(Ok(()))) {
                        subscribed = false;
                    }
                }
                push = pushes.recv() => match push {
                    Some(push) => {
                        if push.kind == PushKind::Disconnection {
                            // Subscribe again explicitly (idempotent): that also makes the manager reconnect.
                            subscribed = false;
                        }
                        self.on_push(push).await;
                    }
                    None => return,
                },
            }
        }
    }

    /// Says this node is alive and reads who else is.
    async fn heartbeat(&self) {
        let mut redis = self.data.clone();
        let now = now_ms();
        let stale = now - self.timing.interest_ttl.as_millis() as i64;
        let mut pipe = redis::pipe();
        pipe.zadd(keys::NODES, &self.node, now)
            .ignore()
            .zrembyscore(keys::NODES, "-inf", stale)
            .ignore()
            .zrangebyscore(keys::NODES, stale, "+inf");
        match timeout(self.timing.op_timeout, pipe.query_async::<(Vec<String>,)>(&mut redis)).await {
            Ok(Ok((nodes,))) => {
                self.redis_ok(true);
                *self.nodes.lock() = nodes;
            }
            _ => self.redis_ok(false),
        }
    }

    /// Takes the provider state the owner last published (a node joining a running cluster).
    async fn adopt_status(&self, provider: &'static str) {
        let mut redis = self.data.clone();
        let Ok(Ok(Some(bytes))) =
            timeout(self.timing.op_timeout, redis.get::<_, Option<Vec<u8>>>(keys::status(provider))).await
        else {
            return;
        };
        let Ok(report @ Report::Status { .. }) = serde_json::from_slice::<Report>(&bytes) else { return };
        let mine = self.views.lock().get(provider).is_some_and(|v| v.mine);
        let sink = self.sides.lock().get(provider).map(|s| s.sink.clone());
        if let (false, Some(sink)) = (mine, sink) {
            sink.report(report).await;
        }
    }

    async fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else { return };
                let Some((provider, is_data)) = std::str::from_utf8(channel).ok().and_then(keys::parse_channel) else {
                    return;
                };
                if is_data {
                    self.on_envelope(provider, payload).await;
                } else {
                    let signal = match payload.as_slice() {
                        b"released" => Signal::Released,
                        _ => Signal::Interest,
                    };
                    if let Some(side) = self.sides.lock().get(provider) {
                        let _ = side.signals.send(signal);
                    }
                }
            }
            PushKind::Disconnection => {
                tracing::warn!(node = %self.node, "lost the Redis subscription; it resubscribes by itself");
                self.redis_ok(false);
                for side in self.sides.lock().values_mut() {
                    side.receiver.lost();
                }
            }
            PushKind::Subscribe => {
                // After a reconnect the manager resubscribes; whatever was published meanwhile is lost: catch up.
                let providers: Vec<&'static str> = self.sides.lock().keys().copied().collect();
                for p in providers {
                    self.catch_up(p, None).await;
                }
            }
            _ => {}
        }
    }

    async fn on_envelope(&self, provider: &str, payload: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(provider, error = %e, "undecodable envelope on the cluster bus dropped");
                return;
            }
        };
        let (name, sink, verdict) = {
            let mut sides = self.sides.lock();
            let Some((name, side)) = sides.iter_mut().find(|(n, _)| **n == provider) else { return };
            let verdict = side.receiver.judge(&self.node, &envelope.node, envelope.tok, envelope.seq);
            (*name, side.sink.clone(), verdict)
        };
        match verdict {
            Verdict::Own => {}
            Verdict::Stale => {
                self.stale_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Deliver { catch_up } => {
                self.received.fetch_add(1, Ordering::Relaxed);
                if catch_up {
                    self.catch_up(name, None).await;
                }
                sink.report(envelope.report).await;
            }
        }
    }

    /// The `cluster` section of `/api/status`.
    pub(crate) fn status(&self) -> ClusterStatus {
        let providers = self
            .views
            .lock()
            .iter()
            .map(|(name, v)| ClusterProviderStatus {
                provider: (*name).to_owned(),
                owner: v.owner.as_ref().map(|(n, _)| n.clone()),
                token: v.owner.as_ref().map(|(_, t)| *t),
                this_node: v.mine,
                lease_left_ms: v.lease_left_ms,
                interest: v.interest,
                upstream: v.mine.then_some(v.upstream),
            })
            .collect();
        ClusterStatus {
            node: self.node.clone(),
            redis_up: self.redis_up.load(Ordering::Relaxed),
            nodes: self.nodes.lock().clone(),
            providers,
            published_total: self.published.load(Ordering::Relaxed),
            received_total: self.received.load(Ordering::Relaxed),
            stale_dropped_total: self.stale_dropped.load(Ordering::Relaxed),
            catch_ups_total: self.catch_ups.load(Ordering::Relaxed),
        }
    }
}

/// `host-pid`: unique on a machine, recognisable in logs.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    format!("{}-{}", host.unwrap_or_else(|| "node".into()), std::process::id()).replace(['|', '{', '}'], "-")
}
