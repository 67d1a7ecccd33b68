//! `hamster-bench`: measures the Hamster Terminal relay under load, from one process that is both its upstream
//! and its clients.
//!
//! ```text
//!  upstream (Twelve Data protocol)  ──ticks, marked──▶  relay or Node peer  ──quotes──▶  N clients
//!  upstream.rs                                         target.rs (spawned)             clients.rs
//!        ▲ rate, window                                     ▲ /proc, /api/status             │ latency, gaps
//!        └──────────────────── scenario.rs (orchestrates one run) ◀─────────────────────────┘
//!                                         │
//!                                  report.rs (markdown)
//! ```
//!
//! * [`mark`] — the shared clock and how a tick carries its sequence number and send instant through the
//!   relay exactly, plus the measurement window.
//! * [`upstream`] — the generator: a Twelve Data WebSocket server pushing ticks at a set total rate.
//! * [`target`] — starting the real relay binary (or the Node peer, or attaching to a running server).
//! * [`cluster`] — `--cluster N`: a `redis-server` of the bench's own and N relay nodes sharing it.
//! * [`clients`] — the measuring WebSocket clients and their HDR histograms.
//! * [`procstat`] — RSS and CPU of the target from `/proc`, and the open-files limit.
//! * [`pin`] — `--pin`: the servers under test on one core, the bench on the other.
//! * [`scenario`] — fanout, spread, idle, burst, slow, dashboard: sizes and the steps of one run.
//! * [`report`] — the results table.
//!
//! Numbers measured here are the relay plus two loopback hops plus the bench's own scheduling on the same
//! machine; see `docs/benchmarks.md` for how to read them.

mod clients;
mod cluster;
mod mark;
mod pin;
mod procstat;
mod report;
mod scenario;
mod target;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::mark::Window;
use crate::scenario::{Bench, Scenario, Sizes};
use crate::target::{Kind, Launch};
use crate::upstream::Generator;

/// Load generator and measuring clients for the Hamster Terminal relay.
///
/// Runs each scenario against a freshly started target and prints a markdown table of the results. Sizes
/// default per scenario (see docs/benchmarks.md); the size flags override them for every scenario run.
#[derive(Debug, Parser)]
#[command(name = "hamster-bench", version, about)]
struct Args {
    /// Scenarios to run, in order (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,

    /// Small sizes, about 3 s per scenario, all scenarios unless named; exits non-zero if a scenario delivered
    /// nothing to its (fast) clients or failed. For CI.
    #[arg(long)]
    smoke: bool,

    /// Servers to measure, comma-separated: each scenario runs against each.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "relay")]
    target: Vec<Kind>,

    /// The relay binary [default: $CARGO_TARGET_DIR/release/hamster-relay, else target/release/hamster-relay].
    #[arg(long)]
    relay_bin: Option<PathBuf>,

    /// Extra argument for the relay, repeatable (e.g. --relay-arg=--client-queue-frames=128).
    #[arg(long = "relay-arg", allow_hyphen_values = true)]
    relay_args: Vec<String>,

    /// RUST_LOG for the relay.
    #[arg(long, default_value = "warn")]
    relay_log: String,

    /// Node.js executable for the Node peer.
    #[arg(long, default_value = "node")]
    node_bin: String,

    /// The Node peer script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/node-peer/peer.js"))]
    node_peer: PathBuf,

    /// Use an already running server (http://HOST:PORT) instead of spawning one. It must already be pointed at
    /// this bench's generator: fix the generator's address with --upstream-listen.
    #[arg(long)]
    attach: Option<String>,

    /// Pin the servers under test (relays, the Node peer, redis-server) to CPU 1 and the bench (generator and
    /// clients) to CPU 0, so they do not take turns on one core (Linux; needs two CPUs).
    #[arg(long)]
    pin: bool,

    /// Pid of the --attach server, to read its memory and CPU.
    #[arg(long, requires = "attach")]
    attach_pid: Option<u32>,

