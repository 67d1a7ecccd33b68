//! The dashboard end to end: the real relay serves the built dashboard (`dist/`, see
//! [`hamster_tests::browser::dist_dir`]) to a real headless Chromium, and the tests read the page through its
//! `data-testid` hooks. Scenarios: rows tick with fitting decimals, adding/removing symbols (persisted across a
//! reload), a relay rejection shown with its reason (and a "did you mean" suggestion, clicked or pressed with
//! Enter, replacing the refused symbol in place), surviving a relay crash and restart without a reload, and
//! a reload while the relay is down showing cached quotes.
//!
//! Time to first tick and reconnect time are printed (`cargo test -p hamster-tests --test dashboard_e2e --
//! --nocapture` shows them). A screenshot goes to `target/e2e/dashboard.png`.
//!
//! The tests take turns (one browser at a time): they measure timings, and parallel browsers on a small machine
//! would measure each other.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hamster_tests::browser::{artifact_dir, dist_dir, Browser};
use hamster_tests::mocks::binance::BinanceMock;
use hamster_tests::Relay;
use serde::Deserialize;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DEFAULT_SYMBOLS: [&str; 8] = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];

/// Reads everything the tests check in one script, so a re-render between two WebDriver calls cannot tear it.
const SNAPSHOT_JS: &str = r#"
const text = (root, sel) => { const el = root.querySelector(sel); return el ? el.textContent.trim() : null; };
const rows = [...document.querySelectorAll('[data-testid="quote-row"]')].map(r => ({
    symbol: r.dataset.symbol,
    price: text(r, '[data-testid="price"]'),
    change_pct: text(r, '[data-testid="change-pct"]'),
    rejection: text(r, '[data-testid="rejection"]'),
    stale: r.classList.contains('stale'),
    cached: r.classList.contains('cached'),
}));
const badge = document.querySelector('[data-testid="connection-status"]');
const stats = {};
for (const d of document.querySelectorAll('[data-testid="stats"] [data-stat]')) stats[d.dataset.stat] = d.textContent.trim();
return {
    rows,
    state: badge ? badge.dataset.state : null,
    badge: badge ? badge.textContent.trim() : null,
    log: [...document.querySelectorAll('[data-testid="activity-log"] li')].map(li => li.textContent.trim()),
    stats,
    input_error: text(document, '#symbol-error') || '',
};
"#;

#[derive(Debug, Clone, Deserialize)]
struct RowView {
    symbol: String,
    price: Option<String>,
    change_pct: Option<String>,
    rejection: Option<String>,
    stale: bool,
    cached: bool,
}

impl RowView {
    /// The displayed price as a number (`—` and missing prices are `None`).
    fn price_value(&self) -> Option<f64> {
        self.price.as_deref()?.replace(',', "").parse().ok()
    }

