//! Test harness: runs the real `hamster-relay` binary as a child process and talks to it over real sockets.
//!
//! The binary is taken from `HAMSTER_RELAY_BIN`, or else from the target directory next to the running test
//! (`target/<profile>/hamster-relay`), which `cargo build` (and so `scripts/test.sh`) puts there. Every wait is
//! bounded: a relay that does not answer fails the test instead of hanging it.

pub mod deflate;
pub mod mock;
pub mod mocks;
pub mod proxy;
pub mod redis;
pub mod ws;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use ws::WsClient;

/// How long any single expectation may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running relay process. Killed on drop.
pub struct Relay {
    child: Child,
    port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The relay's own data directory when the test did not choose one, removed with the relay.
    _own_data_dir: Option<TempDir>,
}

/// A directory under the system temp dir, unique to this process and call, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("hamster-test-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Environment variables that carry provider keys; never inherited by a relay under test.
pub const PROVIDER_KEY_VARS: &[&str] =
    &["TWELVE_DATA_API_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY", "UW_API_TOKEN"];

/// Path of the relay binary under test.
pub fn relay_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HAMSTER_RELAY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/hamster-relay
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let bin = dir.join(format!("hamster-relay{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} not found: build it first with `cargo build -p hamster-relay` (scripts/test.sh does), \
         or point HAMSTER_RELAY_BIN at it",
        bin.display()
    );
    bin
}

impl Relay {
    /// Starts the relay on a free loopback port with `args` added (the simulator is the default provider).
    pub fn start(args: &[&str]) -> Relay {
        Relay::start_on_port(0, args)
    }

    /// Starts the relay on `port` (0 = any free port), e.g. to restart it where clients expect it.
    pub fn start_on_port(port: u16, args: &[&str]) -> Relay {
        Relay::start_with_env(port, args, &[])
    }

    /// Starts the relay with exactly the provider keys in `env` (none are inherited from the test process).
    /// `env` is applied last, so it may also set `RUST_LOG`.
    pub fn start_with_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> Relay {
        let mut cmd = Command::new(relay_binary());
        // Every relay records into a directory of its own unless the test names one (tests run in parallel).
        let own_data_dir = (!args.contains(&"--data-dir")).then(|| TempDir::new("data"));
        if let Some(dir) = &own_data_dir {
            cmd.args(["--data-dir", &dir.arg()]);
        }
        for var in PROVIDER_KEY_VARS {
            cmd.env_remove(var);
        }
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--static-dir", "/nonexistent-hamster-static"])
            .args(args)
            .env("RUST_LOG", std::env::var("HAMSTER_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hamster-relay");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let echo = std::env::var_os("HAMSTER_TEST_ECHO").is_some();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[relay] {line}");
                }
                sink.lock().map(|mut l| l.push(line)).ok();
            }
        });
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let out_sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out_sink.lock().map(|mut l| l.push(line.clone())).ok();
                if let Some(port) = line.strip_prefix("listening on http://127.0.0.1:") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let port = match rx.recv_timeout(WAIT) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                let logs = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!("relay did not report its port within {WAIT:?}; stderr:\n{logs}");
            }
        };
        Relay { child, port, logs, stdout: out, _own_data_dir: own_data_dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// Log lines the relay wrote to stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (up to `limit`) until every one of `needles` appears in the relay's stderr log, and returns the log.
    /// stderr is read by its own thread, so a line the relay wrote before `listening on …` may not have been read
    /// yet when the test goes on: checking `logs()` at once can race with that thread.
    pub fn wait_for_logs(&self, needles: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let logs = self.logs().join("\n");
            if needles.iter().all(|n| logs.contains(n)) || Instant::now() >= deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines the relay wrote to stdout so far (the `listening on …` line among them).
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the relay.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(WAIT)
    }

    /// SIGKILL: the relay vanishes without closing anything, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory of the relay process in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// GETs `path` and parses the JSON body (any status).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> (u16, T) {
        let response = tokio::time::timeout(WAIT, reqwest::get(format!("{}{}", self.http_url(), path)))
            .await
            .unwrap_or_else(|_| panic!("GET {path} timed out"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_else(|e| panic!("GET {path} body: {e}"));
        let parsed = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        (status, parsed)
    }

    /// Polls `GET /api/status` until `pred` holds, failing the test after [`WAIT`].
    pub async fn wait_status(
        &self,
        what: &str,
        pred: impl Fn(&hamster_shared::api::StatusResponse) -> bool,
    ) -> hamster_shared::api::StatusResponse {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, status) = self.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
            if pred(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last status: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `pred` every 20 ms until it holds, failing the test after [`WAIT`].
pub async fn eventually(what: &str, pred: impl Fn() -> bool) {
    eventually_within(what, WAIT, pred).await;
}

/// Polls `pred` every 20 ms until it holds, failing the test after `limit`.
pub async fn eventually_within(what: &str, limit: Duration, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod browser;

/// One HTTP call; returns the status and the parsed body.
pub async fn call<T: serde::de::DeserializeOwned>(
    relay: &Relay,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, T) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.clone(), format!("{}{}", relay.http_url(), path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = tokio::time::timeout(WAIT, request.send())
        .await
        .unwrap_or_else(|_| panic!("{method} {path} timed out"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let parsed = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path} -> {status}: {e}: {text}"));
    (status, parsed)
}
