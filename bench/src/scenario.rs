//! The scenarios, their sizes, and how one run of a scenario against one target goes.
//!
//! Every run follows the same steps, so results are comparable:
//!
//! 1. start the target (a fresh process per run) pointed at the generator, and wait for its upstream connection;
//! 2. **prime** the upstream: helper connections subscribe every symbol of the scenario (200 per connection)
//!    and the run waits until the generator has them all. The relay paces its Twelve Data commands (one per
//!    600 ms), so letting a thousand clients trickle in would cost minutes of one-symbol subscribe frames;
//! 3. connect the clients (at most [`CONNECTING_AT_ONCE`] handshakes at once) and wait until every one has its
//!    `subscribed` replies; the connect rate is clients / time taken;
//! 4. idle: wait, read memory and CPU. Otherwise: tick at the scenario's rate, warm up, then open the
//!    [`Window`] for the measured duration (a burst raises the rate ×`burst_factor` for exactly that window),
//!    close it, give late deliveries `drain` to arrive, and read every counter;
//! 5. stop the clients and the target.
//!
//! `dashboard` is the exception: its symbols are the relay's own simulator's (`sim:T00000`…, at the simulator's
//! default rate; the simulator is always built in) instead of the generator's, and the clients are dashboards of `per_client` symbols; it measures
//! what a dashboard costs on the wire (with or without `--deflate`) and the relay's CPU per delivered quote.
//! Its quotes carry no marks, so it reports no latency.
//!
//! In cluster mode (`--cluster N`, [`crate::cluster`]) step 1 starts Redis and N relay nodes and waits for
//! their owner; primers and clients are spread round-robin over the nodes; the fast clients on nodes other
//! than the owner are measured apart too (their quotes crossed Redis); CPU and RSS are summed over the nodes;
//! Redis's CPU and `PUBLISH` count are read over the window; and the run fails unless exactly one upstream
//! connection reached the generator.
//!
//! Scenario sizes come from [`Scenario::sizes`], overridden field by field from the command line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::clients::{self, Behaviour, ClientSpec, Group, Recorder, Summary};
use crate::cluster::{node_id, Cluster};
use crate::mark::{now_ns, Window};
use crate::procstat::{peak_rss_bytes, rss_bytes, CpuSample};
use crate::target::{Kind, Launch, Target};
use crate::upstream::Generator;
use hamster_shared::api::StatusResponse;

/// Client handshakes in flight at once.
const CONNECTING_AT_ONCE: usize = 256;
/// Symbols one priming connection holds (the relay's default per-connection limit).
const SYMBOLS_PER_PRIMER: usize = 200;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Every client subscribes to the same symbols: pure fan-out.
    Fanout,
    /// Clients subscribe to different, overlapping sets of symbols.
    Spread,
    /// Many connected clients, no ticks: memory per connection.
    Idle,
    /// Fan-out with the tick rate raised ×`burst_factor` for the measured window.
    Burst,
    /// Fan-out where a share of the clients read slowly or not at all; fast clients are reported apart.
    Slow,
    /// Dashboards of 200 symbols on the relay's own simulator at its default rate: bytes on the wire and CPU
    /// per delivery (relay only; run it by name, it is not part of the default set).
    Dashboard,
    /// One symbol held by many idle clients, one tick every 500 ms: how long one tick takes to reach them all
    /// (run it by name, it is not part of the default set).
    Broadcast,
}

impl Scenario {
    pub const ALL: [Scenario; 5] =
        [Scenario::Fanout, Scenario::Spread, Scenario::Idle, Scenario::Burst, Scenario::Slow];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Spread => "spread",
            Scenario::Idle => "idle",
            Scenario::Burst => "burst",
            Scenario::Slow => "slow",
            Scenario::Dashboard => "dashboard",
            Scenario::Broadcast => "broadcast",
        }
    }

    /// Full-size defaults, or the small ones of `--smoke` (seconds, not minutes; small N).
    pub fn sizes(self, smoke: bool) -> Sizes {
        let full = Sizes {
            clients: 1000,
            symbols: 20,
            per_client: 20,
            rate: 2000.0,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            slow_share: 0.2,
            slow_pause: Duration::from_millis(100),
            burst_factor: 10.0,
        };
        let mut s = match self {
            Scenario::Fanout => full,
            Scenario::Spread => Sizes { symbols: 1000, rate: 10_000.0, ..full },
            Scenario::Idle => Sizes { clients: 10_000, symbols: 100, per_client: 1, rate: 0.0, ..full },
            Scenario::Burst => Sizes { duration: Duration::from_secs(5), ..full },
            Scenario::Slow => full,
            Scenario::Dashboard => Sizes { clients: 1, symbols: 200, per_client: 200, rate: 0.0, ..full },
            Scenario::Broadcast => Sizes { clients: 10_000, symbols: 1, per_client: 1, rate: 2.0, ..full },
        };
        if smoke {
            s = Sizes {
                clients: match self {
                    Scenario::Idle | Scenario::Broadcast => 200,
                    Scenario::Dashboard => 1,
                    _ => 20,
                },
                symbols: match self {
                    Scenario::Broadcast => 1,
                    Scenario::Spread => 20,
                    Scenario::Idle => 10,
                    Scenario::Dashboard => 200,
                    _ => 5,
                },
                per_client: match self {
                    Scenario::Idle | Scenario::Broadcast => 1,
                    Scenario::Dashboard => 200,
                    _ => 5,
                },
                rate: match self {
                    Scenario::Idle | Scenario::Dashboard => 0.0,
                    Scenario::Broadcast => 2.0,
                    _ => 200.0,
                },
                warmup: Duration::from_millis(500),
                duration: Duration::from_secs(3),
                drain: Duration::from_millis(500),
                ..s
            };
        }
        s
    }
}