    /// Where the generator (the Twelve Data endpoint) listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    upstream_listen: SocketAddr,

    /// Measured clients.
    #[arg(long)]
    clients: Option<usize>,

    /// Distinct symbols in the scenario.
    #[arg(long)]
    symbols: Option<usize>,

    /// Symbols each client subscribes to (spread, idle).
    #[arg(long)]
    per_client: Option<usize>,

    /// Ticks per second sent upstream, over all symbols.
    #[arg(long)]
    rate: Option<f64>,

    /// Seconds of ticking before the window opens.
    #[arg(long)]
    warmup: Option<f64>,

    /// Seconds measured (idle: seconds of CPU watched; burst: the burst's length).
    #[arg(long)]
    duration: Option<f64>,

    /// Seconds after the window for late deliveries.
    #[arg(long)]
    drain: Option<f64>,

    /// slow: share of clients that are slow (half pause after every frame, half never read).
    #[arg(long)]
    slow_share: Option<f64>,

    /// slow: pause of the slow readers after each frame, in ms.
    #[arg(long)]
    slow_pause_ms: Option<u64>,

    /// burst: rate multiplier during the window.
    #[arg(long)]
    burst_factor: Option<f64>,

    /// Working paper orders placed on the relay before the window (stop and trailing-stop buys that never
    /// trigger, round-robin over the scenario's symbols), so its broker evaluates them on every tick. The relay
    /// target only; give it --relay-arg=--paper-starting-cash=1e15 so buying power never refuses them.
    #[arg(long, default_value_t = 0)]
    orders: usize,

    /// The measured clients offer permessage-deflate (RFC 7692) and inflate what the relay compresses (through
    /// yawc rather than tokio-tungstenite). Whether the relay accepts is its own `--ws-deflate` (pass it with
    /// --relay-arg); bytes on the wire are reported either way.
    #[arg(long)]
    deflate: bool,

