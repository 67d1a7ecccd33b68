//! The relay's REST endpoints as the dashboard uses them: `GET /api/quotes` (the fallback while the socket is
//! down), `GET /api/history/{symbol}` (sparkline seeds), and `GET /api/orders?status=open` and `GET /api/fills`
//! (what the account stream does not repeat: orders opened earlier, the ledger). Every request has a deadline and is aborted when
//! it passes, so a hung relay cannot pile up requests. URL building is pure and tested.
//!
//! The calls go through an [`Api`]: where the relay is and the token it wants, built once by the connection
//! service when it resolves the endpoints and handed to every caller, so no REST call can go out before the
//! token is known or with a different one.

use std::fmt::Write as _;

use futures::future::{select, Either};
use gloo_net::http::Request;
use gloo_timers::future::TimeoutFuture;
use hamster_shared::api::{
    ApiError, BrokerStatus, HistoryResponse, QuotesResponse, RecordingsResponse, SymbolsResponse, Timeframe,
};
use hamster_shared::broker::{Fill, Order};
use hamster_shared::{Symbol, MAX_SYMBOLS_PER_REQUEST};
use serde::de::DeserializeOwned;

use crate::json_object::json_object;

/// Deadline for one REST call, body included.
const REQUEST_TIMEOUT_MS: u32 = 5_000;

/// Percent-encodes everything but RFC 3986 unreserved characters, so a symbol is one path segment or query
/// item whatever it contains (`BTC/USD` → `BTC%2FUSD`, `EURUSD=X` → `EURUSD%3DX`).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `GET /api/quotes?symbols=A,B` for at most [`MAX_SYMBOLS_PER_REQUEST`] symbols.
fn quotes_url(http_base: &str, symbols: &[Symbol]) -> String {
    let list: Vec<String> = symbols.iter().map(|s| encode_component(s.as_str())).collect();
    format!("{http_base}/api/quotes?symbols={}", list.join(","))
}

/// `GET /api/history/{symbol}` with the symbol as one encoded path segment.
fn history_url(http_base: &str, symbol: &Symbol) -> String {
    format!("{http_base}/api/history/{}", encode_component(symbol.as_str()))
}

/// `GET /api/history/{symbol}?tf=&limit=`: candles of one timeframe.
fn candles_url(http_base: &str, symbol: &Symbol, tf: Timeframe, limit: usize) -> String {
    format!("{}?tf={tf}&limit={limit}", history_url(http_base, symbol))
}

/// What the page reads of `GET /api/status` (`hamster_shared::api::StatusResponse`): the broker. The rest of the
/// body is skipped unread: a reader of the whole status (providers, cluster, store, …) was about 12 KB of the
/// wasm for this one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BrokerOfStatus {
    pub(crate) broker: Option<BrokerStatus>,
}

json_object!(BrokerOfStatus, "the relay's status", required {} optional { broker: Option<BrokerStatus> });

/// A failed REST call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestError {
    /// The relay answered (with an error status or an unreadable body), as opposed to not being reachable.
    pub(crate) reachable: bool,
    pub(crate) message: String,
}

impl std::fmt::Display for RestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The relay's REST API as this page reaches it. Cheap to clone; compares equal while it points at the same
/// relay with the same token. Public only because [`crate::events::ConnEvent`] carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Api {
    /// Prefix for REST paths (no trailing `/`); `/api/...` is appended.
    base: String,
    /// Sent as `Authorization: Bearer` when the relay wants one (see [`super::config::load_token`]).
    token: Option<String>,
}

/// Leaves the token out, so a logged model or event cannot leak it.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

impl Api {
    pub(crate) fn new(base: String, token: Option<String>) -> Api {
        Api { base, token }
    }

    /// Current values for `symbols`, in as many requests as the relay's per-request limit needs.
    pub(crate) async fn quotes(&self, symbols: &[Symbol]) -> Result<QuotesResponse, RestError> {
        let mut all = QuotesResponse { quotes: vec![], pending: vec![] };
        for chunk in symbols.chunks(MAX_SYMBOLS_PER_REQUEST) {
            let part: QuotesResponse = get_json(&quotes_url(&self.base, chunk), self.token.as_deref()).await?;
            all.quotes.extend(part.quotes);
            all.pending.extend(part.pending);
        }
        Ok(all)
    }

    /// The account's working orders (the account stream reports changes only, not what was open before).
    pub(crate) async fn open_orders(&self) -> Result<Vec<Order>, RestError> {
        get_json(&format!("{}/api/orders?status=open", self.base), self.token.as_deref()).await
    }

    /// Instruments matching what the user is typing, best first (search as you type).
    pub(crate) async fn symbols(&self, query: &str, limit: usize) -> Result<SymbolsResponse, RestError> {
        let url = format!("{}/api/symbols?q={}&limit={limit}", self.base, encode_component(query));
        get_json(&url, self.token.as_deref()).await
    }

