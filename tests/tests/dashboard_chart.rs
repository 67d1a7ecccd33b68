//! The detail view end to end: the real relay serves the built dashboard to headless Chromium. Clicking a
//! watchlist row opens the chart (a canvas from Lightweight Charts) under a deep link, its last candle moves with
//! live ticks, the crosshair shows OHLC, a timeframe switch re-aggregates, line mode redraws, Esc closes it, Enter
//! on a focused row opens it, and the deep link opens it directly, with a price scale of the asset's decimals.
//! First, the header's latency figure shows both hops (provider→relay, relay→browser) within plausible bounds. A
//! screenshot goes to `target/e2e/detail.png`.
//!
//! The chart container exposes its last candle as `data-last-time` / `data-last-close` / `data-candles`, which
//! is what the tests read (the canvas itself has no readable content).

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::Locator;
use hamster_tests::browser::{artifact_dir, dist_dir, Browser};
use hamster_tests::Relay;
use serde::Deserialize;

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ChartState {
    open: bool,
    symbol: Option<String>,
    hash: String,
    canvases: u32,
    tf: Option<String>,
    candles: Option<u32>,
    last_time: Option<i64>,
    last_close: Option<f64>,
    decimals: Option<u32>,
    readout: Option<String>,
    error: Option<String>,
}

const STATE_JS: &str = r#"
const view = document.querySelector('[data-testid="detail-view"]');
const chart = document.querySelector('[data-testid="detail-chart"]');
const num = (v) => (v == null ? null : Number(v));
const err = document.querySelector('.detail .chart-status.error');
return {
    open: !!view,
    symbol: view ? view.dataset.symbol : null,
    hash: location.hash,
    canvases: chart ? chart.querySelectorAll('canvas').length : 0,
    tf: chart ? chart.dataset.tf : null,
    candles: chart && chart.dataset.candles != null ? num(chart.dataset.candles) : null,
    last_time: chart && chart.dataset.lastTime != null ? num(chart.dataset.lastTime) : null,
    last_close: chart && chart.dataset.lastClose != null ? num(chart.dataset.lastClose) : null,
    decimals: chart && chart.dataset.decimals != null ? num(chart.dataset.decimals) : null,
    readout: (document.querySelector('[data-testid="readout"]') || {}).textContent || null,
    error: err ? err.textContent : null,
};
"#;

async fn state(b: &Browser) -> ChartState {
    b.eval(STATE_JS, vec![]).await
}

async fn wait_state(b: &Browser, what: &str, pred: impl Fn(&ChartState) -> bool) -> ChartState {
    b.wait_for(what, LIMIT, || async {
        let s = state(b).await;
        assert_eq!(s.error, None, "the chart reported an error");
        pred(&s).then_some(s)
    })
    .await
}

