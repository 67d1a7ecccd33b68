//! Twelve Data's REST `/price` fallback: while the stream is down, the wanted symbols are polled within a
//! per-minute credit budget (`docs/providers/twelvedata.md`).

use std::collections::HashMap;
use std::time::Duration;

use hamster_shared::{ProviderState, Quote, Symbol};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::NAME;
use crate::clock::now_ms;
use crate::providers::stream::Link;
use crate::providers::EventSink;
use crate::secret::Secret;

/// Polls `GET /price` for the wanted symbols while the stream is down, within a per-minute credit budget.
pub(super) struct RestFallback {
    base: String,
    key: Secret,
    credits_per_min: u32,
}

impl RestFallback {
    pub(super) fn new(base: &str, key: Secret, credits_per_min: u32) -> RestFallback {
        RestFallback { base: base.trim_end_matches('/').to_owned(), key, credits_per_min }
    }

    pub(super) async fn run(self, mut link: watch::Receiver<Link>, events: EventSink, stop: CancellationToken) {
        if self.credits_per_min == 0 {
            return;
        }
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "twelvedata REST fallback disabled: no HTTP client");
                return;
            }
        };
        // Round-robin position, so a budget smaller than the watchlist still refreshes every symbol in turn.
        let mut cursor = 0usize;
        loop {
            let state = link.borrow_and_update().clone();
            if state.live || state.desired.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = link.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let budget = (self.credits_per_min as usize).min(state.desired.len()).max(1);
            let batch: Vec<String> =
                (0..budget).map(|i| state.desired[(cursor + i) % state.desired.len()].clone()).collect();
            cursor = (cursor + budget) % state.desired.len();
            match self.poll(&client, &batch).await {
                Ok(quotes) if !quotes.is_empty() => {
                    events.quotes(quotes).await;
                    events.status(ProviderState::Degraded, Some("stream down; polling REST /price".into())).await;
                }
                Ok(_) => {}
                Err(reason) => tracing::warn!(%reason, "twelvedata REST fallback poll failed"),
            }
            // Spend `budget` credits per poll, so poll every budget/credits_per_min minutes.
            let wait = Duration::from_secs_f64(60.0 * budget as f64 / f64::from(self.credits_per_min));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                // Stream back: stop polling at once.
                _ = link.wait_for(|l| l.live) => {}
            }
        }
    }

    async fn poll(&self, client: &reqwest::Client, symbols: &[String]) -> Result<Vec<Quote>, String> {
        let url = format!("{}/price", self.base);
        let response = client
            .get(url)
            .query(&[("symbol", symbols.join(",")), ("apikey", self.key.expose().to_owned())])
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        let body: serde_json::Value = response.json().await.map_err(|e| format!("bad body: {}", e.without_url()))?;
        let ts = now_ms();
        parse_prices(&body, symbols, ts)
    }
}

/// Reads a `/price` body: `{"price":"1.0"}` for one symbol, `{"AAPL":{"price":"1.0"},…}` for several, and
/// `{"code":429,"message":…,"status":"error"}` (sometimes with HTTP 200) for errors, whole or per symbol.
pub(super) fn parse_prices(body: &serde_json::Value, symbols: &[String], ts: i64) -> Result<Vec<Quote>, String> {
    if body.get("status").and_then(|s| s.as_str()) == Some("error") {
        let code = body.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return Err(format!("Twelve Data error {code}: {message}"));
    }
    let price_of = |v: &serde_json::Value| -> Option<f64> {
        v.get("price")?.as_str()?.parse::<f64>().ok().filter(|p| p.is_finite())
    };
    let mut found: HashMap<&str, f64> = HashMap::new();
    if let [only] = symbols {
        if let Some(p) = price_of(body) {
            found.insert(only, p);
        }
    }
    for s in symbols {
        if let Some(p) = body.get(s.as_str()).and_then(price_of) {
            found.insert(s, p);
        }
    }
    Ok(symbols
        .iter()
        .filter_map(|s| {
            let price = *found.get(s.as_str())?;
            Some(Quote { seq: None, recv: None,
                symbol: Symbol::parse(s).ok()?,
                price,
                // REST /price carries no event time; the response time is the best bound we have.
                ts,
                provider: NAME.to_owned(),
                bid: None,
                ask: None,
                volume: None,
                change: None,
                change_pct: None,
            })
        })
        .collect())
}