/// How big a scenario is.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    /// Measured clients.
    pub clients: usize,
    /// Distinct symbols in the scenario.
    pub symbols: usize,
    /// Symbols each client subscribes to (`spread`: a sliding window over all of them).
    pub per_client: usize,
    /// Ticks per second sent upstream, over all symbols.
    pub rate: f64,
    pub warmup: Duration,
    /// The measured window (`idle`: how long CPU is watched).
    pub duration: Duration,
    /// Time after the window for late deliveries.
    pub drain: Duration,
    /// `slow`: share of the clients that are slow (half pause after each frame, half never read).
    pub slow_share: f64,
    /// `slow`: pause of the slow readers after each frame.
    pub slow_pause: Duration,
    /// `burst`: rate multiplier during the window.
    pub burst_factor: f64,
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub target: Kind,
    /// Cluster mode: the number of relay nodes (CPU and RSS are their sums).
    pub cluster: Option<usize>,
    pub scenario: Scenario,
    /// e.g. `fanout`, `slow: fast clients`.
    pub label: String,
    pub clients: usize,
    /// e.g. `20`, `20 of 1000`.
    pub symbols: String,
    pub ticks_in_per_s: f64,
    pub deliveries_per_s: f64,
    pub summary: Summary,
    /// `conflated_total` growth reported by the relay over the run (relay only).
    pub relay_conflated: Option<u64>,
    pub rss: Option<u64>,
    /// `idle`: RSS growth per connected client, in bytes.
    pub rss_per_client: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub bench_cpu_percent: Option<f64>,
    pub notes: Vec<String>,
    /// The scenario failed; `notes` says why.
    pub failed: bool,
}

/// What every run shares: the generator and its window, and how to start targets.
pub struct Bench {
    pub generator: Generator,
    pub window: Arc<Window>,
    pub launch: Launch,
    /// Paper orders to place on a relay target before the window.
    pub orders: usize,
    /// The measured clients offer permessage-deflate.
    pub deflate: bool,
    /// Run every relay target as a cluster of this many nodes on a Redis of the bench's own.
    pub cluster: Option<usize>,
}

/// The ticker of symbol `i` (Twelve Data spelling; canonical under the relay's symbol rules).
pub fn symbol_name(i: usize) -> String {
    format!("T{i:05}")
}

impl Bench {
    /// Runs `scenario` at `sizes` against a fresh `kind` target. Errors become a failed row.
    pub async fn run(&self, scenario: Scenario, sizes: &Sizes, kind: Kind) -> Vec<Row> {
        match self.try_run(scenario, sizes, kind).await {
            Ok(rows) => rows,
            Err(e) => vec![Row {
                target: kind,
                cluster: self.cluster,
                scenario,
                label: scenario.label().to_owned(),
                clients: sizes.clients,
                symbols: sizes.symbols.to_string(),
                ticks_in_per_s: 0.0,
                deliveries_per_s: 0.0,
                summary: Summary::default(),
                relay_conflated: None,
                rss: None,
                rss_per_client: None,
                cpu_percent: None,
                bench_cpu_percent: None,
                notes: vec![format!("FAILED: {e:#}")],
                failed: true,
            }],
        }
    }

