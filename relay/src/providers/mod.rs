//! Upstream providers: one adapter folder per data source, all behind the [`Provider`] trait.
//!
//! A provider owns exactly one upstream connection (or, for the simulator, a price generator). It receives
//! subscription *diffs* on a command channel — the relay has already reference-counted them, so it is asked for
//! an instrument once however many clients want it — and reports normalised quotes, state changes and per-symbol
//! rejections through its [`EventSink`]. Reconnecting, resubscribing and keep-alives are the adapter's business;
//! everything after the sink (caching, fan-out, clients) is not.
//!
//! Instruments are canonical tickers without a provider prefix (`BTC/USD`, `AAPL`); each adapter maps them to
//! and from its own wire spelling.
//!
//! * [`registry`] — the adapters as data: names, keys, flags, build functions; the list is the `adapters!` line.
//! * [`stream`] — the one driver every WebSocket adapter runs on, and the [`stream::Wire`] contract adapters fill.
//! * [`backfill`] — when and how often an adapter's history endpoint is asked for a newly wanted instrument's past.
//! * one folder per adapter: `simulator` (the default, no key), `twelvedata`, `binance`, `alpaca`, `finnhub`,
//!   `unusualwhales`; each has a `docs/providers/<name>.md` page with the protocol facts it relies on.

mod backfill;
mod registry;
pub(crate) mod stream;
#[cfg(test)]
mod testing;
mod unconfigured;

pub(crate) use registry::{Adapter, AdapterParser, ProviderArgs};

/// Declares the adapter modules and lists their [`Adapter`]s, in the order `--help` shows them.
macro_rules! adapters {
    ($($module:ident),* $(,)?) => {
        $(mod $module;)*
        /// Every adapter the relay can run.
        pub(crate) const ADAPTERS: &[&Adapter] = &[$(&$module::ADAPTER),*];
    };
}

// One line per adapter: its folder exports `ADAPTER`.
adapters! {
    simulator,
    twelvedata,
    binance,
    alpaca,
    finnhub,
    unusualwhales,
}

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use hamster_shared::api::Candle;
use hamster_shared::{ErrorCode, ProviderState, Quote, Symbol};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::hub::{ChannelEvent, HubEvent};
use crate::secret;

/// Parses an RFC 3339 timestamp (`2021-02-22T15:51:45.335689322Z`, `…+02:00`) to milliseconds since the epoch,
/// truncating finer digits; `None` for anything else. Several providers stamp events this way.
pub(crate) fn rfc3339_ms(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// A change to the set of instruments a provider should stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderCommand {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// A market-data source.
pub(crate) trait Provider: Send + 'static {
    /// Stable lower-case name: used in `name:SYMBOL` prefixes, `status` messages and `Quote.provider`.
    fn name(&self) -> &'static str;

    /// Runs until `stop` fires: connects, applies `commands`, and reports through `events`. Must never return
    /// early on upstream errors; it reconnects instead and reports its state.
    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()>;

    /// Where this provider's instrument list comes from, if it has one ([`crate::catalog`]).
    fn catalog(&self) -> Option<crate::catalog::CatalogSource> {
        None
    }
}

/// Which client-facing symbols each upstream instrument feeds. `BTC/USD` and `binance:BTC/USD` are two symbols
/// for clients but one instrument upstream.
pub(crate) type InstrumentKeys = Arc<RwLock<HashMap<String, Vec<Symbol>>>>;

/// One thing a provider reports, at instrument level (before instruments are mapped to the symbols clients
/// asked for). This is the provider's whole vocabulary: a cluster carries exactly these between nodes, so a
/// node's hub is fed the same way whether the provider runs here or on another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum Report {
    /// Quotes whose `symbol` is the instrument.
    Quotes { quotes: Vec<Quote> },
    /// A non-price message on a channel instrument.
    Event { instrument: String, payload: serde_json::Value, ts: i64 },
    /// The connection's state changed.
    Status { state: ProviderState, detail: Option<String> },
    /// Upstream refused an instrument after it was accepted.
    Reject { instrument: String, code: ErrorCode, message: String },
    /// One-minute candles of an instrument from before it was subscribed.
    History { instrument: String, candles: Vec<Candle> },
}

/// Something that sees every report of a running provider before it is delivered here, and decides whether the
/// provider may connect upstream at all. Cluster mode uses it on the node that owns a provider: reports go to
/// the other nodes, and the connection is allowed only while this node holds the provider's lease.
pub(crate) trait Tee: Send + Sync + std::fmt::Debug {
    fn forward(&self, report: &Report);
    /// Checked before every (re)connect.
    fn may_connect(&self) -> bool;
}

/// Where a provider sends what it learns. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    provider: &'static str,
    keys: InstrumentKeys,
    hub: mpsc::Sender<HubEvent>,
    tee: Option<Arc<dyn Tee>>,
}

impl EventSink {
    pub(crate) fn new(provider: &'static str, keys: InstrumentKeys, hub: mpsc::Sender<HubEvent>) -> EventSink {
        EventSink { provider, keys, hub, tee: None }
    }

