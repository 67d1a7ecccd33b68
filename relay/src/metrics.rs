//! Counters and gauges for `/metrics` (Prometheus text) and `/api/status`, from one source of truth.
//!
//! Every figure is a `prometheus-client` atomic: the hot paths bump them without locks, the exporter encodes
//! them, and `/api/status` reads the same values. Per-second rates come from a sampler task that diffs the
//! counters once a second, so no request ever scans clients or topics to compute a rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// The relay's metrics. Cheap to clone handles live inside; share it as `Arc<Metrics>`.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    started: Instant,
    /// Quotes received from providers.
    pub(crate) quotes_in: Counter,
    /// Quotes written to client sockets.
    pub(crate) quotes_out: Counter,
    /// Frames written to client sockets.
    pub(crate) frames_out: Counter,
    /// Quote updates superseded before a slow client took them.
    pub(crate) conflated: Counter,
    /// Updates sent again to resuming clients, and resumed symbols that had a gap instead.
    pub(crate) recovered: Counter,
    pub(crate) resume_gaps: Counter,
    /// Client commands received, and those answered with an error.
    pub(crate) commands: Counter,
    pub(crate) command_errors: Counter,
    /// Handshakes and connections refused at the edge, by reason (origin, auth, connections_per_ip, abusive).
    refused: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Connected clients (WebSocket + SSE).
    pub(crate) clients: Gauge,
    /// Symbols with at least one subscriber or lease.
    pub(crate) topics: Gauge,
    /// Instruments subscribed on upstream connections, all providers.
    pub(crate) upstream_subscriptions: Gauge,
    /// The embedded store: records written and dropped, whether recording is degraded, bytes used.
    store_recorded: Gauge,
    store_dropped: Gauge,
    store_degraded: Gauge,
    store_bytes: Gauge,
    /// Cluster mode (all 0 on a single node): Redis reachable, live nodes, per provider whether this node owns it,
    /// its lease token and the union of interest; bus totals.
    cluster_redis_up: Gauge,
    cluster_nodes: Gauge,
    cluster_owner: Family<Vec<(&'static str, String)>, Gauge>,
    cluster_token: Family<Vec<(&'static str, String)>, Gauge>,
    cluster_interest: Family<Vec<(&'static str, String)>, Gauge>,
    cluster_bus: Family<Vec<(&'static str, &'static str)>, Gauge>,
    in_rate: AtomicU64,
    out_rate: AtomicU64,
}

impl Metrics {
    /// Copies the store's counters into the exported gauges (read on demand: the store keeps its own counts).
    pub(crate) fn observe_store(&self, recorded: u64, dropped: u64, degraded: bool, bytes: u64) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.store_recorded.set(g(recorded));
        self.store_dropped.set(g(dropped));
        self.store_degraded.set(i64::from(degraded));
        self.store_bytes.set(g(bytes));
    }

    /// Copies the cluster's view into the exported gauges (read on demand, like the store's).
    pub(crate) fn observe_cluster(&self, status: &hamster_shared::api::ClusterStatus) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.cluster_redis_up.set(i64::from(status.redis_up));
        self.cluster_nodes.set(status.nodes.len() as i64);
        for p in &status.providers {
            let label = vec![("provider", p.provider.clone())];
            self.cluster_owner.get_or_create(&label).set(i64::from(p.this_node));
            self.cluster_token.get_or_create(&label).set(g(p.token.unwrap_or(0)));
            self.cluster_interest.get_or_create(&label).set(p.interest as i64);
        }
        for (kind, value) in [
            ("published", status.published_total),
            ("received", status.received_total),
            ("stale_dropped", status.stale_dropped_total),
            ("catch_ups", status.catch_ups_total),
        ] {
            self.cluster_bus.get_or_create(&vec![("kind", kind)]).set(g(value));
        }
    }

    pub(crate) fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("hamster");
        let m = Metrics {
            quotes_in: Counter::default(),
            quotes_out: Counter::default(),
            frames_out: Counter::default(),
            conflated: Counter::default(),
            recovered: Counter::default(),
            resume_gaps: Counter::default(),
            commands: Counter::default(),
            command_errors: Counter::default(),
            refused: Family::default(),
            clients: Gauge::default(),
            topics: Gauge::default(),
            upstream_subscriptions: Gauge::default(),
            store_recorded: Gauge::default(),
            store_dropped: Gauge::default(),
            store_degraded: Gauge::default(),
            store_bytes: Gauge::default(),
            cluster_redis_up: Gauge::default(),
            cluster_nodes: Gauge::default(),
            cluster_owner: Family::default(),
            cluster_token: Family::default(),
            cluster_interest: Family::default(),
            cluster_bus: Family::default(),
            in_rate: AtomicU64::new(0),
            out_rate: AtomicU64::new(0),
            started: Instant::now(),
            registry: Registry::default(),
        };
        registry.register("quotes_in", "Quotes received from upstream providers", m.quotes_in.clone());
        registry.register("quotes_out", "Quotes delivered to clients", m.quotes_out.clone());
        registry.register("frames_out", "Frames written to client connections", m.frames_out.clone());
        registry.register("conflated", "Quote updates replaced before a slow client read them", m.conflated.clone());
        registry.register("recovered", "Updates sent again to clients that resumed", m.recovered.clone());
        registry.register(
            "resume_gaps",
            "Resumed symbols whose missed updates were no longer held",
            m.resume_gaps.clone(),
        );
        registry.register("client_commands", "Commands received from clients", m.commands.clone());
        registry.register("client_command_errors", "Client commands answered with an error", m.command_errors.clone());
        registry.register("refused", "Clients refused at the edge, by reason", m.refused.clone());
        registry.register("clients", "Connected WebSocket and SSE clients", m.clients.clone());
        registry.register("topics", "Symbols with at least one subscriber", m.topics.clone());
        registry.register(
            "upstream_subscriptions",
            "Instruments subscribed on upstream provider connections",
            m.upstream_subscriptions.clone(),
        );
        registry.register("store_recorded", "Ticks and events written to the embedded store", m.store_recorded.clone());
        registry.register(
            "store_dropped",
            "Ticks and events dropped because the store could not keep up or the disk was full",
            m.store_dropped.clone(),
        );
        registry.register(
            "store_degraded",
            "1 while recording is impaired (disk full, write errors)",
            m.store_degraded.clone(),
        );
        registry.register("store_bytes", "Bytes the embedded store's database uses", m.store_bytes.clone());
        registry.register(
            "cluster_redis_up",
            "1 while this node reaches Redis (cluster mode)",
            m.cluster_redis_up.clone(),
        );
        registry.register("cluster_nodes", "Live nodes this node sees in its cluster", m.cluster_nodes.clone());
        registry.register(
            "cluster_owner",
            "1 for each provider whose upstream connection this node holds",
            m.cluster_owner.clone(),
        );
        registry.register("cluster_lease_token", "Fencing token of each provider's owner", m.cluster_token.clone());
        registry.register(
            "cluster_interest",
            "Instruments the live nodes want from each provider (their union)",
            m.cluster_interest.clone(),
        );
        registry.register(
            "cluster_bus",
            "Reports published as owner, received, dropped as stale, and catch-ups from last values",
            m.cluster_bus.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// Counts a client refused at the edge.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&vec![("reason", reason)]).inc();
    }

    /// Prometheus text exposition of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Quotes in and out per second over the last sampled second.
    pub(crate) fn rates(&self) -> (f64, f64) {
        (f64::from_bits(self.in_rate.load(Ordering::Relaxed)), f64::from_bits(self.out_rate.load(Ordering::Relaxed)))
    }

    /// Samples the counters once a second until `stop` fires, keeping [`Metrics::rates`] current.
    pub(crate) async fn run_sampler(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), self.quotes_in.get(), self.quotes_out.get());
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = (Instant::now(), self.quotes_in.get(), self.quotes_out.get());
            let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
            let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
            self.in_rate.store(rate(now.1, last.1).to_bits(), Ordering::Relaxed);
            self.out_rate.store(rate(now.2, last.2).to_bits(), Ordering::Relaxed);
            last = now;
        }
    }
}
