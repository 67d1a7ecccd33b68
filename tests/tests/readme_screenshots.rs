//! The README's pictures, taken from the real relay and dashboard: `cargo test -p hamster-tests --test
//! readme_screenshots -- --ignored` writes `docs/screenshot.png` (the dashboard with the event feed running and an
//! alert firing) and `docs/screenshot-chart.png` (the detail chart on the simulator's reconstructed day, with
//! every indicator on and an alert firing over it). Ignored in the suite: it makes pictures, it proves nothing
//! the other browser tests do not.

use std::time::Duration;

use hamster_tests::browser::{dist_dir, workspace_root, Browser};
use hamster_tests::Relay;
use serde_json::json;

#[tokio::test]
#[ignore = "writes the README's screenshots"]
async fn readme_screenshots() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-tick-hz", "8", "--sim-events-per-min", "120"]);
    let b = Browser::launch(1360, 1180).await;
    b.goto(&relay.http_url()).await;
    // Dark, as the terminal ships.
    let _: Option<bool> = b.eval("localStorage.setItem('hamster.theme.v1', '\"dark\"'); return null;", vec![]).await;
    b.reload().await;
    let limit = Duration::from_secs(30);
    b.wait_for("live prices", limit, || async {
        let n: u64 = b
            .eval("return [...document.querySelectorAll('[data-testid=\"price\"]')].filter(p => /\\d/.test(p.textContent)).length;", vec![])
            .await;
        (n >= 8).then_some(())
    })
    .await;
    b.click("[data-testid=\"feed-watch\"]").await;
    b.wait_for("events in the feed", limit, || async {
        let n: u64 =
            b.eval("return document.querySelectorAll('[data-testid=\"event-feed\"] tbody tr').length;", vec![]).await;
        (n >= 4).then_some(())
    })
    .await;
    // An alert at the current price fires within seconds.
    let price: String = b
        .eval("return document.querySelector('[data-testid=\"quote-row\"][data-symbol=\"BTC/USD\"] [data-testid=\"alert-bell\"]').dataset.price;", vec![])
        .await;
    let set = "const q = s => document.querySelector(`[data-testid=\"${s}\"]`); q('alert-symbol').value = 'BTC/USD'; \
        const k = q('alert-kind'); k.value = 'crosses'; k.dispatchEvent(new Event('change', { bubbles: true })); \
        q('alert-level').value = arguments[0]; q('alert-create').click(); return null;";
    let _: Option<bool> = b.eval(set, vec![json!(price)]).await;
    b.wait_for("the alert to fire", Duration::from_secs(60), || async {
        let t: String =
            b.eval("return document.querySelector('[data-testid=\"alert-toast\"]').textContent;", vec![]).await;
        t.contains("crossed").then_some(())
    })
    .await;
    b.screenshot(&workspace_root().join("docs/screenshot.png")).await;

    // The chart: a quarter-hour view of the day the simulator reconstructed, with every indicator.
    let _: Option<bool> = b.eval("location.hash = '#/symbol/ETH%2FUSD'; return null;", vec![]).await;
    let candles = |tf: &'static str| {
        let b = &b;
        async move {
            let script = "const c = document.querySelector('[data-testid=\"detail-chart\"]'); \
                return c && c.dataset.tf === arguments[0] ? Number(c.dataset.candles || 0) : 0;";
            let n: u64 = b.eval(script, vec![json!(tf)]).await;
            (n >= 40).then_some(())
        }
    };
    b.wait_for("the detail chart", limit, || candles("1m")).await;
    b.click("[data-testid=\"timeframe-15m\"]").await;
    b.wait_for("quarter-hour candles", limit, || candles("15m")).await;
    for toggle in ["toggle-ema", "toggle-bollinger", "toggle-rsi", "toggle-stoch"] {
        let on: bool =
            b.eval(&format!("return document.querySelector('[data-testid=\"{toggle}\"]').checked;"), vec![]).await;
        if !on {
            b.click(&format!("[data-testid=\"{toggle}\"]")).await;
        }
    }
    let price: String = b
        .eval("return document.querySelector('[data-testid=\"quote-row\"][data-symbol=\"ETH/USD\"] [data-testid=\"alert-bell\"]').dataset.price;", vec![])
        .await;
    let _: Option<bool> = b.eval(&set.replace("BTC/USD", "ETH/USD"), vec![json!(price)]).await;
    b.wait_for("the chart's alert to fire", Duration::from_secs(60), || async {
        let t: String =
            b.eval("return document.querySelector('[data-testid=\"alert-toast\"]').textContent;", vec![]).await;
        t.contains("ETH/USD").then_some(())
    })
    .await;
    // Let the panes draw their last tick.
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.screenshot(&workspace_root().join("docs/screenshot-chart.png")).await;

    b.close().await;
}