    async fn try_run(&self, scenario: Scenario, sizes: &Sizes, kind: Kind) -> anyhow::Result<Vec<Row>> {
        if sizes.symbols == 0 || sizes.per_client == 0 || sizes.per_client > sizes.symbols {
            bail!("need 0 < symbols per client ({}) <= symbols ({})", sizes.per_client, sizes.symbols);
        }
        self.window.reset();
        self.generator.reset_count();
        self.generator.set_rate(0.0);
        let accepted_before = self.generator.accepted();
        if scenario == Scenario::Dashboard {
            if kind != Kind::Relay || self.launch.attach.is_some() || self.cluster.is_some() {
                bail!("dashboard runs the relay's own simulator: a spawned single relay only");
            }
            // A second `--providers` adds to the first: the relay runs Twelve Data (the idle generator) and sim.
            let mut launch = self.launch.clone();
            launch.relay_args.extend(["--providers".to_owned(), "sim".to_owned()]);
            let target = Target::start(kind, &launch, &self.generator.ws_url()).await?;
            let result = self.measure_dashboard(sizes, &target).await;
            target.stop().await;
            return result;
        }
        self.generator.watch_peak();
        let (cluster, nodes) = match self.cluster {
            Some(n) if kind == Kind::Relay => {
                let (cluster, nodes) = Cluster::start(n, &self.launch, &self.generator.ws_url()).await?;
                (Some(cluster), nodes)
            }
            Some(_) => bail!("--cluster runs relays only"),
            None => (None, vec![Target::start(kind, &self.launch, &self.generator.ws_url()).await?]),
        };
        let result = self.measure(scenario, sizes, &nodes, cluster.as_ref(), accepted_before).await;
        self.generator.set_rate(0.0);
        for node in nodes {
            node.stop().await;
        }
        if let Some(cluster) = cluster {
            cluster.redis.stop().await;
        }
        result
    }