/// A drawn chart: canvases and at least one candle.
fn drawn(s: &ChartState) -> bool {
    s.open && s.canvases > 0 && s.candles.unwrap_or(0) > 0 && s.last_close.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_click_opens_a_live_chart_that_esc_closes() {
    let dist = dist_dir().to_string_lossy().into_owned();
    // A 1 s heartbeat makes the page ping (and so learn its clock offset) every half second.
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "20", "--heartbeat-ms", "1000"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&relay.http_url()).await;
    b.wait_for("BTC/USD priced", LIMIT, || async {
        let p: Option<String> = b
            .eval(
                "const e = document.querySelector('tr[data-symbol=\"BTC/USD\"] [data-testid=\"price\"]'); \
                 return e ? e.dataset.value || null : null;",
                vec![],
            )
            .await;
        p
    })
    .await;

    // Latency by hop in the header: both figures present and plausible on one machine.
    let hops: Vec<(String, f64, f64)> = b
        .wait_for("both latency figures", LIMIT, || async {
            let hops: Vec<(String, Option<f64>, Option<f64>)> = b
                .eval(
                    "return [...document.querySelectorAll('[data-testid=\"latency\"] [data-hop]')].map(h => \
                     [h.dataset.hop, h.dataset.p50 == null ? null : Number(h.dataset.p50), \
                      h.dataset.p99 == null ? null : Number(h.dataset.p99)]);",
                    vec![],
                )
                .await;
            let done: Vec<(String, f64, f64)> =
                hops.into_iter().filter_map(|(k, p50, p99)| Some((k, p50?, p99?))).collect();
            (done.len() == 2).then_some(done)
        })
        .await;
    for (hop, p50, p99) in &hops {
        assert!((0.0..=1_000.0).contains(p50) && p99 >= p50 && *p99 <= 5_000.0, "{hop}: p50 {p50} p99 {p99}");
    }
    println!("latency: {hops:?}");
    // The warning threshold is the user's: at 1 ms the relay→browser hop (a frame's trip through the socket and
    // the page) reads slow (amber, and says so); the simulator's provider hop is 0 ms, so it never does. On an idle
    // machine a frame can take under a millisecond, so the page's main thread is kept busy 20 ms out of every 25
    // meanwhile: frames wait for it, as they would behind a heavy page, and the median passes 1 ms for sure.
    let _: Option<bool> = b
        .eval(
            "const i = document.querySelector('[data-testid=\"latency-threshold\"]'); i.value = '1'; \
             i.dispatchEvent(new Event('change', { bubbles: true })); \
             window.__busy = setInterval(() => { const t = performance.now(); while (performance.now() - t < 20) {} }, 25); \
             return null;",
            vec![],
        )
        .await;
    b.wait_for("relay→you flagged slow under a 1 ms threshold", LIMIT, || async {
        let js = "return document.querySelectorAll('[data-testid=\"latency\"] .hop.slow[data-hop=\"relay-browser\"]').length;";
        let slow: usize = b.eval(js, vec![]).await;
        (slow == 1).then_some(())
    })
    .await;
    let _: Option<bool> = b.eval("clearInterval(window.__busy); return null;", vec![]).await;
    let provider_slow: usize = b
        .eval("return document.querySelectorAll('[data-testid=\"latency\"] .hop.slow[data-hop=\"provider-relay\"]').length;", vec![])
        .await;
    assert_eq!(provider_slow, 0, "the provider hop is 0 ms and never reads slow");
    let saved: Option<String> = b.eval("return localStorage.getItem('hamster.latency-warn-ms.v1');", vec![]).await;
    assert_eq!(saved.as_deref(), Some("1.0"));

    b.click("tr[data-symbol=\"BTC/USD\"] .ticker").await;
    let first = wait_state(&b, "the chart drawn", drawn).await;
    assert_eq!(first.symbol.as_deref(), Some("BTC/USD"));
    assert_eq!(first.hash, "#/symbol/BTC%2FUSD");
    assert_eq!(first.tf.as_deref(), Some("1m"));
    let t0 = first.last_time.expect("a last candle");
    assert_eq!(t0 % 60, 0, "1m candles start on minutes");

    // Live ticks move the last candle (its close), and never move it back in time.
    let mut seen = vec![first.last_close];
    for _ in 0..3 {
        let before = seen[seen.len() - 1];
        let s = wait_state(&b, "the last candle to move", |s| drawn(s) && s.last_close != before).await;
        assert!(s.last_time.unwrap_or(0) >= t0, "the last candle went back in time: {s:?}");
        seen.push(s.last_close);
    }

    // The crosshair over the chart reads out the candle under it.
    let chart = b.client().find(Locator::Css("[data-testid=\"detail-chart\"]")).await.expect("the chart");
    let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: chart,
        duration: Some(Duration::from_millis(100)),
        x: 300.0,
        y: -60.0,
    });
    b.client().perform_actions(hover).await.expect("move over the chart");
    let s = wait_state(&b, "an OHLC readout", |s| s.readout.as_deref().is_some_and(|r| r.starts_with('O'))).await;
    let readout = s.readout.unwrap_or_default();
    assert!(readout.contains('H') && readout.contains('L') && readout.contains('C'), "{readout}");
    std::fs::create_dir_all(artifact_dir()).ok();
    b.screenshot(&artifact_dir().join("detail.png")).await;

    // A click on the chart offers an alert at that price; setting it arms a price alert on the symbol.
    let chart = b.client().find(Locator::Css("[data-testid=\"detail-chart\"]")).await.expect("the chart");
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement { element: chart, duration: None, x: 200.0, y: -80.0 })
        .then(PointerAction::Down { button: fantoccini::actions::MOUSE_BUTTON_LEFT })
        .then(PointerAction::Up { button: fantoccini::actions::MOUSE_BUTTON_LEFT });
    b.client().perform_actions(click).await.expect("click the chart");
    let level: f64 = b
        .wait_for("an alert offered at the clicked price", LIMIT, || async {
            let level: Option<String> = b
                .eval("const e = document.querySelector('[data-testid=\"chart-alert\"]'); return e ? e.dataset.level : null;", vec![])
                .await;
            level.and_then(|l| l.parse::<f64>().ok())
        })
        .await;
    let last = seen[seen.len() - 1].expect("a close");
    assert!(level > last * 0.5 && level < last * 1.5, "a level on the price scale near {last}: {level}");
    b.click("[data-testid=\"chart-alert-set\"]").await;
    let armed: Vec<String> = b
        .wait_for("the chart's alert armed", LIMIT, || async {
            let items: Vec<String> = b
                .eval("return [...document.querySelectorAll('[data-testid=\"alert-list\"] li span')].map(e => e.textContent);", vec![])
                .await;
            (!items.is_empty()).then_some(items)
        })
        .await;
    assert!(armed[0].starts_with("BTC/USD above") || armed[0].starts_with("BTC/USD below"), "{armed:?}");

    // Another timeframe is aggregated by the relay: hour candles.
    b.click("[data-testid=\"timeframe-1h\"]").await;
    // The button switches `data-tf` at once and the candles follow when the relay answers, so wait for candles
    // that can only be hours: on hour boundaries, and a day of them rather than the thousand minutes drawn before.
    let s = wait_state(&b, "hour candles", |s| {
        drawn(s)
            && s.tf.as_deref() == Some("1h")
            && s.last_time.is_some_and(|t| t % 3600 == 0)
            && s.candles.is_some_and(|n| n <= 48)
    })
    .await;

    // Line mode redraws from the same candles.
    b.click("[data-testid=\"line-mode\"]").await;
    let line = wait_state(&b, "the line chart", drawn).await;
    assert_eq!(line.last_time, s.last_time);

    // Esc closes and drops the deep link.
    let focused = b.client().active_element().await.expect("a focused element");
    focused.send_keys("\u{E00C}").await.expect("press Esc");
    let closed = wait_state(&b, "the view closed", |s| !s.open).await;
    assert_eq!(closed.hash, "");

    // Enter on a focused row opens that row's chart. (Making rows focusable is the watchlist's business; the
    // test focuses one directly.)
    let _: Option<bool> = b
        .eval(
            "const r = document.querySelector('tr[data-symbol=\"AAPL\"]'); r.tabIndex = 0; r.focus(); return null;",
            vec![],
        )
        .await;
    let focused = b.client().active_element().await.expect("the focused row");
    focused.send_keys("\u{E007}").await.expect("press Enter");
    let s = wait_state(&b, "the chart opened by Enter", drawn).await;
    assert_eq!((s.symbol.as_deref(), s.hash.as_str()), (Some("AAPL"), "#/symbol/AAPL"));

    // The deep link opens the view directly.
    b.goto(&format!("{}/#/symbol/ETH%2FUSD", relay.http_url())).await;
    let s = wait_state(&b, "the deep-linked chart", |s| drawn(s) && s.symbol.as_deref() == Some("ETH/USD")).await;
    assert_eq!(s.hash, "#/symbol/ETH%2FUSD");
    assert_eq!(s.decimals, Some(2), "crypto above 1,000 has cents");

    // The price scale fits the asset: FX quotes to five decimals.
    b.goto(&format!("{}/#/symbol/EUR%2FUSD", relay.http_url())).await;
    let s = wait_state(&b, "the EUR/USD chart", |s| drawn(s) && s.symbol.as_deref() == Some("EUR/USD")).await;
    assert_eq!(s.decimals, Some(5));

    // The EMA periods are not controlled inputs: the view re-renders with every tick, and what the user is
    // typing (no `change` until Enter or leaving the field) must survive those renders.
    b.type_into("[data-testid=\"ema-fast\"]", "7").await;
    b.type_into("[data-testid=\"ema-slow\"]", "31").await;
    for _ in 0..3 {
        let before = state(&b).await.last_close;
        wait_state(&b, "the chart to tick while typing", |s| drawn(s) && s.last_close != before).await;
    }
    let periods: Vec<String> = b
        .eval(
            "return ['ema-fast', 'ema-slow'].map(t => document.querySelector(`[data-testid=\"${t}\"]`).value);",
            vec![],
        )
        .await;
    assert_eq!(periods, ["7", "31"], "typed periods survive the ticks' re-renders");
    b.close().await;
}