    /// The relay's state, for which broker takes this page's orders.
    pub(crate) async fn status(&self) -> Result<BrokerOfStatus, RestError> {
        get_json(&format!("{}/api/status", self.base), self.token.as_deref()).await
    }

    /// The account's ledger of fills, newest first.
    pub(crate) async fn fills(&self) -> Result<Vec<Fill>, RestError> {
        get_json(&format!("{}/api/fills", self.base), self.token.as_deref()).await
    }

    /// What the relay's store holds, for the replay bar.
    pub(crate) async fn recordings(&self) -> Result<RecordingsResponse, RestError> {
        get_json(&format!("{}/api/recordings", self.base), self.token.as_deref()).await
    }

    /// Recent ticks of one symbol.
    pub(crate) async fn history(&self, symbol: &Symbol) -> Result<HistoryResponse, RestError> {
        get_json(&history_url(&self.base, symbol), self.token.as_deref()).await
    }

    /// The newest `limit` candles of `tf` of one symbol (for the detail chart).
    pub(crate) async fn candles(
        &self,
        symbol: &Symbol,
        tf: Timeframe,
        limit: usize,
    ) -> Result<HistoryResponse, RestError> {
        get_json(&candles_url(&self.base, symbol, tf, limit), self.token.as_deref()).await
    }
}

/// GET and decode JSON, turning HTTP errors into the relay's `ApiError` message when it sent one. Only the
/// decoding is generic: the request itself is one function ([`get_body`]) for every body type, not one copy each.
async fn get_json<T: DeserializeOwned>(url: &str, token: Option<&str>) -> Result<T, RestError> {
    let text = get_body(url, token, REQUEST_TIMEOUT_MS).await?;
    serde_json::from_str(&text).map_err(|e| RestError { reachable: true, message: format!("unreadable response: {e}") })
}

/// GET a successful response's body as text within `timeout_ms`; an error response becomes its `ApiError`
/// message. Also how the page fetches `config.json` (one request function in the wasm, not two).
pub(crate) async fn get_body(url: &str, token: Option<&str>, timeout_ms: u32) -> Result<String, RestError> {
    let unreachable = |message: String| RestError { reachable: false, message };
    let answered = |message: String| RestError { reachable: true, message };
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(web_sys::AbortController::signal);
    let work = async {
        let mut request = Request::get(url);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = request
            .abort_signal(signal.as_ref())
            .send()
            .await
            .map_err(|e| unreachable(format!("request failed: {e}")))?;
        if !response.ok() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(answered(match serde_json::from_str::<ApiError>(&body) {
                Ok(err) => format!("HTTP {status} {}: {}", err.code.as_str(), err.message),
                Err(_) => format!("HTTP {status}"),
            }));
        }
        response.text().await.map_err(|e| answered(format!("unreadable response: {e}")))
    };
    let timeout = TimeoutFuture::new(timeout_ms);
    futures::pin_mut!(work);
    match select(work, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => {
            if let Some(c) = controller {
                c.abort();
            }
            Err(unreachable(format!("timed out after {} s", timeout_ms / 1000)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid test symbol")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_status_is_read_for_its_broker_only() {
        let status = r#"{"server":"hamster-relay/0.1.0","protocol":2,"uptime_s":5,
            "providers":[{"name":"sim","state":"live","since":1,"subscriptions":3,"messages_total":9}],
            "clients":1,"topics":2,"upstream_subscriptions":3,"messages_in_per_s":1.5,"messages_out_per_s":2.0,
            "messages_in_total":10,"messages_out_total":20,"conflated_total":0,
            "store":{"recording":true,"recorded_total":1,"dropped_total":0,"bytes":4096},
            "broker":{"name":"paper","live_money":false,"state":"live","since":7},
            "cluster":{"node":"a","redis_up":true,"nodes":["a"],"owners":{}}}"#;
        let read: BrokerOfStatus = serde_json::from_str(status).expect("reads");
        let broker = read.broker.expect("a broker");
        assert_eq!((broker.name.as_str(), broker.live_money, broker.since), ("paper", false, 7));
        assert_eq!(serde_json::from_str::<BrokerOfStatus>(r#"{"server":"x"}"#).ok().map(|s| s.broker), Some(None));
        assert!(serde_json::from_str::<BrokerOfStatus>(r#"{"broker":{"name":"paper"}}"#).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn urls_encode_symbols() {
        assert_eq!(
            quotes_url("http://h:1", &[sym("BTC/USD"), sym("AAPL"), sym("sim:EURUSD=X")]),
            "http://h:1/api/quotes?symbols=BTC%2FUSD,AAPL,sim%3AEURUSD%3DX"
        );
        assert_eq!(history_url("", &sym("eur/usd")), "/api/history/EUR%2FUSD");
        assert_eq!(candles_url("", &sym("BTC/USD"), Timeframe::H1, 500), "/api/history/BTC%2FUSD?tf=1h&limit=500");
        assert_eq!(encode_component("BRK.B-x_~"), "BRK.B-x_~");
    }
}