    async fn measure(
        &self,
        scenario: Scenario,
        sizes: &Sizes,
        nodes: &[Target],
        cluster: Option<&Cluster>,
        accepted_before: usize,
    ) -> anyhow::Result<Vec<Row>> {
        let target = &nodes[0];
        let pids: Vec<Option<u32>> = nodes.iter().map(Target::pid).collect();
        let urls: Vec<String> = nodes.iter().map(Target::ws_url).collect();
        if self.launch.attach.is_none() {
            wait_until("the target's upstream connection", Duration::from_secs(30), || {
                Ok(self.generator.accepted() > accepted_before)
            })
            .await?;
        }
        let recorder = Arc::new(Recorder::new(self.window.clone())?);
        let stop = CancellationToken::new();
        let _stop_clients = stop.clone().drop_guard();
        let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));

        // Prime every symbol upstream, in few large subscribe commands.
        let all: Vec<String> = (0..sizes.symbols).map(symbol_name).collect();
        let primers: Vec<ClientSpec> = all
            .chunks(SYMBOLS_PER_PRIMER)
            .enumerate()
            .map(|(i, chunk)| ClientSpec {
                url: urls[i % urls.len()].clone(),
                symbols: chunk.to_vec(),
                behaviour: Behaviour::Fast,
                group: Group::None,
                deflate: false,
            })
            .collect();
        let primer_count = primers.len();
        let primer_stop = stop.child_token();
        for (i, spec) in primers.into_iter().enumerate() {
            clients::spawn(spec, i, recorder.clone(), permits.clone(), primer_stop.clone());
        }
        wait_until("the upstream subscriptions", Duration::from_secs(180), || {
            check_failures(&recorder)?;
            let skip = if self.launch.attach.is_some() { 0 } else { accepted_before };
            Ok(self.generator.subscribed_of(&all, skip) == all.len())
        })
        .await?;
        wait_until("the primers' replies", Duration::from_secs(30), || {
            check_failures(&recorder)?;
            Ok(recorder.progress().1 == primer_count)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let orders = if self.orders > 0 && target.kind == Kind::Relay {
            let placed = Instant::now();
            target.place_orders(&all, self.orders).await?;
            Some((self.orders, placed.elapsed()))
        } else {
            None
        };
        let rss_before = sum_all(pids.iter().map(|p| p.and_then(rss_bytes)));

        // The measured clients.
        let specs = client_specs(scenario, sizes, &urls, cluster.map(|c| c.owner), self.deflate);
        let remote = specs.iter().filter(|c| c.group == Group::Remote).count();
        let started = Instant::now();
        for (i, spec) in specs.into_iter().enumerate() {
            clients::spawn(spec, i, recorder.clone(), permits.clone(), stop.clone());
        }
        let expected = primer_count + sizes.clients;
        let mut all_connected = None;
        let connect_budget = Duration::from_secs(60).max(Duration::from_millis(20 * sizes.clients as u64));
        wait_until("the clients", connect_budget, || {
            check_failures(&recorder)?;
            let (connected, subscribed, _) = recorder.progress();
            if connected == expected && all_connected.is_none() {
                all_connected = Some(started.elapsed());
            }
            Ok(subscribed == expected)
        })
        .await?;
        let connect_time = all_connected.unwrap_or_else(|| started.elapsed());
        let subscribe_time = started.elapsed();
        // The primers' symbols are now held by the clients too: closing them changes no upstream demand.
        primer_stop.cancel();

        let mut notes = vec![format!(
            "connect {:.0}/s ({} in {:.2} s, subscribed by {:.2} s)",
            sizes.clients as f64 / connect_time.as_secs_f64().max(1e-6),
            sizes.clients,
            connect_time.as_secs_f64(),
            subscribe_time.as_secs_f64()
        )];
        if let Some((n, took)) = orders {
            notes.push(format!("{n} working paper orders (placed in {:.1} s)", took.as_secs_f64()));
        }

        if scenario == Scenario::Idle {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss_after = sum_all(pids.iter().map(|p| p.and_then(rss_bytes)));
            let p0 = Probe::take(&pids, cluster).await;
            tokio::time::sleep(sizes.duration).await;
            let p1 = Probe::take(&pids, cluster).await;
            check_failures(&recorder)?;
            let failure = cluster.and_then(|_| self.upstream_failure(accepted_before));
            if let Some(cluster) = cluster {
                notes.extend(cluster_notes(cluster, &p0, &p1, None));
            }
            notes.extend(failure.clone());
            let rss_per_client =
                rss_before.zip(rss_after).map(|(b, a)| a.saturating_sub(b) as f64 / sizes.clients as f64);
            if let (Some(before), Some(after), Some(per)) = (rss_before, rss_after, rss_per_client) {
                notes.insert(
                    0,
                    format!(
                        "**RSS per connection {:.1} KB** ({:.1} → {:.1} MB)",
                        per / 1024.0,
                        before as f64 / 1048576.0,
                        after as f64 / 1048576.0
                    ),
                );
            }
            return Ok(vec![Row {
                target: target.kind,
                cluster: cluster.map(|_| nodes.len()),
                scenario,
                label: scenario.label().to_owned(),
                clients: sizes.clients,
                symbols: symbols_label(sizes),
                ticks_in_per_s: 0.0,
                deliveries_per_s: 0.0,
                summary: Summary::default(),
                relay_conflated: None,
                rss: rss_after,
                rss_per_client,
                cpu_percent: p0.relay_percent_until(&p1),
                bench_cpu_percent: p0.bench.zip(p1.bench).map(|(a, b)| a.percent_until(&b)),
                notes,
                failed: failure.is_some(),
            }]);
        }

        self.generator.set_rate(sizes.rate);
        tokio::time::sleep(sizes.warmup).await;
        let status_before = statuses(nodes).await;
        let p0 = Probe::take(&pids, cluster).await;
        let wire0 = [Group::Fast, Group::Slow, Group::Remote].map(|g| recorder.wire_bytes(g));
        self.window.open(now_ns());
        if scenario == Scenario::Burst {
            self.generator.set_rate(sizes.rate * sizes.burst_factor);
        }
        tokio::time::sleep(sizes.duration).await;
        self.window.close(now_ns());
        self.generator.set_rate(sizes.rate);
        let p1 = Probe::take(&pids, cluster).await;
        let wire1 = [Group::Fast, Group::Slow, Group::Remote].map(|g| recorder.wire_bytes(g));
        let rss = sum_all(pids.iter().map(|p| p.and_then(rss_bytes)));
        let peak = sum_all(pids.iter().map(|p| p.and_then(peak_rss_bytes)));
        tokio::time::sleep(sizes.drain).await;
        let status_after = statuses(nodes).await;
        self.generator.set_rate(0.0);
        check_failures(&recorder)?;
        let failure = cluster.and_then(|_| self.upstream_failure(accepted_before));

        let secs = sizes.duration.as_secs_f64();
        let ticks = self.generator.sent_in_window() as f64;
        let relay_conflated = sum_all(
            status_before
                .iter()
                .zip(&status_after)
                .map(|(a, b)| Some(b.as_ref()?.conflated_total - a.as_ref()?.conflated_total)),
        );
        if let Some(peak) = peak {
            notes.push(format!("peak RSS {:.1} MB", peak as f64 / 1048576.0));
        }
        if let Some(cluster) = cluster {
            notes.extend(cluster_notes(cluster, &p0, &p1, Some((&status_before, &status_after))));
        }
        notes.extend(failure.clone());
        // In a cluster the fast clients are those on the owner and those behind Redis; both are also shown apart.
        let fast: &[Group] = if cluster.is_some() { &[Group::Fast, Group::Remote] } else { &[Group::Fast] };
        let mut groups: Vec<(&[Group], String, usize)> = if scenario == Scenario::Slow {
            let slow = slow_count(sizes);
            vec![
                (fast, "slow: fast clients".to_owned(), sizes.clients - slow),
                (&[Group::Slow], "slow: slow clients".to_owned(), slow),
            ]
        } else {
            let label = if scenario == Scenario::Burst {
                format!("burst ×{} for {} s", sizes.burst_factor, secs)
            } else {
                scenario.label().to_owned()
            };
            vec![(fast, label, sizes.clients)]
        };
        if cluster.is_some() && remote > 0 {
            let label = groups[0].1.clone();
            groups.push((&[Group::Fast], format!("{label}: on the owner"), groups[0].2 - remote));
            groups.push((&[Group::Remote], format!("{label}: via Redis"), remote));
        }
        let mut rows = Vec::new();
        for (group, label, clients) in groups {
            let summary = recorder.summary_of(group);
            let offered = ticks * (clients * sizes.per_client) as f64 / sizes.symbols as f64;
            let mut notes = notes.clone();
            if offered > 0.0 {
                notes.insert(
                    0,
                    format!(
                        "{:.1}% of the window's ticks delivered by the drain's end",
                        100.0 * summary.deliveries as f64 / offered
                    ),
                );
            }
            if summary.frames > 0 {
                notes.insert(1, format!("{:.2} quotes/frame", summary.deliveries as f64 / summary.frames as f64));
            }
            // Per delivery only where one group had them all (the slow scenario's CPU serves both groups).
            let cpu_seconds = p0.relay_seconds_until(&p1);
            if let Some(cpu) =
                cpu_seconds.filter(|_| summary.arrived > 0 && scenario != Scenario::Slow && group == fast)
            {
                notes.push(format!("{:.0} ns of target CPU per delivery", 1e9 * cpu / summary.arrived as f64));
            }
            let wire: u64 = group.iter().map(|g| wire1[*g as usize].saturating_sub(wire0[*g as usize])).sum();
            if let Some(note) = wire_note(wire, secs, clients, summary.arrived, self.deflate) {
                notes.push(note);
            }
            if summary.reordered > 0 {
                notes.push(format!("**{} stale** (older than a quote already received)", summary.reordered));
            }
            if summary.duplicates > 0 {
                notes.push(format!("**{} duplicates**", summary.duplicates));
            }
            if summary.dropped > 0 {
                notes.push(format!(
                    "**{} disconnected** after subscribing (first: {})",
                    summary.dropped,
                    summary.first_drop.as_deref().unwrap_or("?")
                ));
            }
            if group == [Group::Slow] {
                if summary.deliveries == 0 {
                    notes.push("no tick of the window reached them before the drain ended".into());
                }
                notes.push(format!(
                    "{} pause {} ms per frame, {} never read",
                    clients - clients / 2,
                    sizes.slow_pause.as_millis(),
                    clients / 2
                ));
            }
            rows.push(Row {
                target: target.kind,
                cluster: cluster.map(|_| nodes.len()),
                scenario,
                label,
                clients,
                symbols: symbols_label(sizes),
                ticks_in_per_s: ticks / secs,
                deliveries_per_s: summary.arrived as f64 / secs,
                summary,
                relay_conflated,
                rss,
                rss_per_client: None,
                cpu_percent: p0.relay_percent_until(&p1),
                bench_cpu_percent: p0.bench.zip(p1.bench).map(|(a, b)| a.percent_until(&b)),
                notes,
                failed: failure.is_some(),
            });
        }
        Ok(rows)
    }

    /// Cluster mode: why the run must fail unless exactly one upstream connection reached the generator since
    /// the nodes started, never two at once.
    fn upstream_failure(&self, accepted_before: usize) -> Option<String> {
        let accepted = self.generator.accepted().saturating_sub(accepted_before);
        let peak = self.generator.peak_open();
        (accepted != 1 || peak != 1).then(|| {
            format!(
                "**FAILED: {accepted} upstream connection(s) reached the generator during the run, at most {peak} open \
                 at once; a cluster must hold exactly one**"
            )
        })
    }
}

