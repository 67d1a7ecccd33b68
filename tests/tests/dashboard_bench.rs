//! A rendering benchmark of the dashboard under a heavy feed, run through the end-to-end harness: the real relay
//! (simulator, 10 Hz per symbol) serves the built dashboard to headless Chromium with a 500-symbol watchlist,
//! i.e. 5,000 ticks/s offered, and the live page is measured for a fixed window while it scrolls down the list
//! (wheel input, so rows keep coming into view):
//!
//! * **frame interval**: time between consecutive `requestAnimationFrame` callbacks (16.7 ms at 60 Hz when no
//!   frame is dropped) and **frame busy time**: from the frame's first callback until the main thread can run
//!   the next task, i.e. the dashboard's flush, Yew's render and the browser's style, layout and paint; each as
//!   p50/p95/p99/max, plus the frames over 50 ms;
//! * ticks per second delivered by the relay (`/api/clients`), applied by the page (its `updates` statistic)
//!   and rendered (changes of the rows' `data-ts` attribute, seen by a `MutationObserver`);
//! * where the main thread's time went (CDP `Performance.getMetrics`), long animation frames with their script
//!   and style/layout share, CPU time of the page's main thread and of all Chromium (from /proc: less disturbed
//!   by a busy machine than wall time), the JS heap and the wasm linear memory;
//! * the page's download: its wasm, JS glue and chart library as the relay sends them to a browser that accepts
//!   gzip (the size budget), to one that accepts brotli, and as this browser fetched them.
//!
//! The results are printed and written to `<target>/e2e/dashboard-bench.md` (and `.json`). The speed targets
//! (busy p95 ≤ 16 ms, interval p95 within one 60 Hz frame, nothing over 50 ms) are reported, never asserted:
//! the test only checks that it measured a live page, so it cannot flake on a loaded machine.
//!
//! The numbers depend on the build: `scripts/test.sh` builds a debug dashboard, which renders several times
//! slower than a release one. `HAMSTER_BENCH_DIST=<dir of a trunk build --release>` benchmarks a release build;
//! `HAMSTER_BENCH_SYMBOLS`, `HAMSTER_BENCH_HZ`, `HAMSTER_BENCH_SECS` and `HAMSTER_BENCH_SCROLL` (px/s, 0 for a
//! still page) change the load and the window, and `HAMSTER_BENCH_CSS` adds a style sheet before measuring (a
//! quick what-if when profiling).
//! Method and results: docs/dashboard-performance.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hamster_shared::api::ClientsResponse;
use hamster_tests::browser::{artifact_dir, dist_dir, Browser};
use hamster_tests::Relay;
use serde::Deserialize;
use serde_json::{json, Value};

/// Symbols in the watchlist (the relay allows 100 per subscribe command; the dashboard sends chunks).
const DEFAULT_SYMBOLS: usize = 500;
/// Simulator ticks per second per symbol.
const DEFAULT_HZ: f64 = 10.0;
/// Length of the measured window.
const DEFAULT_WINDOW_S: f64 = 10.0;
/// The page scrolls down at this speed (px/s, wheel input) while measured, the way someone looks through a long
/// list: rows come into view all the time.
const DEFAULT_SCROLL_PX_S: f64 = 600.0;
/// Time between the page ticking for every symbol and measuring: the history fetches and the first flurry settle.
const WARMUP: Duration = Duration::from_secs(2);
/// How long the page may take to subscribe every symbol and receive a first value for each.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// A frame this long is a visible stutter.
const LONG_FRAME_MS: f64 = 50.0;

/// Runs before any of the page's scripts: keeps the wasm instance trunk's loader announces, so the benchmark
/// can read the size of the wasm linear memory.
const CAPTURE_WASM_JS: &str =
    "addEventListener('TrunkApplicationStarted', e => { window.__hamsterWasm = e.detail && e.detail.wasm; });";