    /// The same sink, with every report also shown to `tee`.
    pub(crate) fn with_tee(&self, tee: Arc<dyn Tee>) -> EventSink {
        EventSink { tee: Some(tee), ..self.clone() }
    }

    /// The provider's name, for logs.
    pub(crate) fn provider(&self) -> &'static str {
        self.provider
    }

    /// Whether the provider may open its upstream connection now (always, outside a cluster).
    pub(crate) fn may_connect(&self) -> bool {
        self.tee.as_ref().is_none_or(|t| t.may_connect())
    }

    /// The instruments someone here subscribes to.
    pub(crate) fn instruments(&self) -> Vec<String> {
        self.keys.read().iter().filter(|(_, s)| !s.is_empty()).map(|(i, _)| i.clone()).collect()
    }

    /// Delivers one report (what a cluster node received from the provider's owner).
    pub(crate) async fn report(&self, report: Report) {
        match report {
            Report::Quotes { quotes } => self.quotes(quotes).await,
            Report::Event { instrument, payload, ts } => self.event(&instrument, payload, ts).await,
            Report::Status { state, detail } => self.status(state, detail).await,
            Report::Reject { instrument, code, message } => self.reject(&instrument, code, message).await,
            Report::History { instrument, candles } => self.history(&instrument, candles).await,
        }
    }

    fn tee(&self, report: impl FnOnce() -> Report) {
        if let Some(tee) = &self.tee {
            tee.forward(&report());
        }
    }

    /// Delivers quotes whose `symbol` is the instrument. Quotes for instruments nobody subscribes to (late
    /// arrivals after an unsubscribe) are dropped here.
    pub(crate) async fn quotes(&self, quotes: Vec<Quote>) {
        self.tee(|| Report::Quotes { quotes: quotes.clone() });
        let mapped: Vec<Quote> = {
            let keys = self.keys.read();
            let mut mapped = Vec::with_capacity(quotes.len());
            for quote in quotes {
                match keys.get(quote.symbol.as_str()).map(Vec::as_slice) {
                    None | Some([]) => {}
                    Some([only]) => mapped.push(Quote { symbol: only.clone(), ..quote }),
                    Some(many) => mapped.extend(many.iter().map(|s| Quote { symbol: s.clone(), ..quote.clone() })),
                }
            }
            mapped
        };
        if !mapped.is_empty() {
            self.send(HubEvent::Quotes(mapped)).await;
        }
    }

    /// Delivers a non-price message on `instrument` (a channel such as `FLOW-ALERTS`) to its subscribers.
    pub(crate) async fn event(&self, instrument: &str, payload: serde_json::Value, ts: i64) {
        let payload = secret::redact_json(payload);
        self.tee(|| Report::Event { instrument: instrument.to_owned(), payload: payload.clone(), ts });
        let symbols = self.keys.read().get(instrument).cloned().unwrap_or_default();
        if symbols.is_empty() {
            return;
        }
        let events =
            symbols.into_iter().map(|channel| ChannelEvent { channel, payload: payload.clone(), ts }).collect();
        self.send(HubEvent::Events(events)).await;
    }

    /// Reports a connection state change. The detail often quotes the upstream (a close reason, an error
    /// message), so it is redacted: an upstream could echo our key back.
    pub(crate) async fn status(&self, state: ProviderState, detail: Option<String>) {
        let detail = detail.map(|d| secret::redact(&d).into_owned());
        self.tee(|| Report::Status { state, detail: detail.clone() });
        tracing::info!(provider = self.provider, ?state, detail = detail.as_deref().unwrap_or(""), "provider state");
        self.send(HubEvent::Status { provider: self.provider.to_owned(), state, detail, since: now_ms() }).await;
    }

    /// Reports that upstream refused `instrument`; every client symbol it fed is rejected.
    pub(crate) async fn reject(&self, instrument: &str, code: ErrorCode, message: String) {
        let message = secret::redact(&message).into_owned();
        self.tee(|| Report::Reject { instrument: instrument.to_owned(), code, message: message.clone() });
        let symbols = self.keys.read().get(instrument).cloned().unwrap_or_default();
        for symbol in symbols {
            self.send(HubEvent::Rejected { symbol, code, message: message.clone() }).await;
        }
    }

    /// Hands over one-minute candles of `instrument` from before it was subscribed, so a chart opened now has a
    /// past; the hub keeps only those older than what it saw live.
    pub(crate) async fn history(&self, instrument: &str, candles: Vec<Candle>) {
        if candles.is_empty() {
            return;
        }
        self.tee(|| Report::History { instrument: instrument.to_owned(), candles: candles.clone() });
        let symbols = self.keys.read().get(instrument).cloned().unwrap_or_default();
        for symbol in symbols {
            self.send(HubEvent::History { symbol, candles: candles.clone() }).await;
        }
    }

    async fn send(&self, event: HubEvent) {
        // A closed hub means the relay is shutting down; there is nobody left to tell.
        let _ = self.hub.send(event).await;
    }
}