/// CPU readings at one moment: every relay node, the bench itself, and (cluster) Redis and its `PUBLISH` count.
struct Probe {
    nodes: Vec<Option<CpuSample>>,
    bench: Option<CpuSample>,
    redis: Option<CpuSample>,
    publish: Option<(u64, u64)>,
    at: Instant,
}

impl Probe {
    async fn take(pids: &[Option<u32>], cluster: Option<&Cluster>) -> Probe {
        // redis-cli first: it takes milliseconds, the CPU readings should be as close to the window as possible.
        let publish = match cluster {
            Some(c) => c.redis.publish_calls().await,
            None => None,
        };
        Probe {
            nodes: pids.iter().map(|p| p.and_then(CpuSample::read)).collect(),
            bench: CpuSample::read(std::process::id()),
            redis: cluster.and_then(|c| c.redis.pid()).and_then(CpuSample::read),
            publish,
            at: Instant::now(),
        }
    }

    /// The relays' CPU until `later`, summed over the nodes, in percent of one core.
    fn relay_percent_until(&self, later: &Probe) -> Option<f64> {
        sum_all(self.nodes.iter().zip(&later.nodes).map(|(a, b)| Some(a.as_ref()?.percent_until(b.as_ref()?))))
    }

    /// The relays' CPU seconds until `later`, summed over the nodes.
    fn relay_seconds_until(&self, later: &Probe) -> Option<f64> {
        sum_all(self.nodes.iter().zip(&later.nodes).map(|(a, b)| Some(b.as_ref()?.seconds_since(a.as_ref()?))))
    }
}