    /// Run the relay as a cluster of N nodes (N >= 1) sharing a `redis-server` the bench starts on a free
    /// loopback port (persistence off; redis-server and redis-cli must be installed). Clients go round-robin
    /// over the nodes; a run fails unless exactly one upstream connection reached the generator.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64), conflicts_with = "attach")]
    cluster: Option<u16>,

    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Args {
    /// `scenario`'s sizes with this command line's overrides applied.
    fn sizes(&self, scenario: Scenario) -> Sizes {
        let mut s = scenario.sizes(self.smoke);
        let secs = |v: f64| Duration::from_secs_f64(v.max(0.0));
        if let Some(v) = self.clients {
            s.clients = v;
        }
        if let Some(v) = self.symbols {
            s.symbols = v;
            if s.per_client > v
                || scenario == Scenario::Fanout
                || scenario == Scenario::Burst
                || scenario == Scenario::Slow
                || scenario == Scenario::Dashboard
                || scenario == Scenario::Broadcast
            {
                s.per_client = v;
            }
        }
        if let Some(v) = self.per_client {
            s.per_client = v;
        }
        if let Some(v) = self.rate {
            s.rate = v;
        }
        if let Some(v) = self.warmup {
            s.warmup = secs(v);
        }
        if let Some(v) = self.duration {
            s.duration = secs(v);
        }
        if let Some(v) = self.drain {
            s.drain = secs(v);
        }
        if let Some(v) = self.slow_share {
            s.slow_share = v.clamp(0.0, 1.0);
        }
        if let Some(v) = self.slow_pause_ms {
            s.slow_pause = Duration::from_millis(v);
        }
        if let Some(v) = self.burst_factor {
            s.burst_factor = v;
        }
        s
    }

    fn relay_bin(&self) -> PathBuf {
        self.relay_bin.clone().unwrap_or_else(|| {
            let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
            dir.join("release").join("hamster-relay")
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.pin {
        if !pin::possible() {
            eprintln!("hamster-bench: --pin needs at least two CPUs");
            return ExitCode::FAILURE;
        }
        // Before the runtime exists, so every one of its threads inherits the core.
        if let Err(e) = pin::to(pin::BENCH_CPU) {
            eprintln!("hamster-bench: --pin: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("[bench] pinned: bench on CPU {}, servers under test on CPU {}", pin::BENCH_CPU, pin::SERVER_CPU);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hamster-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hamster-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    mark::now_ns();
    match procstat::raise_nofile_limit() {
        Ok(limit) => eprintln!("[bench] open-files limit {limit}"),
        Err(e) => eprintln!("[bench] cannot raise the open-files limit: {e}"),
    }
    let scenarios = if args.scenarios.is_empty() { Scenario::ALL.to_vec() } else { args.scenarios.clone() };
    let launch = Launch {
        relay_bin: args.relay_bin(),
        relay_args: args.relay_args.clone(),
        relay_log: args.relay_log.clone(),
        node_bin: args.node_bin.clone(),
        node_peer: args.node_peer.clone(),
        attach: args.attach.clone().map(|url| (url, args.attach_pid)),
        cluster_node: None,
        pin: args.pin,
    };
    if args.cluster.is_some() && args.target.contains(&Kind::Node) {
        anyhow::bail!("--cluster runs relay nodes only: leave out --target node");
    }
    if args.attach.is_none() && args.target.contains(&Kind::Relay) && !launch.relay_bin.is_file() {
        anyhow::bail!(
            "no relay binary at {} (build it with `cargo build --release -p hamster-relay`, or pass --relay-bin)",
            launch.relay_bin.display()
        );
    }
    let window = Arc::new(Window::default());
    let generator = Generator::start(args.upstream_listen, window.clone())?;
    eprintln!("[bench] generator at {}", generator.ws_url());
    let cluster = args.cluster.map(usize::from);
    let bench = Bench { generator, window, launch, orders: args.orders, deflate: args.deflate, cluster };

    let load_before = loadavg();
    let mut rows = Vec::new();
    for &scenario in &scenarios {
        let sizes = args.sizes(scenario);
        for &kind in &args.target {
            eprintln!("[bench] {} against {} ({sizes:?})", scenario.label(), kind.label());
            let got = bench.run(scenario, &sizes, kind).await;
            for row in &got {
                if row.failed {
                    eprintln!("[bench] {} {}: {}", kind.label(), row.label, row.notes.join("; "));
                }
            }
            rows.extend(got);
        }
    }
    bench.generator.stop();

    let mut header = format!(
        "hamster-bench{} — {} core(s); load average (1 min) {} before, {} after; relay {}",
        if args.smoke { " --smoke" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        loadavg(),
        bench.launch.relay_bin.display(),
    );
    if let Some(n) = cluster {
        header.push_str(&format!("; cluster of {n} node(s) on {}", redis_version()));
    }
    let report = report::render(&header, &rows);
    println!("{report}");
    if let Some(path) = &args.out {
        std::fs::write(path, &report).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }

    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| {
            r.failed
                || (r.scenario != Scenario::Idle
                    && r.label != "slow: slow clients"
                    && r.summary.arrived == 0
                    && r.summary.deliveries == 0)
        })
        .map(|r| r.label.as_str())
        .collect();
    if args.smoke && !failed.is_empty() {
        eprintln!("[bench] smoke failed: no deliveries or an error in {}", failed.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    // A cluster run that failed (e.g. a second upstream connection) fails the bench, smoke or not.
    if rows.iter().any(|r| r.failed && r.cluster.is_some()) {
        eprintln!("[bench] a cluster run failed: see its notes");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `redis-server --version`'s version, for the report's header.
fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace().find_map(|w| w.strip_prefix("v=")).map(|v| format!("redis-server {v}"))
        })
        .unwrap_or_else(|| "redis-server".into())
}

/// The 1-minute load average, as the kernel prints it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