/// Starts the measurement: a requestAnimationFrame loop (frame intervals, and busy time up to a message posted
/// from the frame), a MutationObserver counting rendered ticks, and a long-animation-frame observer. It reads
/// no layout, so it forces none.
const START_JS: &str = r#"
const stat = k => { const el = document.querySelector(`[data-stat="${k}"]`); return el ? Number(el.textContent) : null; };
const s = { t0: performance.now(), intervals: [], busy: [], rendered: 0, symbols: new Set(), loaf: [],
            updates0: stat('updates'), stop: false, observers: [] };
window.__bench = s;
const channel = new MessageChannel();
let frameStart = 0, last = null;
channel.port1.onmessage = () => { if (!s.stop) s.busy.push(performance.now() - frameStart); };
const loop = ts => {
    if (s.stop) return;
    if (last !== null) s.intervals.push(ts - last);
    last = ts;
    frameStart = performance.now();
    channel.port2.postMessage(0);
    requestAnimationFrame(loop);
};
requestAnimationFrame(loop);
const mo = new MutationObserver(records => {
    for (const r of records) { s.rendered++; s.symbols.add(r.target); }
});
mo.observe(document.querySelector('table.quotes'), { subtree: true, attributes: true, attributeFilter: ['data-ts'] });
s.observers.push(mo);
try {
    const po = new PerformanceObserver(list => {
        for (const e of list.getEntries()) {
            const scripts = (e.scripts || []).reduce((a, x) => a + x.duration, 0);
            const styleLayout = e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0;
            s.loaf.push({ duration: e.duration, blocking: e.blockingDuration || 0, scripts, style_layout: styleLayout });
        }
    });
    po.observe({ type: 'long-animation-frame' });
    s.observers.push(po);
} catch (_) { s.loaf = null; }
return null;
"#;

/// Stops the measurement and returns everything it collected.
const STOP_JS: &str = r#"
const s = window.__bench;
s.stop = true;
for (const o of s.observers) o.disconnect();
const stat = k => { const el = document.querySelector(`[data-stat="${k}"]`); return el ? Number(el.textContent) : null; };
const mem = performance.memory;
const wasm = window.__hamsterWasm;
return {
    elapsed_ms: performance.now() - s.t0,
    intervals: s.intervals,
    busy: s.busy,
    rendered: s.rendered,
    rendered_symbols: s.symbols.size,
    updates_start: s.updates0,
    updates_end: stat('updates'),
    heap_used: mem ? mem.usedJSHeapSize : null,
    wasm_bytes: wasm && wasm.memory ? wasm.memory.buffer.byteLength : null,
    loaf: s.loaf,
    rows: document.querySelectorAll('[data-testid="quote-row"]').length,
    dom_nodes: document.getElementsByTagName('*').length,
    build: document.documentElement.dataset.build || null,
    scroll_y: window.scrollY,
};
"#;

/// Rows on the page and quote values it applied so far. (Not the priced rows: rows out of view may not render.)
const PROGRESS_JS: &str = "const u = document.querySelector('[data-stat=\"updates\"]'); \
     return [document.querySelectorAll('[data-testid=\"quote-row\"]').length, u ? Number(u.textContent) : 0];";

#[derive(Debug, Deserialize)]
struct Loaf {
    duration: f64,
    blocking: f64,
    scripts: f64,
    style_layout: f64,
}

#[derive(Debug, Deserialize)]
struct Collected {
    elapsed_ms: f64,
    intervals: Vec<f64>,
    busy: Vec<f64>,
    rendered: u64,
    rendered_symbols: usize,
    updates_start: Option<f64>,
    updates_end: Option<f64>,
    heap_used: Option<f64>,
    wasm_bytes: Option<f64>,
    loaf: Option<Vec<Loaf>>,
    rows: usize,
    dom_nodes: usize,
    build: Option<String>,
    scroll_y: f64,
}