/// Every node's `/api/status` (none for the Node peer).
async fn statuses(nodes: &[Target]) -> Vec<Option<StatusResponse>> {
    let mut all = Vec::with_capacity(nodes.len());
    for node in nodes {
        all.push(node.status().await);
    }
    all
}

/// The sum, if every value is there (and there is at least one).
fn sum_all<T: std::iter::Sum<T>>(values: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    let values: Option<Vec<T>> = values.into_iter().collect();
    values.filter(|v| !v.is_empty()).map(|v| v.into_iter().sum())
}

/// Every node's `/api/status` before and after a run (`None` where a node did not answer).
type Statuses<'a> = (&'a [Option<StatusResponse>], &'a [Option<StatusResponse>]);

/// What a cluster run adds to the notes: each node's CPU, Redis's CPU and what it paid for, and the bus counters.
fn cluster_notes(cluster: &Cluster, p0: &Probe, p1: &Probe, status: Option<Statuses<'_>>) -> Vec<String> {
    let mut notes = Vec::new();
    let per_node: Vec<String> = p0
        .nodes
        .iter()
        .zip(&p1.nodes)
        .enumerate()
        .map(|(i, (a, b))| {
            let cpu = a.zip(*b).map_or("?".into(), |(a, b)| format!("{:.0}", a.percent_until(&b)));
            let owner = if i == cluster.owner { " (owner)" } else { "" };
            format!("{}{owner} {cpu} %", node_id(i))
        })
        .collect();
    notes.push(format!("{} nodes, relay CPU {}", p0.nodes.len(), per_node.join(", ")));
    if let Some((a, b)) = p0.redis.zip(p1.redis) {
        let mut note = format!("**Redis CPU {:.1} %**", a.percent_until(&b));
        if let Some(((c0, u0), (c1, u1))) = p0.publish.zip(p1.publish) {
            let calls = c1.saturating_sub(c0);
            if calls > 0 {
                note.push_str(&format!(
                    " for {:.0} PUBLISH/s: {:.1} µs of Redis CPU per PUBLISH ({:.1} µs inside the command)",
                    calls as f64 / p1.at.duration_since(p0.at).as_secs_f64().max(1e-6),
                    1e6 * b.seconds_since(&a) / calls as f64,
                    u1.saturating_sub(u0) as f64 / calls as f64
                ));
            }
        }
        notes.push(note);
    }
    if let Some((before, after)) = status {
        let delta = |i: usize, f: fn(&hamster_shared::api::ClusterStatus) -> u64| {
            Some(f(after.get(i)?.as_ref()?.cluster.as_ref()?) - f(before.get(i)?.as_ref()?.cluster.as_ref()?))
        };
        let published = delta(cluster.owner, |c| c.published_total);
        let received: Vec<String> = (0..before.len())
            .filter(|i| *i != cluster.owner)
            .map(|i| delta(i, |c| c.received_total).map_or("?".into(), |n| n.to_string()))
            .collect();
        let stale: u64 = (0..before.len()).filter_map(|i| delta(i, |c| c.stale_dropped_total)).sum();
        let catch_ups: u64 = (0..before.len()).filter_map(|i| delta(i, |c| c.catch_ups_total)).sum();
        notes.push(format!(
            "bus from warm-up to drain: owner published {}, others received {}; {stale} stale dropped, {catch_ups} \
             catch-ups",
            published.map_or("?".into(), |n| n.to_string()),
            received.join(" / ")
        ));
    }
    notes
}