/// A chart opened before its symbol was subscribed gets no past from its first request; the simulator hands the
/// relay a day when the symbol is subscribed, and the chart's first live tick fetches again and shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_opened_before_its_symbol_was_subscribed_gets_its_past_with_the_first_tick() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "10"]);
    let b = Browser::launch(1360, 900).await;
    // The watchlist is set on the relay's origin before the dashboard runs there: a running page saves its own
    // lists again (and a navigation to its own URL with another fragment does not reload it).
    b.goto(&format!("{}/healthz", relay.http_url())).await;
    let _: Option<bool> = b
        .eval("localStorage.setItem('hamster.watchlist.v1', '[\"AAPL\"]'); localStorage.removeItem('hamster.watchlists.v1'); return null;", vec![])
        .await;
    b.goto(&format!("{}/#/symbol/BTC%2FUSD", relay.http_url())).await;
    b.wait_for("the offer to add BTC/USD", LIMIT, || async {
        let n: u64 = b.eval("return document.querySelectorAll('.detail .chart-status button').length;", vec![]).await;
        (n == 1).then_some(())
    })
    .await;
    let before = state(&b).await;
    assert!(before.candles.unwrap_or(0) <= 1, "nobody held BTC/USD, so the relay had no past: {before:?}");
    b.click(".detail .chart-status button").await;
    let s =
        wait_state(&b, "a day of candles after the first tick", |s| drawn(s) && s.candles.unwrap_or(0) >= 900).await;
    assert_eq!(s.symbol.as_deref(), Some("BTC/USD"));
    assert_eq!(s.decimals, Some(2), "the scale fits the price once it is known: {s:?}");
    b.close().await;
}