    /// Digits after the decimal point of the displayed price.
    fn decimals(&self) -> Option<usize> {
        self.price_value()?;
        Some(self.price.as_deref()?.split_once('.').map_or(0, |(_, f)| f.len()))
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Dash {
    rows: Vec<RowView>,
    state: Option<String>,
    badge: Option<String>,
    log: Vec<String>,
    stats: HashMap<String, String>,
    input_error: String,
}

impl Dash {
    fn row(&self, symbol: &str) -> Option<&RowView> {
        self.rows.iter().find(|r| r.symbol == symbol)
    }

    fn price(&self, symbol: &str) -> Option<f64> {
        self.row(symbol).and_then(RowView::price_value)
    }

    fn symbols(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.symbol.as_str()).collect()
    }

    fn all_priced(&self, symbols: &[&str]) -> bool {
        symbols.iter().all(|s| self.price(s).is_some())
    }

    fn is(&self, state: &str) -> bool {
        self.state.as_deref() == Some(state)
    }
}

/// The dashboard as it is now, or `None` while the page is navigating or not rendered yet.
async fn try_dash(b: &Browser) -> Option<Dash> {
    let value = b.client().execute(SNAPSHOT_JS, vec![]).await.ok()?;
    serde_json::from_value(value).ok()
}

/// Waits until `pred` holds on the dashboard; returns that snapshot.
async fn wait_dash(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&Dash) -> bool) -> Dash {
    let deadline = Instant::now() + limit;
    let mut last = None;
    loop {
        if let Some(d) = try_dash(b).await {
            if pred(&d) {
                return d;
            }
            last = Some(d);
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}; dashboard: {last:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn relay_args(dist: &str) -> Vec<&str> {
    vec!["--static-dir", dist]
}

/// Starts a relay serving the dashboard, and a browser.
async fn setup() -> (Relay, Browser, String) {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&relay_args(&dist));
    let browser = Browser::launch(1360, 900).await;
    (relay, browser, dist)
}

/// Loads the dashboard and waits until it is live with every default symbol priced. Returns the time from
/// navigation to the first price on screen.
async fn open_live(b: &Browser, relay: &Relay) -> Duration {
    let start = Instant::now();
    b.goto(&relay.http_url()).await;
    let first = b
        .wait_for("the first price on screen", Duration::from_secs(20), || async {
            let d = try_dash(b).await?;
            d.rows.iter().any(|r| r.price_value().is_some() && !r.cached).then(|| start.elapsed())
        })
        .await;
    wait_dash(b, "live with all default symbols priced", Duration::from_secs(15), |d| {
        d.is("live") && d.all_priced(&DEFAULT_SYMBOLS)
    })
    .await;
    first
}

/// Waits until `symbol`'s displayed price differs from `from` (it ticks).
async fn wait_tick(b: &Browser, symbol: &str, from: f64, limit: Duration) -> f64 {
    let d = wait_dash(b, &format!("{symbol} to tick away from {from}"), limit, |d| {
        d.price(symbol).is_some_and(|p| p != from)
    })
    .await;
    d.price(symbol).unwrap_or(from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_tick_with_fitting_decimals() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    let first_tick = open_live(&b, &relay).await;
    // The page's own marks (ms since navigation start), free of the test's polling and WebDriver latency.
    let marks: Vec<Option<f64>> = b
        .eval(
            "const m = n => { const e = performance.getEntriesByName(n); return e.length ? e[0].startTime : null; }; \
             const nav = performance.getEntriesByType('navigation')[0]; \
             return [nav ? nav.domContentLoadedEventEnd : null, m('hamster:start'), m('hamster:relay-resolved'), \
                     m('hamster:live'), m('hamster:first-quote')];",
            vec![],
        )
        .await;
    let ms = |v: Option<&Option<f64>>| v.copied().flatten().map_or("?".to_owned(), |v| format!("{v:.0}"));
    println!(
        "METRIC time_to_first_tick_ms={} (in page, ms after navigation start: dom_ready={} wasm_started={} \
         relay_resolved={} live={} first_quote={})",
        first_tick.as_millis(),
        ms(marks.first()),
        ms(marks.get(1)),
        ms(marks.get(2)),
        ms(marks.get(3)),
        ms(marks.get(4))
    );
    assert!(marks.get(4).copied().flatten().is_some(), "the first-quote mark is set: {marks:?}");

    let d = wait_dash(&b, "default watchlist", Duration::from_secs(5), |d| d.rows.len() == 8).await;
    assert_eq!(d.symbols(), DEFAULT_SYMBOLS, "default watchlist in order");
    let decimals = |s: &str| d.row(s).and_then(RowView::decimals);
    assert_eq!(decimals("EUR/USD"), Some(5), "forex shows 5 decimals: {:?}", d.row("EUR/USD"));
    assert_eq!(decimals("AAPL"), Some(2), "equities show 2 decimals: {:?}", d.row("AAPL"));
    assert_eq!(decimals("BTC/USD"), Some(2), "BTC shows 2 decimals: {:?}", d.row("BTC/USD"));
    assert!(d.rows.iter().all(|r| !r.stale), "fresh rows are not dimmed: {:?}", d.rows);
    assert!(d.log.iter().any(|l| l.contains("connected to hamster-relay")), "log: {:?}", d.log);
    let (_, clients) = relay.get_json::<serde_json::Value>("/api/clients").await;
    let transports: Vec<&str> =
        clients["clients"].as_array().into_iter().flatten().filter_map(|c| c["transport"].as_str()).collect();
    assert_eq!(transports, ["ws"], "the page speaks JSON: it does not offer MessagePack");

    // Several distinct prices in a few seconds: the rows tick.
    let mut seen = vec![d.price("BTC/USD").unwrap_or_default()];
    while seen.len() < 4 {
        let last = *seen.last().unwrap_or(&0.0);
        seen.push(wait_tick(&b, "BTC/USD", last, Duration::from_secs(10)).await);
    }
    let d = wait_dash(&b, "stats to count updates", Duration::from_secs(5), |d| {
        d.stats.get("updates").and_then(|u| u.parse::<u64>().ok()).is_some_and(|u| u > 8)
            && d.stats.get("lag-avg").is_some_and(|l| l.ends_with("ms") || l.ends_with(" s"))
    })
    .await;
    assert_eq!(d.stats.get("symbols").map(String::as_str), Some("8"));
    println!("METRIC stats {:?}", d.stats);
    assert!(d.rows.iter().all(|r| r.change_pct.as_deref().is_some_and(|p| p.ends_with('%') || p == "—")));

    // A price change lights its cell green or red, and the light goes out by itself (a class a timer removes, no
    // animation): watched on every row's price cell for 4 s.
    let lit: Vec<(bool, f64)> = b
        .eval(
            r#"
            const changes = [];
            const t0 = performance.now();
            const obs = new MutationObserver(ms => { for (const m of ms) {
                const on = /flash-(up|down)/.test(m.target.className);
                changes.push([m.target.closest('tr').dataset.symbol, on, performance.now() - t0]);
            } });
            for (const c of document.querySelectorAll('[data-testid="quote-row"] [data-testid="price"]'))
                obs.observe(c, { attributes: true, attributeFilter: ['class'] });
            return new Promise(resolve => setTimeout(() => {
                obs.disconnect();
                // Per cell, each time it lit: how long until it went out (-1: still lit at the end).
                const out = [], since = {};
                for (const [sym, on, t] of changes) {
                    if (on && since[sym] == null) since[sym] = t;
                    if (!on && since[sym] != null) { out.push([true, t - since[sym]]); delete since[sym]; }
                }
                for (const sym in since) out.push([false, 4000 - since[sym]]);
                resolve(out);
            }, 4000));
            "#,
            vec![],
        )
        .await;
    let went_out: Vec<f64> = lit.iter().filter(|(out, _)| *out).map(|(_, ms)| *ms).collect();
    assert!(went_out.len() >= 3, "price cells lit and went out: {lit:?}");
    assert!(went_out.iter().all(|ms| (200.0..=2_000.0).contains(ms)), "each light lasts about 450 ms: {lit:?}");
    assert!(lit.iter().all(|(out, ms)| *out || *ms < 2_000.0), "a cell stayed lit: {lit:?}");

    // Let the sparklines fill, then keep a picture.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shot = artifact_dir().join("dashboard.png");
    b.screenshot(&shot).await;
    println!("screenshot: {}", shot.display());

    // Phone width: nothing pushes the page sideways (the table scrolls inside its own box).
    b.resize(390, 844).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let overflow: bool = b.eval("return document.documentElement.scrollWidth > window.innerWidth + 1;", vec![]).await;
    assert!(!overflow, "page overflows horizontally at phone width");
    b.screenshot(&artifact_dir().join("dashboard-phone.png")).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_symbols() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    open_live(&b, &relay).await;

    // Invalid input is refused before anything is sent, with the shared rule's reason.
    b.type_into("[data-testid=symbol-input]", "AA PL").await;
    b.click("[data-testid=add-symbol]").await;
    let d = wait_dash(&b, "an input error", Duration::from_secs(5), |d| !d.input_error.is_empty()).await;
    assert!(d.input_error.contains("' '"), "error names the bad character: {}", d.input_error);
    assert_eq!(d.rows.len(), 8);

    b.type_into("[data-testid=symbol-input]", "tsla").await;
    b.click("[data-testid=add-symbol]").await;
    let d = wait_dash(&b, "TSLA priced", Duration::from_secs(10), |d| d.price("TSLA").is_some()).await;
    assert_eq!(d.symbols().last(), Some(&"TSLA"), "added at the end, canonical spelling");
    assert!(d.input_error.is_empty(), "a valid add clears the error: {}", d.input_error);

    b.type_into("[data-testid=symbol-input]", "TSLA").await;
    b.click("[data-testid=add-symbol]").await;
    let d = wait_dash(&b, "a duplicate error", Duration::from_secs(5), |d| !d.input_error.is_empty()).await;
    assert!(d.input_error.contains("already"), "{}", d.input_error);
    assert_eq!(d.rows.iter().filter(|r| r.symbol == "TSLA").count(), 1);

    b.click(r#"[data-testid=quote-row][data-symbol="MSFT"] [data-testid=remove-symbol]"#).await;
    wait_dash(&b, "MSFT removed", Duration::from_secs(5), |d| d.row("MSFT").is_none()).await;
    // Late quotes for a removed symbol must not bring it back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = wait_dash(&b, "still 8 rows", Duration::from_secs(2), |d| d.rows.len() == 8).await;
    assert!(d.row("MSFT").is_none());

    // The watchlist survives a reload.
    b.reload().await;
    let d = wait_dash(&b, "live after reload", Duration::from_secs(20), |d| d.is("live") && d.price("TSLA").is_some())
        .await;
    assert!(d.row("MSFT").is_none(), "removed symbol stays removed: {:?}", d.symbols());
    assert_eq!(d.symbols().last(), Some(&"TSLA"));
    b.close().await;
}

/// Presses `key` wherever the focus is (WebDriver key codes: `\u{E015}` is ↓, `\u{E013}` ↑, `\u{E007}` Enter,
/// `\u{E017}` Delete, `\u{E00C}` Esc).
async fn press(b: &Browser, key: &str) {
    let target = b.client().active_element().await.expect("a focused element");
    target.send_keys(key).await.expect("send keys");
}

/// What the keyboard is on: the focused row's symbol, or the focused element's test id.
async fn focus(b: &Browser) -> String {
    b.eval(
        "const a = document.activeElement; return a ? (a.dataset.symbol || a.dataset.testid || a.tagName) : '';",
        vec![],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchlist_sorts_freezes_and_answers_the_keyboard() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    open_live(&b, &relay).await;

    // Sorting is a view: Symbol A→Z, then Z→A; Price starts high→low; a third click restores the own order.
    b.click("[data-testid=sort-symbol]").await;
    let d = wait_dash(&b, "sorted A-Z", Duration::from_secs(5), |d| d.symbols()[0] == "AAPL").await;
    let mut az: Vec<&str> = DEFAULT_SYMBOLS.to_vec();
    az.sort();
    assert_eq!(d.symbols(), az);
    b.click("[data-testid=sort-symbol]").await;
    let d = wait_dash(&b, "sorted Z-A", Duration::from_secs(5), |d| d.symbols()[0] == "SPY").await;
    assert_eq!(d.symbols(), az.iter().rev().copied().collect::<Vec<_>>());
    b.click("[data-testid=sort-price]").await;
    let d = wait_dash(&b, "sorted by price", Duration::from_secs(5), |d| d.symbols()[0] == "BTC/USD").await;
    let prices: Vec<f64> = d.symbols().iter().filter_map(|s| d.price(s)).collect();
    assert!(prices.windows(2).all(|w| w[0] >= w[1]), "high to low: {prices:?}");
    let aria: String =
        b.eval("return document.querySelector('th[aria-sort=\"descending\"]').textContent;", vec![]).await;
    assert!(aria.starts_with("Price"), "{aria}");
    // Frozen, the order stays even though prices tick.
    b.click("[data-testid=freeze-order]").await;
    let frozen = d.symbols().iter().map(|s| s.to_string()).collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = wait_dash(&b, "still frozen", Duration::from_secs(5), |_| true).await;
    assert_eq!(d.symbols(), frozen.iter().map(String::as_str).collect::<Vec<_>>());
    b.click("[data-testid=freeze-order]").await;
    b.click("[data-testid=sort-price]").await;
    b.click("[data-testid=sort-price]").await;
    wait_dash(&b, "the own order back", Duration::from_secs(5), |d| d.symbols() == DEFAULT_SYMBOLS).await;

    // `/` focuses the add field; Esc leaves it (blur), then ↓ walks the rows.
    b.eval::<Option<bool>>("document.activeElement && document.activeElement.blur(); return null;", vec![]).await;
    press(&b, "/").await;
    assert_eq!(focus(&b).await, "symbol-input");
    b.eval::<Option<bool>>("document.activeElement.blur(); return null;", vec![]).await;
    press(&b, "\u{E015}").await;
    assert_eq!(focus(&b).await, "BTC/USD");
    press(&b, "\u{E015}").await;
    press(&b, "\u{E015}").await;
    assert_eq!(focus(&b).await, "AAPL");
    press(&b, "\u{E013}").await;
    assert_eq!(focus(&b).await, "ETH/USD");
    // `a` prefills an alert for the focused row.
    press(&b, "a").await;
    b.wait_for("the alert form prefilled for ETH/USD", Duration::from_secs(5), || async {
        let v: Vec<String> = b
            .eval(
                "return [document.querySelector('[data-testid=\"alert-symbol\"]').value,                  document.querySelector('[data-testid=\"alert-level\"]').value];",
                vec![],
            )
            .await;
        (v[0] == "ETH/USD" && !v[1].is_empty()).then_some(())
    })
    .await;
    // Back on the rows: Enter opens the focused row's chart, Esc closes it; Delete removes the row.
    b.eval::<Option<bool>>(
        "document.querySelector('[data-testid=\"quote-row\"][data-symbol=\"MSFT\"]').focus(); return null;",
        vec![],
    )
    .await;
    press(&b, "\u{E007}").await;
    b.wait_for("the MSFT chart open", Duration::from_secs(10), || async {
        let open: Option<String> =
            b.eval("const v = document.querySelector('[data-testid=\"detail-view\"]'); return v ? v.dataset.symbol : null;", vec![]).await;
        (open.as_deref() == Some("MSFT")).then_some(())
    })
    .await;
    press(&b, "\u{E00C}").await;
    b.eval::<Option<bool>>(
        "document.querySelector('[data-testid=\"quote-row\"][data-symbol=\"MSFT\"]').focus(); return null;",
        vec![],
    )
    .await;
    press(&b, "\u{E017}").await;
    let d = wait_dash(&b, "MSFT removed by Delete", Duration::from_secs(5), |d| d.row("MSFT").is_none()).await;
    assert_eq!(d.rows.len(), 7);
    assert_eq!(focus(&b).await, "NVDA", "the next row takes the focus");

    // Themes: system → light → dark, applied to the page's colours and kept across a reload.
    let theme =
        "return [document.documentElement.dataset.theme || 'system', getComputedStyle(document.body).backgroundColor];";
    b.click("[data-testid=theme-toggle]").await;
    let light: Vec<String> = b.eval(theme, vec![]).await;
    assert_eq!(light, ["light", "rgb(246, 248, 250)"]);
    b.click("[data-testid=theme-toggle]").await;
    let dark: Vec<String> = b.eval(theme, vec![]).await;
    assert_eq!(dark, ["dark", "rgb(13, 17, 23)"]);
    b.click("[data-testid=theme-toggle]").await;
    b.click("[data-testid=theme-toggle]").await;
    b.reload().await;
    wait_dash(&b, "live after reload", Duration::from_secs(20), |d| d.is("live")).await;
    let kept: Vec<String> = b.eval(theme, vec![]).await;
    assert_eq!(kept[0], "light", "the choice survives a reload");
    b.close().await;
}

const TABS_JS: &str = "return [...document.querySelectorAll('[data-testid=\"watchlist-tab\"]')]\
    .map(t => (t.getAttribute('aria-selected') === 'true' ? '*' : '') + t.dataset.name);";

async fn list_tabs(b: &Browser) -> Vec<String> {
    b.eval(TABS_JS, vec![]).await
}

/// Types `name` into the list-name field and presses Enter.
async fn name_list(b: &Browser, name: &str) {
    b.wait_for("the list name field", Duration::from_secs(5), || async {
        let open: bool = b.eval("return !!document.querySelector('[data-testid=\"list-name\"]');", vec![]).await;
        open.then_some(())
    })
    .await;
    let set = "const i = document.querySelector('[data-testid=\"list-name\"]'); i.value = arguments[0]; i.focus(); return null;";
    b.eval::<Option<bool>>(set, vec![serde_json::json!(name)]).await;
    press(b, "\u{E007}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_watchlists_switch_persist_rename_and_delete() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    open_live(&b, &relay).await;
    assert_eq!(list_tabs(&b).await, ["*Watchlist"]);

    // A new list starts empty and active; a symbol added there ticks.
    b.click("[data-testid=new-list]").await;
    name_list(&b, "watchlist").await;
    let refused: String = b.eval("return document.querySelector('.list-tabs .input-error').textContent;", vec![]).await;
    assert!(refused.contains("already"), "a duplicate name is refused: {refused}");
    name_list(&b, "Crypto").await;
    b.wait_for("the Crypto tab active", Duration::from_secs(5), || async {
        (list_tabs(&b).await == ["Watchlist", "*Crypto"]).then_some(())
    })
    .await;
    wait_dash(&b, "an empty list", Duration::from_secs(5), |d| d.rows.is_empty()).await;
    b.type_into("[data-testid=symbol-input]", "SOL/USD").await;
    b.click("[data-testid=add-symbol]").await;
    wait_dash(&b, "SOL/USD priced in Crypto", Duration::from_secs(10), |d| {
        d.symbols() == ["SOL/USD"] && d.price("SOL/USD").is_some()
    })
    .await;

    // Switching shows each list's own symbols, priced.
    b.click("[data-testid=watchlist-tab][data-name=Watchlist]").await;
    wait_dash(&b, "the default list back", Duration::from_secs(10), |d| {
        d.symbols() == DEFAULT_SYMBOLS && d.all_priced(&DEFAULT_SYMBOLS)
    })
    .await;
    b.click("[data-testid=watchlist-tab][data-name=Crypto]").await;
    wait_dash(&b, "Crypto again", Duration::from_secs(10), |d| {
        d.symbols() == ["SOL/USD"] && d.price("SOL/USD").is_some()
    })
    .await;

    // Both lists and the active one survive a reload.
    b.reload().await;
    wait_dash(&b, "Crypto after reload", Duration::from_secs(20), |d| d.is("live") && d.symbols() == ["SOL/USD"]).await;
    assert_eq!(list_tabs(&b).await, ["Watchlist", "*Crypto"]);

    // Rename, then delete (asked twice): the other list becomes active.
    b.click("[data-testid=rename-list]").await;
    name_list(&b, "Coins").await;
    b.wait_for("renamed", Duration::from_secs(5), || async {
        (list_tabs(&b).await == ["Watchlist", "*Coins"]).then_some(())
    })
    .await;
    b.click("[data-testid=delete-list]").await;
    assert_eq!(list_tabs(&b).await.len(), 2, "the first click only asks");
    b.click("[data-testid=delete-list]").await;
    wait_dash(&b, "back to the default list", Duration::from_secs(10), |d| d.symbols() == DEFAULT_SYMBOLS).await;
    assert_eq!(list_tabs(&b).await, ["*Watchlist"]);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_as_you_type_adds_a_symbol_found_by_its_name_with_the_keyboard() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    open_live(&b, &relay).await;

    // Part of a company name: the relay's catalog search lists the ticker under the field.
    b.type_into("[data-testid=symbol-input]", "coinbas").await;
    let listed: Vec<(String, String)> = b
        .wait_for("suggestions under the field", Duration::from_secs(10), || async {
            let items: Vec<(String, String)> = b
                .eval(
                    "return [...document.querySelectorAll('[data-testid=\"symbol-suggestion\"]')] \
                     .map(e => [e.dataset.symbol, e.textContent]);",
                    vec![],
                )
                .await;
            (!items.is_empty()).then_some(items)
        })
        .await;
    assert_eq!(listed[0].0, "COIN", "{listed:?}");
    assert!(listed[0].1.contains("Coinbase") && listed[0].1.contains("equity"), "name and class shown: {listed:?}");

    // Arrow down onto it, Enter: the row appears and ticks; the field is empty and the list gone.
    b.type_into_keys("[data-testid=symbol-input]", "\u{E015}").await;
    let expanded: Option<String> = b
        .eval(
            "return document.querySelector('[data-testid=symbol-input]').getAttribute('aria-activedescendant');",
            vec![],
        )
        .await;
    assert_eq!(expanded.as_deref(), Some("symbol-option-0"));
    b.type_into_keys("[data-testid=symbol-input]", "\u{E007}").await;
    let d = wait_dash(&b, "COIN added and priced", Duration::from_secs(10), |d| d.price("COIN").is_some()).await;
    assert_eq!(d.symbols().last(), Some(&"COIN"));
    let state: (String, bool) = b
        .eval(
            "return [document.querySelector('[data-testid=symbol-input]').value, \
             !!document.querySelector('[data-testid=symbol-suggestions]')];",
            vec![],
        )
        .await;
    assert_eq!(state, (String::new(), false));

    // Escape closes the list without adding anything.
    b.type_into("[data-testid=symbol-input]", "tesl").await;
    b.wait_for("suggestions for tesl", Duration::from_secs(10), || async {
        let n: usize =
            b.eval("return document.querySelectorAll('[data-testid=\"symbol-suggestion\"]').length;", vec![]).await;
        (n > 0).then_some(())
    })
    .await;
    b.type_into_keys("[data-testid=symbol-input]", "\u{E00C}").await;
    let open: bool = b.eval("return !!document.querySelector('[data-testid=symbol-suggestions]');", vec![]).await;
    assert!(!open);
    assert!(wait_dash(&b, "no TSLA row", Duration::from_secs(2), |_| true).await.row("TSLA").is_none());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_symbol_shows_the_relays_reason_and_a_suggestion_replaces_it() {
    let _turn = SERIAL.lock().await;
    // Binance (a loopback mock listing three pairs) beside the simulator, which keeps the default symbols.
    let binance = BinanceMock::start().await;
    binance.list_pairs(&["BTC/USDT", "ETH/USDT", "SOL/USDT"]);
    let dist = dist_dir().to_string_lossy().into_owned();
    let (ws_url, rest_url) = (binance.ws_url(), binance.rest_url.clone());
    let mut args = relay_args(&dist);
    args.extend(["--providers", "sim,binance", "--binance-ws-url", &ws_url, "--binance-rest-url", &rest_url]);
    let relay = Relay::start(&args);
    relay
        .wait_status("the Binance catalog", |s| {
            s.providers.iter().any(|p| p.name == "binance" && p.catalog.as_ref().is_some_and(|c| c.instruments == 3))
        })
        .await;
    let b = Browser::launch(1360, 900).await;
    open_live(&b, &relay).await;

    b.type_into("[data-testid=symbol-input]", "nosuch:AAPL").await;
    b.click("[data-testid=add-symbol]").await;
    let d = wait_dash(&b, "nosuch:AAPL rejected", Duration::from_secs(10), |d| {
        d.row("nosuch:AAPL").is_some_and(|r| r.rejection.is_some())
    })
    .await;
    let reason = d.row("nosuch:AAPL").and_then(|r| r.rejection.clone()).unwrap_or_default();
    assert!(reason.contains("unknown_provider"), "reason shown: {reason}");
    assert!(reason.contains("nosuch"), "the relay's message is shown: {reason}");
    assert!(d.log.iter().any(|l| l.contains("rejected nosuch:AAPL")), "logged: {:?}", d.log);
    // The other rows keep ticking.
    let aapl = d.price("AAPL").unwrap_or_default();
    wait_tick(&b, "AAPL", aapl, Duration::from_secs(10)).await;

    // A mistyped pair: refused with the relay's "did you mean", offered as buttons in the row.
    let suggestions_of = |symbol: &str| {
        format!(
            "return [...document.querySelectorAll('[data-testid=quote-row][data-symbol=\"{symbol}\"] \
             [data-testid=did-you-mean]')].map(e => e.dataset.suggestion);"
        )
    };
    for (typo, fixed) in [("binance:BTC/USDX", "binance:BTC/USDT"), ("binance:ETH/USDX", "binance:ETH/USDT")] {
        b.type_into("[data-testid=symbol-input]", typo).await;
        b.click("[data-testid=add-symbol]").await;
        let d = wait_dash(&b, &format!("{typo} rejected"), Duration::from_secs(10), |d| {
            d.row(typo).is_some_and(|r| r.rejection.is_some())
        })
        .await;
        let reason = d.row(typo).and_then(|r| r.rejection.clone()).unwrap_or_default();
        assert!(reason.contains("unknown_symbol") && reason.contains("did you mean"), "{reason}");
        let offered: Vec<String> = b.eval(&suggestions_of(typo), vec![]).await;
        assert_eq!(offered.first().map(String::as_str), Some(fixed), "{offered:?}");
        let at = d.symbols().iter().position(|s| *s == typo);
        let button = format!("[data-testid=quote-row][data-symbol=\"{typo}\"] [data-suggestion=\"{fixed}\"]");
        if typo.starts_with("binance:BTC") {
            b.click(&button).await;
        } else {
            // Keyboard only: the button takes focus and Enter presses it.
            b.type_into_keys(&button, "\u{E007}").await;
        }
        let d = wait_dash(&b, &format!("{fixed} in place of {typo}, priced"), Duration::from_secs(10), |d| {
            d.row(typo).is_none() && d.price(fixed).is_some()
        })
        .await;
        assert_eq!(d.symbols().iter().position(|s| *s == fixed), at, "replaced in place: {:?}", d.symbols());
        let price = d.price(fixed).unwrap_or_default();
        wait_tick(&b, fixed, price, Duration::from_secs(10)).await;
        assert!(d.log.iter().any(|l| l.contains(&format!("replaced {typo} with {fixed}"))), "{:?}", d.log);
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_relay_crash_and_restart_without_reload() {
    let _turn = SERIAL.lock().await;
    let (mut relay, b, dist) = setup().await;
    open_live(&b, &relay).await;
    // A marker that a reload would wipe.
    let _: Option<bool> = b.eval("window.__hamsterE2e = 42; return null;", vec![]).await;
    let port = relay.port();

    relay.kill();
    let killed = Instant::now();
    let d =
        wait_dash(&b, "the badge to leave live", Duration::from_secs(10), |d| d.is("reconnecting") || d.is("offline"))
            .await;
    println!("METRIC disconnect_detected_ms={}", killed.elapsed().as_millis());
    assert!(d.all_priced(&DEFAULT_SYMBOLS), "cached prices stay on screen: {:?}", d.rows);
    // Long enough for the REST fallback to fail too and the backoff to grow a little.
    let d = wait_dash(&b, "offline (REST fallback failing)", Duration::from_secs(10), |d| d.is("offline")).await;
    assert!(d.all_priced(&DEFAULT_SYMBOLS), "prices still shown while offline: {:?}", d.rows);
    assert!(d.badge.as_deref().is_some_and(|t| t.contains("cached")), "badge says so: {:?}", d.badge);
    let frozen = d.price("BTC/USD").unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let restarted = Instant::now();
    let relay = Relay::start_on_port(port, &relay_args(&dist));
    let listening = restarted.elapsed();
    wait_dash(&b, "live again", Duration::from_secs(20), |d| d.is("live")).await;
    let reconnect = restarted.elapsed() - listening;
    let ticked = wait_tick(&b, "BTC/USD", frozen, Duration::from_secs(10)).await;
    let first_tick = restarted.elapsed() - listening;
    println!(
        "METRIC reconnect_after_restart_ms={} first_tick_after_restart_ms={} (relay took {} ms to listen)",
        reconnect.as_millis(),
        first_tick.as_millis(),
        listening.as_millis()
    );
    assert_ne!(ticked, frozen);

    let marker: Option<u32> = b.eval("return window.__hamsterE2e ?? null;", vec![]).await;
    assert_eq!(marker, Some(42), "the page was not reloaded");
    let d = wait_dash(&b, "all rows fresh", Duration::from_secs(10), |d| {
        d.all_priced(&DEFAULT_SYMBOLS) && d.rows.iter().all(|r| !r.stale)
    })
    .await;
    assert_eq!(d.stats.get("reconnects").map(String::as_str), Some("1"), "stats: {:?}", d.stats);
    assert!(d.log.iter().any(|l| l.contains("reconnected")), "log: {:?}", d.log);
    drop(relay);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_while_the_relay_is_down_shows_cached_quotes() {
    let _turn = SERIAL.lock().await;
    let (mut relay, b, dist) = setup().await;
    open_live(&b, &relay).await;
    // The service worker must control the page (its shell cached) and the quote cache must be written.
    b.wait_for("the service worker to control the page", Duration::from_secs(15), || async {
        let on: bool =
            b.eval("return !!(navigator.serviceWorker && navigator.serviceWorker.controller);", vec![]).await;
        on.then_some(())
    })
    .await;
    b.wait_for("quotes cached in localStorage", Duration::from_secs(10), || async {
        let n: u32 = b
            .eval(
                "const c = JSON.parse(localStorage.getItem('hamster.quotes.v1') || '{}'); \
                 return (c.quotes || []).length;",
                vec![],
            )
            .await;
        (n >= 8).then_some(())
    })
    .await;
    let port = relay.port();

    relay.kill();
    b.reload().await;
    let d = wait_dash(&b, "cached quotes after reload", Duration::from_secs(20), |d| {
        d.all_priced(&DEFAULT_SYMBOLS) && d.state.is_some()
    })
    .await;
    assert!(!d.is("live"), "the relay is down: {:?}", d.badge);
    assert!(d.rows.iter().all(|r| r.cached && r.stale), "rows are marked cached and dimmed: {:?}", d.rows);
    assert!(d.log.iter().any(|l| l.contains("restored 8 cached quotes")), "log: {:?}", d.log);
    wait_dash(&b, "the badge to say offline", Duration::from_secs(10), |d| d.is("offline")).await;

    // And it comes back by itself.
    let relay = Relay::start_on_port(port, &relay_args(&dist));
    let d = wait_dash(&b, "live with fresh rows", Duration::from_secs(20), |d| {
        d.is("live") && d.all_priced(&DEFAULT_SYMBOLS) && d.rows.iter().all(|r| !r.cached)
    })
    .await;
    assert!(d.rows.iter().all(|r| !r.stale));
    drop(relay);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_notices_a_frozen_relay() {
    let _turn = SERIAL.lock().await;
    let dist = dist_dir().to_string_lossy().into_owned();
    // A frozen process keeps its TCP connections open, so only the heartbeat can tell: 1 s heartbeat, so the
    // dashboard should give up after ~2 s of silence.
    let relay = Relay::start(&["--static-dir", &dist, "--heartbeat-ms", "1000"]);
    let b = Browser::launch(1360, 900).await;
    open_live(&b, &relay).await;

    relay.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    let d = wait_dash(&b, "the heartbeat to declare the socket dead", Duration::from_secs(6), |d| !d.is("live")).await;
    let detected = frozen.elapsed();
    println!("METRIC frozen_relay_detected_ms={}", detected.as_millis());
    assert!(detected >= Duration::from_millis(1500), "not before two heartbeats of silence: {detected:?}");
    assert!(d.log.iter().any(|l| l.contains("no frame for")), "the reason is logged: {:?}", d.log);
    assert!(d.all_priced(&DEFAULT_SYMBOLS), "prices stay on screen: {:?}", d.rows);

    relay.signal(libc::SIGCONT);
    let resumed = Instant::now();
    wait_dash(&b, "live again after the relay resumes", Duration::from_secs(25), |d| d.is("live")).await;
    println!("METRIC live_after_resume_ms={}", resumed.elapsed().as_millis());
    b.close().await;
}

/// A relay with client auth: the page's `?token=` gets it live, and leaves the address bar; without a token the
/// dashboard says it is not connected instead of showing prices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_page_url_unlocks_an_authenticated_relay() {
    let _turn = SERIAL.lock().await;
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start_with_env(0, &relay_args(&dist), &[("AUTH_TOKENS", "dash-token-1")]);
    let b = Browser::launch(1360, 900).await;

    b.goto(&relay.http_url()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = wait_dash(&b, "the dashboard rendered", Duration::from_secs(15), |d| !d.rows.is_empty()).await;
    assert!(!d.is("live"), "no token, yet live: {d:#?}");
    assert!(d.rows.iter().all(|r| r.price_value().is_none() || r.cached), "prices without a token: {:?}", d.rows);

    b.goto(&format!("{}/?token=dash-token-1", relay.http_url())).await;
    wait_dash(&b, "live with prices using the token", Duration::from_secs(20), |d| {
        d.is("live") && d.all_priced(&DEFAULT_SYMBOLS)
    })
    .await;
    let url: String = b.eval("return location.href;", vec![]).await;
    assert!(!url.contains("dash-token-1"), "the token stayed in the address bar: {url}");
    // The token is kept for the tab's session: a reload stays authenticated.
    b.reload().await;
    wait_dash(&b, "live again after a reload", Duration::from_secs(20), |d| d.is("live")).await;
    b.close().await;
    relay.stop();
}

/// The replay bar as it is now.
const REPLAY_JS: &str = r#"
const badge = document.querySelector('[data-testid="replay-badge"]');
const played = document.querySelector('[data-testid="replay-played"]');
return {
    badge: badge ? badge.textContent.trim() : null,
    playable: !!document.querySelector('[data-testid="replay-play"]'),
    played: played ? Number(played.dataset.played) : null,
    rows: [...document.querySelectorAll('[data-testid="replay-row"] td:first-child')].map(td => td.textContent.trim()),
};
"#;

#[derive(Debug, Clone, Deserialize)]
struct ReplayView {
    badge: Option<String>,
    playable: bool,
    played: Option<u64>,
    rows: Vec<String>,
}

async fn wait_replay(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&ReplayView) -> bool) -> ReplayView {
    b.wait_for(what, limit, || async {
        let view: ReplayView = serde_json::from_value(b.client().execute(REPLAY_JS, vec![]).await.ok()?).ok()?;
        pred(&view).then_some(view)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_replays_from_the_bar_while_live_rows_keep_ticking() {
    let _turn = SERIAL.lock().await;
    let (relay, b, _) = setup().await;
    open_live(&b, &relay).await;
    // The relay records what the page watches; a few seconds make a session worth replaying.
    tokio::time::sleep(Duration::from_secs(8)).await;

    b.click("[data-testid=replay-open]").await;
    wait_replay(&b, "recordings loaded", Duration::from_secs(10), |v| v.playable).await;
    b.click(r#"[data-testid="replay-speed-1×"]"#).await;
    b.click("[data-testid=replay-play]").await;
    let v = wait_replay(&b, "replayed rows under a REPLAY badge", Duration::from_secs(10), |v| {
        v.badge.as_deref().is_some_and(|t| t.starts_with("REPLAY 1×")) && !v.rows.is_empty()
    })
    .await;
    assert!(v.rows.iter().all(|s| DEFAULT_SYMBOLS.contains(&s.as_str())), "replays the watched symbols: {:?}", v.rows);

    // Live rows are untouched: still eight, none of them replayed, and they keep ticking.
    let d = wait_dash(&b, "live rows", Duration::from_secs(5), |d| d.is("live")).await;
    assert_eq!(d.rows.len(), 8, "{:?}", d.symbols());
    assert!(d.symbols().iter().all(|s| !s.starts_with("replay:")));
    let btc = d.price("BTC/USD").unwrap_or(0.0);
    wait_tick(&b, "BTC/USD", btc, Duration::from_secs(10)).await;

    b.screenshot(&artifact_dir().join("replay.png")).await;

    // Pause holds the position; resume moves on.
    b.click("[data-testid=replay-play]").await;
    let paused =
        wait_replay(&b, "paused", Duration::from_secs(5), |v| v.badge.as_deref().is_some_and(|t| t.contains("paused")))
            .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = wait_replay(&b, "still paused", Duration::from_secs(2), |_| true).await;
    assert_eq!(still.played, paused.played, "nothing plays while paused");
    b.click("[data-testid=replay-play]").await;
    wait_replay(&b, "playing again", Duration::from_secs(10), |v| v.played > paused.played).await;

    b.click("[data-testid=replay-stop]").await;
    wait_replay(&b, "the badge gone after stop", Duration::from_secs(5), |v| v.badge.is_none()).await;
    b.close().await;
}