/// Bytes read from the sockets over the window: per client and second, and per quote that arrived.
fn wire_note(bytes: u64, secs: f64, clients: usize, arrived: u64, deflate: bool) -> Option<String> {
    if bytes == 0 || clients == 0 || secs <= 0.0 {
        return None;
    }
    let per_quote =
        if arrived > 0 { format!(", {:.1} B per quote", bytes as f64 / arrived as f64) } else { String::new() };
    Some(format!(
        "**{:.1} KB/s on the wire per client**{per_quote} ({})",
        bytes as f64 / secs / clients as f64 / 1000.0,
        if deflate { "permessage-deflate offered" } else { "no compression offered" }
    ))
}

impl Bench {
    /// `dashboard`: clients of `per_client` simulated symbols each, on a relay running its simulator.
    async fn measure_dashboard(&self, sizes: &Sizes, target: &Target) -> anyhow::Result<Vec<Row>> {
        let pid = target.pid();
        let recorder = Arc::new(Recorder::new(self.window.clone())?);
        let stop = CancellationToken::new();
        let _stop_clients = stop.clone().drop_guard();
        let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let started = Instant::now();
        for (i, spec) in
            client_specs(Scenario::Dashboard, sizes, &[target.ws_url()], None, self.deflate).into_iter().enumerate()
        {
            clients::spawn(spec, i, recorder.clone(), permits.clone(), stop.clone());
        }
        wait_until(
            "the dashboards",
            Duration::from_secs(60).max(Duration::from_millis(20 * sizes.clients as u64)),
            || {
                check_failures(&recorder)?;
                Ok(recorder.progress().1 == sizes.clients)
            },
        )
        .await?;
        let subscribed = started.elapsed();
        tokio::time::sleep(sizes.warmup).await;
        let me = std::process::id();
        let (cpu0, bench0) = (pid.and_then(CpuSample::read), CpuSample::read(me));
        let wire0 = recorder.wire_bytes(Group::Fast);
        self.window.open(now_ns());
        tokio::time::sleep(sizes.duration).await;
        self.window.close(now_ns());
        let (cpu1, bench1) = (pid.and_then(CpuSample::read), CpuSample::read(me));
        let wire1 = recorder.wire_bytes(Group::Fast);
        let rss = pid.and_then(rss_bytes);
        check_failures(&recorder)?;

        let secs = sizes.duration.as_secs_f64();
        let summary = recorder.summary(Group::Fast);
        let mut notes = Vec::new();
        notes.extend(wire_note(wire1.saturating_sub(wire0), secs, sizes.clients, summary.arrived, self.deflate));
        if let Some(cpu) = cpu0.zip(cpu1).map(|(a, b)| b.seconds_since(&a)).filter(|_| summary.arrived > 0) {
            notes.push(format!("{:.0} ns of target CPU per delivery", 1e9 * cpu / summary.arrived as f64));
        }
        notes.push(format!("subscribed by {:.2} s", subscribed.as_secs_f64()));
        if summary.dropped > 0 {
            notes.push(format!(
                "**{} disconnected** (first: {})",
                summary.dropped,
                summary.first_drop.as_deref().unwrap_or("?")
            ));
        }
        Ok(vec![Row {
            target: target.kind,
            cluster: None,
            scenario: Scenario::Dashboard,
            label: "dashboard (simulator)".to_owned(),
            clients: sizes.clients,
            symbols: sizes.per_client.to_string(),
            ticks_in_per_s: 0.0,
            deliveries_per_s: summary.arrived as f64 / secs,
            summary,
            relay_conflated: None,
            rss,
            rss_per_client: None,
            cpu_percent: cpu0.zip(cpu1).map(|(a, b)| a.percent_until(&b)),
            bench_cpu_percent: bench0.zip(bench1).map(|(a, b)| a.percent_until(&b)),
            notes,
            failed: false,
        }])
    }
}

/// `20`, or `20 of 1000` when clients hold different subsets.
fn symbols_label(sizes: &Sizes) -> String {
    if sizes.per_client == sizes.symbols {
        sizes.symbols.to_string()
    } else {
        format!("{} of {}", sizes.per_client, sizes.symbols)
    }
}

/// Slow clients in the `slow` scenario.
fn slow_count(sizes: &Sizes) -> usize {
    ((sizes.clients as f64 * sizes.slow_share).round() as usize).min(sizes.clients)
}

