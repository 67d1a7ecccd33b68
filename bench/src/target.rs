//! The server under test: the real relay binary, the Node peer, or one already running.
//!
//! A spawned target is pointed at the bench's generator and started on port 0; the port is read from the
//! `listening on http://127.0.0.1:PORT` line both print on stdout. The relay gets `--providers twelvedata`, the
//! generator's URL, a dummy key and no REST fallback (it would try the real Twelve Data); the per-IP connection
//! limit is switched off (`MAX_CONNECTIONS_PER_IP=0`), since every bench client comes from 127.0.0.1. A target
//! is stopped with SIGTERM (SIGKILL after 5 s) and is killed if the bench itself goes away.
//!
//! A relay started as a cluster node (`--cluster`, see [`crate::cluster`]) also gets `REDIS_URL`, its node id
//! and a scratch directory of its own.
//!
//! An attached target (`--attach`) is used as it is; its pid, if given, lets the bench read its memory and CPU.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use hamster_shared::api::StatusResponse;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a spawned target may take to print its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// The Rust relay (`hamster-relay`).
    Relay,
    /// The Node peer (`bench/node-peer/peer.js`), a plain broadcast relay to compare with.
    Node,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Relay => "relay",
            Kind::Node => "node",
        }
    }
}

/// How to start each kind of target.
#[derive(Debug, Clone)]
pub struct Launch {
    pub relay_bin: PathBuf,
    /// Extra arguments for the relay (e.g. `--client-queue-frames=128`).
    pub relay_args: Vec<String>,
    /// `RUST_LOG` for the relay.
    pub relay_log: String,
    pub node_bin: String,
    pub node_peer: PathBuf,
    /// An already running server (`http://host:port`) instead of spawning one, and its pid if known.
    pub attach: Option<(String, Option<u32>)>,
    /// Start the relay as a cluster node: the Redis URL all nodes share, and this node's id.
    pub cluster_node: Option<(String, String)>,
    /// Pin every spawned server to its own core (`--pin`).
    pub pin: bool,
}

/// A running server under test.
#[derive(Debug)]
pub struct Target {
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`
    base: String,
    pid: Option<u32>,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Target {
    /// Starts (or attaches to) a `kind` target whose upstream is `upstream_url`.
    pub async fn start(kind: Kind, launch: &Launch, upstream_url: &str) -> anyhow::Result<Target> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        if let Some((base, pid)) = &launch.attach {
            let base = base.trim_end_matches('/').to_owned();
            return Ok(Target { kind, base, pid: *pid, child: None, http });
        }
        let mut command = match kind {
            Kind::Relay => {
                let mut c = Command::new(&launch.relay_bin);
                c.args(["--providers", "twelvedata", "--host", "127.0.0.1", "--port", "0"])
                    .args(["--twelvedata-ws-url", upstream_url, "--twelvedata-rest-credits-per-min", "0"])
                    // A closed loopback port: the relay's reference lists are never fetched from the internet.
                    .args(["--twelvedata-rest-url", "http://127.0.0.1:9"])
                    .args(&launch.relay_args);
                // The relay records by default: into a scratch directory, never the caller's ./data.
                if !launch.relay_args.iter().any(|a| a.starts_with("--data-dir")) {
                    let mut dir = format!("hamster-bench-{}", std::process::id());
                    if let Some((_, node)) = &launch.cluster_node {
                        dir = format!("{dir}-{node}");
                    }
                    c.arg("--data-dir").arg(std::env::temp_dir().join(dir));
                }
                if let Some((redis_url, node)) = &launch.cluster_node {
                    c.args(["--node-id", node]).env("REDIS_URL", redis_url);
                }
                c
                    // The relay reads TWELVE_DATA_API_KEY; the other spelling is set too for older notes.
                    .env("TWELVE_DATA_API_KEY", "bench")
                    .env("TWELVEDATA_API_KEY", "bench")
                    .env("MAX_CONNECTIONS_PER_IP", "0")
                    .env("RUST_LOG", &launch.relay_log);
                c
            }
            Kind::Node => {
                let mut c = Command::new(&launch.node_bin);
                c.arg(&launch.node_peer).args(["--port", "0", "--upstream", &format!("{upstream_url}?apikey=bench")]);
                c
            }
        };
        let program = match kind {
            Kind::Relay => launch.relay_bin.display().to_string(),
            Kind::Node => format!("{} {}", launch.node_bin, launch.node_peer.display()),
        };
        crate::pin::server(&mut command, launch.pin);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = line.strip_prefix("listening on http://127.0.0.1:") {
                    return Ok::<_, anyhow::Error>(Some(port.trim().parse::<u16>()?));
                }
            }
            Ok(None)
        })
        .await
        .with_context(|| format!("{program} printed no port within {START_TIMEOUT:?}"))??;
        let Some(port) = port else { bail!("{program} exited before listening") };
        // Keep draining stdout so the target never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id();
        Ok(Target { kind, base: format!("http://127.0.0.1:{port}"), pid, child: Some(child), http })
    }

    /// The client WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Places `n` working paper orders round-robin over `symbols`: alternately a stop buy and a trailing-stop buy
    /// so far from any price the generator makes that neither ever triggers, while both are evaluated (and the
    /// trailing stop's low-water mark followed) on every tick.
    pub async fn place_orders(&self, symbols: &[String], n: usize) -> anyhow::Result<()> {
        let url = format!("{}/api/orders", self.base);
        let bodies = (0..n).map(|i| {
            let symbol = &symbols[i % symbols.len()];
            if i % 2 == 0 {
                serde_json::json!({"symbol": symbol, "qty": 1, "side": "buy", "type": "stop",
                    "time_in_force": "gtc", "stop_price": 1e9})
            } else {
                serde_json::json!({"symbol": symbol, "qty": 1, "side": "buy", "type": "trailing_stop",
                    "time_in_force": "gtc", "trail_price": 1e9})
            }
        });
        let mut placing = futures::stream::iter(bodies.map(|body| {
            let request = self.http.post(&url).json(&body);
            async move {
                let response = request.send().await?;
                let status = response.status();
                if !status.is_success() {
                    let text = response.text().await.unwrap_or_default();
                    bail!("POST /api/orders answered {status}: {text}");
                }
                Ok(())
            }
        }))
        .buffer_unordered(16);
        while let Some(placed) = placing.next().await {
            placed?;
        }
        Ok(())
    }

    /// `GET /api/status` (the relay only; the Node peer has none).
    pub async fn status(&self) -> Option<StatusResponse> {
        if self.kind != Kind::Relay {
            return None;
        }
        // A relay under full load can be slow to answer; try a few times before leaving the column empty.
        for _ in 0..3 {
            if let Ok(response) = self.http.get(format!("{}/api/status", self.base)).send().await {
                if let Ok(status) = response.json().await {
                    return Some(status);
                }
            }
        }
        None
    }

    /// Stops a spawned target (SIGTERM, then SIGKILL after 5 s); leaves an attached one running.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: signals our own child, which we have not reaped yet, so the pid is still ours.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}
