//! A real headless Chromium driven over WebDriver, for the dashboard's end-to-end tests.
//!
//! [`Browser::launch`] starts `chromedriver` (its own process group, on a free loopback port) and opens a
//! session with a fresh profile directory; dropping the [`Browser`] kills that process group (chromedriver and
//! the Chromium it started) and deletes the profile. Every wait is bounded by a deadline and fails the test
//! with what it was waiting for. Paths come from `CHROMEDRIVER` (default `/usr/bin/chromedriver`) and
//! `CHROME_BIN` (default: Debian's real binary `/usr/lib/chromium/chromium`, else `/usr/bin/chromium`).
//!
//! WebDriver is spoken over plain HTTP to loopback, so no TLS stack is linked.

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// How long chromedriver and the browser may take to come up.
const STARTUP: Duration = Duration::from_secs(30);

/// Where the dashboard build is: `HAMSTER_DIST`, else `<workspace>/dist`. Panics with the build command when
/// it is missing, because every browser test needs it.
pub fn dist_dir() -> PathBuf {
    let dir = std::env::var_os("HAMSTER_DIST").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("dist"));
    assert!(
        dir.join("index.html").is_file(),
        "{} has no index.html: build the dashboard first with \
         `TRUNK_SKIP_VERSION_CHECK=true trunk build --offline` in the workspace root (scripts/test.sh does), \
         or point HAMSTER_DIST at a build",
        dir.display()
    );
    dir
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Where tests write artifacts (screenshots): `<target>/e2e`.
pub fn artifact_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("e2e");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn chrome_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHROME_BIN") {
        return PathBuf::from(bin);
    }
    // Debian's /usr/bin/chromium is a shell wrapper that adds flags of its own; drive the real binary.
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

/// A Chromium session. Killed (with its chromedriver) on drop.
pub struct Browser {
    client: Client,
    driver: Child,
    /// chromedriver's loopback port, for its Chrome-specific endpoints (see [`Browser::cdp`]).
    port: u16,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and a `width`×`height` window.
    pub async fn launch(width: u32, height: u32) -> Browser {
        Browser::launch_with(width, height, false).await
    }

    /// As [`Browser::launch`], with Chrome's performance log recording the DevTools `Network.*` events (read
    /// them with [`Browser::network_events`]): what the browser itself saw on the wire, such as a WebSocket
    /// handshake's response headers. Only tests that read it pay for the recording.
    pub async fn launch_logging_network(width: u32, height: u32) -> Browser {
        Browser::launch_with(width, height, true).await
    }