/// The measured clients of a scenario: who subscribes to what, and how each reads. Clients go round-robin to
/// `urls`; in a cluster (`owner` is the index of the node holding the upstream connection) the fast readers on
/// the other nodes are measured as [`Group::Remote`].
fn client_specs(
    scenario: Scenario,
    sizes: &Sizes,
    urls: &[String],
    owner: Option<usize>,
    deflate: bool,
) -> Vec<ClientSpec> {
    let slow = if scenario == Scenario::Slow { slow_count(sizes) } else { 0 };
    (0..sizes.clients)
        .map(|c| {
            // Fan-out: everyone from symbol 0. Spread and idle: a window sliding by `per_client` per client,
            // wrapping, so every symbol gets the same number of subscribers.
            let first = if matches!(scenario, Scenario::Spread | Scenario::Idle) { c * sizes.per_client } else { 0 };
            let name = |i: usize| match scenario {
                Scenario::Dashboard => format!("sim:{}", symbol_name(i)),
                _ => symbol_name(i),
            };
            let symbols = (0..sizes.per_client).map(|j| name((first + j) % sizes.symbols)).collect();
            // Slow clients are spread evenly among the fast ones; half of them pause, half never read.
            let is_slow = slow > 0 && (c * slow) / sizes.clients != ((c + 1) * slow) / sizes.clients;
            let (behaviour, group) = match (is_slow, ((c + 1) * slow / sizes.clients) % 2) {
                (false, _) if owner.is_some_and(|o| o != c % urls.len()) => (Behaviour::Fast, Group::Remote),
                (false, _) => (Behaviour::Fast, Group::Fast),
                (true, 1) => (Behaviour::Slow(sizes.slow_pause), Group::Slow),
                (true, _) => (Behaviour::Stalled, Group::Slow),
            };
            ClientSpec { url: urls[c % urls.len()].clone(), symbols, behaviour, group, deflate }
        })
        .collect()
}

fn check_failures(recorder: &Recorder) -> anyhow::Result<()> {
    let (_, _, failed) = recorder.progress();
    if failed > 0 {
        bail!("{failed} client(s) failed; first: {}", recorder.first_error().unwrap_or_default());
    }
    Ok(())
}

/// Polls `done` every 20 ms until it holds, fails, or `limit` passes.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if done().with_context(|| format!("waiting for {what}"))? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("gave up waiting for {what} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_every_symbol_evenly_and_slow_clients_are_mixed_in() {
        let sizes = Sizes { clients: 10, symbols: 10, per_client: 3, ..Scenario::Spread.sizes(true) };
        let specs = client_specs(Scenario::Spread, &sizes, &["ws://x/ws".to_owned()], None, false);
        let mut count = std::collections::HashMap::new();
        for s in specs.iter().flat_map(|c| &c.symbols) {
            *count.entry(s.clone()).or_insert(0) += 1;
        }
        assert_eq!(count.len(), 10);
        assert!(count.values().all(|&n| n == 3));

        let sizes = Sizes { clients: 10, slow_share: 0.4, ..Scenario::Slow.sizes(true) };
        let specs = client_specs(Scenario::Slow, &sizes, &["ws://x/ws".to_owned()], None, false);
        let slow: Vec<_> = specs.iter().filter(|c| c.group == Group::Slow).collect();
        assert_eq!(slow.len(), 4);
        assert!(slow.iter().any(|c| c.behaviour == Behaviour::Stalled));
        assert!(slow.iter().any(|c| matches!(c.behaviour, Behaviour::Slow(_))));
        assert!(specs.iter().all(|c| c.symbols == specs[0].symbols), "slow is a fan-out");
    }

    #[test]
    fn cluster_clients_go_round_robin_and_those_away_from_the_owner_are_remote() {
        let sizes = Sizes { clients: 7, ..Scenario::Fanout.sizes(true) };
        let urls: Vec<String> = (1..=3).map(|i| format!("ws://n{i}/ws")).collect();
        let specs = client_specs(Scenario::Fanout, &sizes, &urls, Some(1), false);
        let placed: Vec<(&str, Group)> = specs.iter().map(|c| (c.url.as_str(), c.group)).collect();
        assert_eq!(
            placed[..4],
            [
                ("ws://n1/ws", Group::Remote),
                ("ws://n2/ws", Group::Fast),
                ("ws://n3/ws", Group::Remote),
                ("ws://n1/ws", Group::Remote)
            ]
        );
        assert_eq!(specs.iter().filter(|c| c.group == Group::Fast).count(), 2);
        let single = client_specs(Scenario::Fanout, &sizes, &urls[..1], None, false);
        assert!(single.iter().all(|c| c.group == Group::Fast && c.url == "ws://n1/ws"));
    }

    #[test]
    fn symbol_names_follow_the_relays_rules() {
        for i in [0, 7, 99_999] {
            let name = symbol_name(i);
            assert_eq!(hamster_shared::Symbol::parse(&name).ok().map(|s| s.to_string()), Some(name));
        }
    }
}
