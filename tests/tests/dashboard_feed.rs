//! The live event feed end to end in headless Chromium against the real relay, whose simulator publishes
//! options-flow alerts and news in Unusual Whales' payload shapes: the feed shows them in columns (ticker,
//! call/put, strike, expiry, premium) newest first, holds still while the real pointer (WebDriver actions) is over
//! it and counts what arrived meanwhile, and moves again when the pointer leaves.

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::Locator;
use hamster_tests::browser::{dist_dir, Browser};
use hamster_tests::Relay;
use serde::Deserialize;

const VIEW_JS: &str = r#"
const feed = document.querySelector('[data-testid="event-feed"]');
const rows = feed ? [...feed.querySelectorAll('tr')] : [];
const newButton = document.querySelector('[data-testid="feed-new"]');
return {
    live: (document.querySelector('[data-testid="connection-status"]') || {dataset: {}}).dataset.state === 'live',
    paused: feed ? feed.dataset.paused === 'true' : false,
    flow: rows.filter(r => r.dataset.kind === 'flow').map(r => [...r.querySelectorAll('td')].map(td => td.textContent.trim())),
    news: rows.filter(r => r.dataset.kind === 'news').length,
    first: rows.length ? rows[0].textContent : '',
    held: newButton ? newButton.textContent.trim() : '',
};
"#;

#[derive(Debug, Deserialize)]
struct View {
    live: bool,
    paused: bool,
    flow: Vec<Vec<String>>,
    news: usize,
    first: String,
    held: String,
}

async fn view(b: &Browser) -> Option<View> {
    serde_json::from_value(b.client().execute(VIEW_JS, vec![]).await.ok()?).ok()
}

async fn wait_view(b: &Browser, what: &str, limit: Duration, pred: impl Fn(&View) -> bool) -> View {
    b.wait_for(what, limit, || async { view(b).await.filter(|v| pred(v)) }).await
}

async fn pointer_to(b: &Browser, css: &str) {
    let element = b.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
    let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element,
        duration: Some(Duration::from_millis(50)),
        x: 0.0,
        y: 0.0,
    });
    b.client().perform_actions(mouse).await.unwrap_or_else(|e| panic!("move to {css}: {e}"));
}

#[tokio::test]
async fn simulator_flow_alerts_show_in_columns_and_the_feed_holds_still_under_the_pointer() {
    let dist = dist_dir().to_string_lossy().into_owned();
    let relay = Relay::start(&["--static-dir", &dist, "--sim-events-per-min", "600"]);
    let b = Browser::launch(1360, 1400).await;
    b.goto(&relay.http_url()).await;
    wait_view(&b, "live", Duration::from_secs(30), |v| v.live).await;
    b.click("[data-testid=\"feed-watch\"]").await;
    let v = wait_view(&b, "flow alerts and news in the feed", Duration::from_secs(30), |v| {
        v.flow.len() >= 3 && v.news >= 1
    })
    .await;
    // time, ticker, C/P, strike, expiry, premium, size, side
    let cols = &v.flow[0];
    assert_eq!(cols.len(), 8, "{cols:?}");
    assert!(cols[1].chars().all(|c| c.is_ascii_uppercase()) && !cols[1].is_empty(), "ticker: {cols:?}");
    assert!(cols[2] == "C" || cols[2] == "P", "call/put: {cols:?}");
    assert!(cols[3].parse::<f64>().is_ok_and(|s| s > 0.0), "strike: {cols:?}");
    assert!(cols[4].len() == 10 && cols[4].starts_with("20"), "expiry: {cols:?}");
    assert!(cols[5].starts_with('$'), "premium: {cols:?}");

    pointer_to(&b, "[data-testid=\"event-feed\"]").await;
    let held = wait_view(&b, "the feed paused", Duration::from_secs(5), |v| v.paused).await;
    let v = wait_view(&b, "events held while paused", Duration::from_secs(15), |v| v.held.ends_with(" new")).await;
    assert_eq!(v.first, held.first, "the list stood still under the pointer");
    let waiting: usize = v.held.trim_end_matches(" new").parse().expect("a count");
    assert!(waiting >= 1, "{}", v.held);

    pointer_to(&b, "h1").await;
    let moved =
        wait_view(&b, "the feed moving again", Duration::from_secs(10), |v| !v.paused && v.first != held.first).await;
    assert!(moved.held.is_empty(), "nothing left waiting: {}", moved.held);
    b.close().await;
}