    async fn launch_with(width: u32, height: u32, network_log: bool) -> Browser {
        let driver_bin = std::env::var_os("CHROMEDRIVER").unwrap_or_else(|| "/usr/bin/chromedriver".into());
        let port = free_port();
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group, so Drop can end chromedriver and every browser process it started at once.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (install chromium-driver or set CHROMEDRIVER)",
                    Path::new(&driver_bin).display()
                )
            });

        let deadline = Instant::now() + STARTUP;
        let status_url = format!("http://127.0.0.1:{port}/status");
        loop {
            let ready = reqwest::get(&status_url).await.ok().map(|r| r.status().is_success()).unwrap_or(false);
            if ready {
                break;
            }
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited early: {status}");
            }
            if Instant::now() > deadline {
                kill_group(&mut driver);
                panic!("chromedriver did not answer on port {port} within {STARTUP:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let profile = std::env::temp_dir().join(format!(
            "hamster-e2e-profile-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        let _ = std::fs::create_dir_all(&profile);
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-extensions".into(),
            // Background tabs must not be throttled: the tests watch a page tick.
            "--disable-background-timer-throttling".into(),
            "--disable-renderer-backgrounding".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chrome_binary(), "args": args },
        });
        if network_log {
            caps["goog:loggingPrefs"] = json!({ "performance": "ALL" });
            caps["goog:chromeOptions"]["perfLoggingPrefs"] = json!({ "enableNetwork": true, "enablePage": false });
        }
        let serde_json::Value::Object(caps) = caps else { unreachable!("json! object literal") };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = match tokio::time::timeout(STARTUP, builder.connect(&format!("http://127.0.0.1:{port}"))).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                kill_group(&mut driver);
                panic!("cannot open a Chromium session ({}): {e}", chrome_binary().display());
            }
            Err(_) => {
                kill_group(&mut driver);
                panic!("Chromium session did not start within {STARTUP:?}");
            }
        };
        Browser { client, driver, port, profile }
    }

    /// The process group of chromedriver and every browser process it started (for reading their CPU time).
    pub fn process_group(&self) -> u32 {
        self.driver.id()
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub async fn reload(&self) {
        self.client.refresh().await.unwrap_or_else(|e| panic!("reload: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and decodes what it returns.
    pub async fn eval<T: DeserializeOwned>(&self, script: &str, args: Vec<Value>) -> T {
        let value = self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"));
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("script returned {value}: {e}"))
    }

    /// Polls `probe` every 50 ms until it yields `Some`, failing the test after `limit` with `what`.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, limit: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Sends keys (WebDriver key codes such as `\u{E015}` for arrow down) to the element matching `css`, without
    /// clearing it first.
    pub async fn type_into_keys(&self, css: &str, keys: &str) {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.send_keys(keys).await.unwrap_or_else(|e| panic!("keys into {css}: {e}"));
    }

    /// Clicks the element matching `css`, waiting up to 10 s for it to appear first: a click that opens a view
    /// and a click inside it follow each other faster than a render can land on a busy machine.
    pub async fn click(&self, css: &str) {
        let el = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Sends a Chrome DevTools Protocol command to the current page through chromedriver's
    /// `goog/cdp/execute` endpoint (e.g. `Performance.getMetrics`) and returns its result. Commands only:
    /// CDP events are not delivered this way.
    pub async fn cdp(&self, method: &str, params: Value) -> Value {
        let session =
            self.client.session_id().await.ok().flatten().unwrap_or_else(|| panic!("CDP {method}: no session"));
        let url = format!("http://127.0.0.1:{}/session/{session}/goog/cdp/execute", self.port);
        let body = json!({ "cmd": method, "params": params });
        let response = reqwest::Client::new().post(&url).json(&body).send();
        let response = tokio::time::timeout(STARTUP, response)
            .await
            .unwrap_or_else(|_| panic!("CDP {method} timed out"))
            .unwrap_or_else(|e| panic!("CDP {method}: {e}"));
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or_else(|e| panic!("CDP {method} reply: {e}"));
        assert!(status.is_success(), "CDP {method} failed ({status}): {reply}");
        reply.get("value").cloned().unwrap_or(Value::Null)
    }

    /// The DevTools `Network.*` events recorded since the last call, oldest first, as `{"method", "params"}`
    /// (needs [`Browser::launch_logging_network`]). Read through chromedriver's log endpoint, which drains it.
    pub async fn network_events(&self) -> Vec<Value> {
        let session =
            self.client.session_id().await.ok().flatten().unwrap_or_else(|| panic!("performance log: no session"));
        let url = format!("http://127.0.0.1:{}/session/{session}/se/log", self.port);
        let response = reqwest::Client::new().post(&url).json(&json!({ "type": "performance" })).send();
        let response = tokio::time::timeout(STARTUP, response)
            .await
            .unwrap_or_else(|_| panic!("performance log timed out"))
            .unwrap_or_else(|e| panic!("performance log: {e}"));
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or_else(|e| panic!("performance log reply: {e}"));
        assert!(status.is_success(), "performance log failed ({status}): {reply}");
        let entries = reply.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
        entries
            .iter()
            .filter_map(|entry| {
                let text = entry.get("message")?.as_str()?;
                let message: Value = serde_json::from_str(text).ok()?;
                message.get("message").cloned()
            })
            .filter(|event| event["method"].as_str().is_some_and(|m| m.starts_with("Network.")))
            .collect()
    }

    /// Resizes the window (e.g. to phone width).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap_or_else(|e| panic!("resize: {e}"));
    }

    /// Saves a PNG screenshot of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Ends the session politely; Drop cleans up regardless.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the process group we created for our own child; no memory preconditions.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