/// Measures frames in the page while the detail chart follows one symbol at 50 ticks/s. Frame busy time is from
/// a frame's first `requestAnimationFrame` callback until the main thread runs its next task (the chart's draw,
/// style, layout and paint). Printed, never asserted: a benchmark, run on demand with
/// `cargo test -p hamster-tests --test dashboard_chart -- --ignored --nocapture` (set `HAMSTER_BENCH_DIST` to a
/// `trunk build --release` output to measure a release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints frame times, run on demand"]
async fn detail_chart_frame_times_at_50_ticks_per_second() {
    let dist = std::env::var("HAMSTER_BENCH_DIST").unwrap_or_else(|_| dist_dir().to_string_lossy().into_owned());
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "50"]);
    let b = Browser::launch(1360, 900).await;
    b.goto(&format!("{}/#/symbol/BTC%2FUSD", relay.http_url())).await;
    wait_state(&b, "the chart drawn", drawn).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = state(&b).await;
    let (intervals, busy): (Vec<f64>, Vec<f64>) = b
        .eval(
            r#"
            const done = arguments[arguments.length - 1];
            const intervals = [], busy = [];
            let last = null;
            const end = performance.now() + 5000;
            const frame = (t) => {
                if (last !== null) intervals.push(t - last);
                last = t;
                const start = performance.now();
                setTimeout(() => busy.push(performance.now() - start), 0);
                if (t < end) requestAnimationFrame(frame);
            };
            requestAnimationFrame(frame);
            return new Promise((resolve) => setTimeout(() => resolve([intervals, busy]), 5300));
            "#,
            vec![],
        )
        .await;
    let after = state(&b).await;
    let pct = |v: &[f64], q: f64| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
    };
    assert!(intervals.len() > 10, "the page drew frames: {}", intervals.len());
    assert_ne!(before.last_close, after.last_close, "the chart ticked while measured");
    println!(
        "detail chart at 50 ticks/s: {} frames in 5 s; interval p50 {:.1} / p95 {:.1} ms; \
         busy p50 {:.1} / p95 {:.1} / max {:.1} ms; load {}",
        intervals.len(),
        pct(&intervals, 0.5),
        pct(&intervals, 0.95),
        pct(&busy, 0.5),
        pct(&busy, 0.95),
        pct(&busy, 1.0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    b.close().await;
}