/// p50/p95/p99/max of a sample, nearest rank.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Dist {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Dist {
    fn of(values: &[f64]) -> Dist {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Dist::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Dist { p50: rank(0.50), p95: rank(0.95), p99: rank(0.99), max: v[v.len() - 1] }
    }

    fn row(&self, name: &str) -> String {
        format!("| {name} | {:.1} | {:.1} | {:.1} | {:.1} |\n", self.p50, self.p95, self.p99, self.max)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Currencies the simulator prices (it refuses pairs of currencies it does not know).
const COINS: [&str; 12] = ["SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC", "BCH", "ATOM", "UNI"];
const FIATS: [&str; 10] = ["EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SGD", "HKD", "KRW", "INR"];

/// The 8 default symbols, then made-up equities (the simulator prices any valid ticker) with every fifth a
/// crypto cross of currencies it knows, `n` in all.
fn watchlist(n: usize) -> Vec<String> {
    let mut list: Vec<String> = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"]
        .iter()
        .map(|s| s.to_string())
        .take(n)
        .collect();
    let mut i = 0;
    while list.len() < n {
        list.push(if i % 5 == 4 {
            let k = i / 5;
            format!("{}/{}", COINS[k % COINS.len()], FIATS[(k / COINS.len()) % FIATS.len()])
        } else {
            format!("S{i:03}")
        });
        i += 1;
    }
    list
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// CDP performance counters (durations in seconds, sizes in bytes), by name.
async fn metrics(b: &Browser) -> HashMap<String, f64> {
    let reply = b.cdp("Performance.getMetrics", json!({})).await;
    let list = reply.get("metrics").and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter().filter_map(|m| Some((m.get("name")?.as_str()?.to_owned(), m.get("value")?.as_f64()?))).collect()
}

/// Quotes the relay delivered to (and conflated for) its WebSocket clients so far.
async fn relay_counts(relay: &Relay) -> (u64, u64) {
    let (_, clients): (u16, ClientsResponse) = relay.get_json("/api/clients").await;
    clients
        .clients
        .iter()
        .filter(|c| c.transport.starts_with("ws"))
        .fold((0, 0), |(d, c), client| (d + client.delivered, c + client.conflated))
}

/// CPU time so far, in ms, of Chromium's processes in process group `group`: the page renderer's main thread
/// and all of Chromium (browser, GPU/compositor, renderers). Read from /proc, so Linux only; CPU time is far
/// less disturbed by a busy machine than the wall-clock numbers.
fn chromium_cpu_ms(group: u32) -> Option<(f64, f64)> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime + stime (fields 14 and 15) and the process group (field 5) of a /proc stat line.
    let parse = |stat: &str| -> Option<(u32, f64)> {
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some((fields.get(2)?.parse().ok()?, ticks * tick_ms))
    };
    let (mut main, mut total) = (0.0f64, 0.0);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let dir = entry.path();
        let Some((pgrp, cpu)) = std::fs::read_to_string(dir.join("stat")).ok().as_deref().and_then(parse) else {
            continue;
        };
        if pgrp != group {
            continue;
        }
        total += cpu;
        let cmdline = std::fs::read_to_string(dir.join("cmdline")).unwrap_or_default();
        if !cmdline.contains("--type=renderer") {
            continue;
        }
        // The main thread's id is the process id. The busiest renderer is the dashboard's (others are spare).
        let main_thread = dir.join("task").join(entry.file_name()).join("stat");
        let stat = std::fs::read_to_string(main_thread).unwrap_or_default();
        main = main.max(parse(&stat).map_or(0.0, |(_, cpu)| cpu));
    }
    (total > 0.0).then_some((main, total))
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1_048_576.0)
}

/// The page's code as loaded: its wasm, the wasm-bindgen glue and the chart library (resource URLs with what the
/// browser received and decoded), the three files the size budget counts.
const CODE_RESOURCES_JS: &str = "return performance.getEntriesByType('resource')\
    .filter(e => /\\/(hamster-web-[0-9a-f]+(_bg\\.wasm|\\.js)|lightweight-charts\\.js)$/.test(e.name))\
    .map(e => [e.name, e.encodedBodySize, e.decodedBodySize]);";

/// Bytes on the wire for each of `urls` when the client accepts only `encoding` (reqwest here decodes nothing, so
/// the body is what was sent).
async fn sent_bytes(urls: &[String], encoding: &str) -> Option<u64> {
    let http = reqwest::Client::new();
    let mut total = 0;
    for url in urls {
        let response = http.get(url).header("accept-encoding", encoding).send().await.ok()?;
        let encoded = response.headers().get("content-encoding").is_some_and(|v| v.as_bytes() == encoding.as_bytes());
        let body = response.bytes().await.ok()?;
        if !encoded {
            return None;
        }
        total += body.len() as u64;
    }
    Some(total)
}

/// The page download row: gzip (the budget), brotli, and what this browser received.
async fn download_row(b: &Browser) -> (String, Value) {
    let loaded: Vec<(String, f64, f64)> = b.eval(CODE_RESOURCES_JS, vec![]).await;
    let urls: Vec<String> = loaded.iter().map(|(url, _, _)| url.clone()).collect();
    let (gzip, br) = (sent_bytes(&urls, "gzip").await, sent_bytes(&urls, "br").await);
    let received: f64 = loaded.iter().map(|(_, encoded, _)| encoded).sum();
    let decoded: f64 = loaded.iter().map(|(_, _, decoded)| decoded).sum();
    let kb =
        |n: Option<u64>| n.map_or_else(|| "not sent compressed".to_owned(), |n| format!("{:.1} KB", n as f64 / 1000.0));
    let text = format!(
        "{} files: gzip {}, brotli {}; this browser received {:.1} KB for {:.1} KB",
        loaded.len(),
        kb(gzip),
        kb(br),
        received / 1000.0,
        decoded / 1000.0
    );
    let json = json!({ "files": loaded.len(), "gzip_bytes": gzip, "brotli_bytes": br, "received_bytes": received,
        "decoded_bytes": decoded });
    (text, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_keeps_up_with_5000_ticks_per_second() {
    let symbols: usize = env_or("HAMSTER_BENCH_SYMBOLS", DEFAULT_SYMBOLS);
    let hz: f64 = env_or("HAMSTER_BENCH_HZ", DEFAULT_HZ);
    let window = Duration::from_secs_f64(env_or("HAMSTER_BENCH_SECS", DEFAULT_WINDOW_S));
    let scroll: f64 = env_or("HAMSTER_BENCH_SCROLL", DEFAULT_SCROLL_PX_S);
    let dist = std::env::var_os("HAMSTER_BENCH_DIST").map(PathBuf::from).unwrap_or_else(dist_dir);
    assert!(dist.join("index.html").is_file(), "no dashboard build in {}", dist.display());
    let dist = dist.to_string_lossy().into_owned();
    let (hz_arg, max_arg) = (hz.to_string(), (symbols + 100).to_string());
    let relay = Relay::start(&[
        "--static-dir",
        &dist,
        "--sim-tick-hz",
        &hz_arg,
        "--sim-seed",
        "7",
        "--max-symbols-per-connection",
        &max_arg,
    ]);
    let b = Browser::launch(1360, 900).await;
    let load_before = load_average();

    // Seed the watchlist on the relay's origin before the dashboard first loads, the way a returning user has it.
    b.goto(&format!("{}/healthz", relay.http_url())).await;
    let list = watchlist(symbols);
    let _: Option<bool> = b
        .eval(
            "localStorage.clear(); localStorage.setItem(arguments[0], arguments[1]); return null;",
            vec![json!("hamster.watchlist.v1"), json!(serde_json::to_string(&list).expect("json"))],
        )
        .await;
    b.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": CAPTURE_WASM_JS })).await;
    let opened = Instant::now();
    b.goto(&relay.http_url()).await;
    b.wait_for(&format!("{symbols} rows, subscribed and ticking"), READY_LIMIT, || async {
        let (rows, updates): (usize, u64) = b.eval(PROGRESS_JS, vec![]).await;
        let (_, clients): (u16, ClientsResponse) = relay.get_json("/api/clients").await;
        let subscribed = clients.clients.iter().any(|c| c.symbols >= symbols);
        (rows >= symbols && subscribed && updates >= symbols as u64).then_some(())
    })
    .await;
    let ready = opened.elapsed();
    let (download, download_json) = download_row(&b).await;
    tokio::time::sleep(WARMUP).await;

    if let Ok(css) = std::env::var("HAMSTER_BENCH_CSS") {
        // A what-if for profiling: how much faster would the page be without (or with) this style?
        let _: Option<bool> = b
            .eval(
                "const s = document.createElement('style'); s.textContent = arguments[0]; \
                 document.head.appendChild(s); return null;",
                vec![json!(css)],
            )
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.cdp("Performance.enable", json!({})).await;
    let m0 = metrics(&b).await;
    let cpu0 = chromium_cpu_ms(b.process_group());
    let (delivered0, conflated0) = relay_counts(&relay).await;
    let _: Option<bool> = b.eval(START_JS, vec![]).await;
    // Real wheel input, scrolled by the compositor as a user's would be (setting scrollTop from script would
    // force a layout in every frame). The command returns when the gesture is over, at the window's end.
    let scrolling = async {
        if scroll > 0.0 {
            let distance = scroll * window.as_secs_f64();
            let gesture = json!({ "x": 300, "y": 500, "yDistance": -distance, "speed": scroll });
            b.cdp("Input.synthesizeScrollGesture", gesture).await;
        }
    };
    tokio::join!(scrolling, tokio::time::sleep(window));
    let c: Collected = b.eval(STOP_JS, vec![]).await;
    let (delivered1, conflated1) = relay_counts(&relay).await;
    let m1 = metrics(&b).await;
    let cpu1 = chromium_cpu_ms(b.process_group());
    let load_after = load_average();

    let secs = c.elapsed_ms / 1000.0;
    let per_s = |n: f64| n / secs;
    let delta = |k: &str| m1.get(k).copied().unwrap_or(0.0) - m0.get(k).copied().unwrap_or(0.0);
    // CDP's own clock spans exactly the interval its counters cover.
    let cdp_secs = Some(delta("Timestamp")).filter(|t| *t > 0.0).unwrap_or(secs);
    let share = |k: &str| 100.0 * delta(k) / cdp_secs;
    let interval = Dist::of(&c.intervals);
    let busy = Dist::of(&c.busy);
    let long_frames = c.intervals.iter().filter(|&&v| v > LONG_FRAME_MS).count();
    let applied = match (c.updates_start, c.updates_end) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let loaf = c.loaf.as_deref().unwrap_or_default();
    // CPU ms per second of wall time: (page main thread, all of Chromium).
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(((b.0 - a.0) / cdp_secs, (b.1 - a.1) / cdp_secs)),
        _ => None,
    };
    let loaf_max = loaf.iter().max_by(|a, b| a.duration.total_cmp(&b.duration));
    let build = c.build.clone().unwrap_or_else(|| "unknown".into());

    let mut md = String::new();
    let _ = writeln!(
        md,
        "Dashboard benchmark: {symbols} symbols × {hz} Hz = {:.0} ticks/s offered, {build} build, {secs:.1} s window, \
         scrolling {scroll} px/s ({:.0} px scrolled)",
        symbols as f64 * hz,
        c.scroll_y
    );
    let _ = writeln!(
        md,
        "(load average {load_before} → {load_after}; {symbols} rows subscribed and ticking {:.1} s after navigation)\n",
        ready.as_secs_f64()
    );
    if let Ok(css) = std::env::var("HAMSTER_BENCH_CSS") {
        let _ = writeln!(md, "with extra CSS: `{css}`\n");
    }
    md.push_str("| ms | p50 | p95 | p99 | max |\n|---|---|---|---|---|\n");
    md.push_str(&interval.row("frame interval"));
    md.push_str(&busy.row("frame busy"));
    md.push_str("\n| metric | value |\n|---|---|\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(md, "| {k} | {v} |");
    };
    row(
        "frames",
        format!(
            "{} ({:.1} fps), {long_frames} over {LONG_FRAME_MS:.0} ms",
            c.intervals.len(),
            per_s(c.intervals.len() as f64)
        ),
    );
    row(
        "ticks delivered by relay",
        format!(
            "{:.0}/s (conflated {:.0}/s)",
            per_s((delivered1 - delivered0) as f64),
            per_s((conflated1 - conflated0) as f64)
        ),
    );
    row("ticks applied by page", format!("{:.0}/s", per_s(applied)));
    row("ticks rendered", format!("{:.0}/s, {} of {} rows", per_s(c.rendered as f64), c.rendered_symbols, c.rows));
    row(
        "main thread busy",
        format!(
            "{:.0}% (script {:.0}%, style {:.0}%, layout {:.0}%)",
            share("TaskDuration"),
            share("ScriptDuration"),
            share("RecalcStyleDuration"),
            share("LayoutDuration")
        ),
    );
    row(
        "CPU (ms per s)",
        cpu.map_or("n/a".into(), |(main, all)| format!("page main thread {main:.0}, all of Chromium {all:.0}")),
    );
    row(
        "long animation frames",
        match (c.loaf.is_some(), loaf_max) {
            (false, _) => "not supported".into(),
            (true, None) => "0".into(),
            (true, Some(max)) => format!(
                "{} (max {:.0} ms: scripts {:.0} ms, style+layout {:.0} ms, blocking {:.0} ms)",
                loaf.len(),
                max.duration,
                max.scripts,
                max.style_layout,
                max.blocking
            ),
        },
    );
    row(
        "JS heap used",
        match (m0.get("JSHeapUsedSize"), m1.get("JSHeapUsedSize")) {
            (Some(a), Some(b)) => format!("{} → {}", mb(*a), mb(*b)),
            _ => c.heap_used.map(mb).unwrap_or_else(|| "n/a".into()),
        },
    );
    row("wasm memory", c.wasm_bytes.map(mb).unwrap_or_else(|| "n/a".into()));
    row("DOM nodes", c.dom_nodes.to_string());
    row("page download (wasm, JS glue, chart library)", download);
    println!("\n{md}");

    let dir = artifact_dir();
    let json = json!({
        "symbols": symbols, "hz": hz, "build": build, "scroll_px_s": scroll, "window_s": secs, "ready_s": ready.as_secs_f64(),
        "load_before": load_before, "load_after": load_after,
        "frame_interval_ms": interval, "frame_busy_ms": busy, "frames": c.intervals.len(), "long_frames": long_frames,
        "delivered_per_s": per_s((delivered1 - delivered0) as f64),
        "conflated_per_s": per_s((conflated1 - conflated0) as f64),
        "applied_per_s": per_s(applied), "rendered_per_s": per_s(c.rendered as f64),
        "rendered_rows": c.rendered_symbols, "rows": c.rows,
        "task_pct": share("TaskDuration"), "script_pct": share("ScriptDuration"),
        "style_pct": share("RecalcStyleDuration"), "layout_pct": share("LayoutDuration"),
        "long_animation_frames": loaf.len(),
        "cpu_main_ms_per_s": cpu.map(|c| c.0), "cpu_chromium_ms_per_s": cpu.map(|c| c.1),
        "js_heap_used_bytes": m1.get("JSHeapUsedSize"), "wasm_memory_bytes": c.wasm_bytes, "dom_nodes": c.dom_nodes,
        "download": download_json,
    });
    let _ = std::fs::write(dir.join("dashboard-bench.md"), &md);
    let _ = std::fs::write(dir.join("dashboard-bench.json"), format!("{json:#}\n"));
    println!("results: {}", dir.join("dashboard-bench.md").display());

    // Only that something real was measured: the speed targets are for the report, not for CI to flake on.
    assert_eq!(c.rows, symbols, "every watched symbol has a row");
    assert_eq!(download_json["files"], 3, "the wasm, its glue and the chart library were loaded: {download_json}");
    assert!(c.intervals.len() >= 10, "frames were measured: {}", c.intervals.len());
    assert!(c.rendered > 0, "ticks were rendered during the window");
    // Scrolling brings well over 100 rows into view; a still page shows about 20.
    let expected = if scroll > 0.0 { 100.min(symbols) } else { 10.min(symbols) };
    assert!(c.rendered_symbols >= expected, "many rows ticked during the window: {} of {symbols}", c.rendered_symbols);
    b.close().await;
}
