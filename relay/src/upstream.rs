//! The upstream router: turns the hub's demand into provider subscriptions, one upstream connection per provider.
//!
//! It decides which provider serves a symbol (an explicit `provider:` prefix, else the first matching [`Routes`]
//! rule, else the default provider),
//! keeps per provider the set of instruments subscribed upstream and which client-facing symbols each feeds, and
//! sends each provider only the *diffs*. Demand changes are drained in batches, so a burst of subscriptions
//! becomes one subscribe command per provider, and a quick remove-then-add of the same instrument sends nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hamster_shared::{AssetClass, ErrorCode, ProviderState, Symbol};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use hamster_shared::api::CatalogInfo;

use crate::catalog::{Catalog, CatalogSlot};
use crate::clock::now_ms;
use crate::cluster::Cluster;
use crate::hub::{Demand, HubEvent};
use crate::metrics::Metrics;
use crate::providers::{EventSink, InstrumentKeys, Provider, ProviderCommand};

/// Where a symbol is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) provider: &'static str,
    /// The canonical ticker the provider is asked for.
    pub(crate) instrument: String,
}

/// Why a symbol cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RouteError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// For `unknown_symbol`: symbols to try instead, best first.
    pub(crate) suggestions: Vec<String>,
}

/// One side of a routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Class(AssetClass),
    Any,
    Exact(String),
    /// `prefix*suffix`
    Glob(String, String),
}

impl Pattern {
    fn matches(&self, ticker: &str) -> bool {
        match self {
            Pattern::Class(class) => AssetClass::of(ticker) == *class,
            Pattern::Any => true,
            Pattern::Exact(t) => t == ticker,
            Pattern::Glob(pre, post) => {
                ticker.len() >= pre.len() + post.len()
                    && ticker.starts_with(pre.as_str())
                    && ticker.ends_with(post.as_str())
            }
        }
    }
}

/// Ordered `pattern=provider` rules; the first match wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    rules: Vec<(Pattern, String)>,
}

impl Routes {
    /// Parses rules such as `crypto=binance`, `*/USDT=binance`, `AAPL=alpaca`, `*=twelvedata`.
    pub(crate) fn parse(rules: &[String]) -> anyhow::Result<Routes> {
        let mut parsed = Vec::new();
        for rule in rules.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
            let (pattern, provider) = rule
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("route {rule:?} must look like pattern=provider"))?;
            let pattern = match pattern.trim() {
                "crypto" => Pattern::Class(AssetClass::Crypto),
                "forex" => Pattern::Class(AssetClass::Forex),
                "equity" => Pattern::Class(AssetClass::Equity),
                "*" => Pattern::Any,
                p => match p.split_once('*') {
                    Some((pre, post)) if !post.contains('*') => {
                        Pattern::Glob(pre.to_ascii_uppercase(), post.to_ascii_uppercase())
                    }
                    Some(_) => anyhow::bail!("route {rule:?}: at most one '*' per pattern"),
                    None => Pattern::Exact(
                        Symbol::parse(p).map_err(|e| anyhow::anyhow!("route {rule:?}: {e}"))?.ticker().to_owned(),
                    ),
                },
            };
            parsed.push((pattern, provider.trim().to_ascii_lowercase()));
        }
        Ok(Routes { rules: parsed })
    }

    fn provider_for(&self, ticker: &str) -> Option<&str> {
        self.rules.iter().find(|(p, _)| p.matches(ticker)).map(|(_, name)| name.as_str())
    }
}

#[derive(Debug)]
struct Slot {
    commands: mpsc::UnboundedSender<ProviderCommand>,
    keys: InstrumentKeys,
    subscriptions: AtomicUsize,
    catalog: CatalogSlot,
}

/// The running providers and the routing rules. Share as `Arc<Upstream>`.
#[derive(Debug)]
pub(crate) struct Upstream {
    slots: BTreeMap<&'static str, Slot>,
    routes: Routes,
    default_provider: &'static str,
    metrics: Arc<Metrics>,
}

impl Upstream {
    /// Starts every provider on `tracker`; the first one is the default route. Their events go to `hub`.
    pub(crate) fn start(
        providers: Vec<Box<dyn Provider>>,
        routes: Routes,
        hub: mpsc::Sender<HubEvent>,
        metrics: Arc<Metrics>,
        cluster: Option<&Arc<Cluster>>,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Arc<Upstream>> {
        let default_provider =
            providers.first().map(|p| p.name()).ok_or_else(|| anyhow::anyhow!("no provider configured"))?;
        let mut slots = BTreeMap::new();
        for provider in providers {
            let name = provider.name();
            if slots.contains_key(name) {
                anyhow::bail!("provider {name} is configured twice");
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let keys = InstrumentKeys::default();
            // Announce the provider before it runs so `hello` lists it from the first connection on.
            let _ = hub.try_send(HubEvent::Status {
                provider: name.to_owned(),
                state: ProviderState::Connecting,
                detail: None,
                since: now_ms(),
            });
            let sink = EventSink::new(name, keys.clone(), hub.clone());
            let catalog = match provider.catalog() {
                Some(source) => {
                    let slot = CatalogSlot::for_source(source);
                    tracker.spawn(slot.clone().keep_fresh(name, stop.child_token()));
                    slot
                }
                None => CatalogSlot::default(),
            };
            match cluster {
                // The provider runs on whichever node holds its lease, fed the whole cluster's demand.
                Some(cluster) => tracker.spawn(cluster.clone().run_provider(provider, rx, sink, stop.child_token())),
                None => tracker.spawn(provider.run(rx, sink, stop.child_token())),
            };
            slots.insert(name, Slot { commands: tx, keys, subscriptions: AtomicUsize::new(0), catalog });
        }
        for (_, name) in &routes.rules {
            if !slots.contains_key(name.as_str()) {
                anyhow::bail!("a route names provider {name:?}, which is not in --providers/PROVIDERS");
            }
        }
        Ok(Arc::new(Upstream { slots, routes, default_provider, metrics }))
    }

    /// Which provider and instrument serve `symbol`.
    pub(crate) fn route(&self, symbol: &Symbol) -> Result<Route, RouteError> {
        let provider = match symbol.provider() {
            None => self
                .routes
                .provider_for(symbol.ticker())
                .and_then(|name| self.slots.get_key_value(name).map(|(k, _)| *k))
                .unwrap_or(self.default_provider),
            Some(name) => self.slots.get_key_value(name).map(|(k, _)| *k).ok_or_else(|| RouteError {
                code: ErrorCode::UnknownProvider,
                message: format!(
                    "no provider named {name:?} is configured here; available: {}",
                    self.slots.keys().copied().collect::<Vec<_>>().join(", ")
                ),
                suggestions: Vec::new(),
            })?,
        };
        if let Some(slot) = self.slots.get(provider) {
            slot.catalog.check(provider, symbol.ticker()).map_err(|unknown| RouteError {
                code: ErrorCode::UnknownSymbol,
                message: unknown.message,
                suggestions: unknown.suggestions.iter().map(|t| self.symbol_for(provider, t)).collect(),
            })?;
        }
        Ok(Route { provider, instrument: symbol.ticker().to_owned() })
    }

    /// How a client names `ticker` on `provider`: bare when the routes send it there anyway, else prefixed.
    pub(crate) fn symbol_for(&self, provider: &str, ticker: &str) -> String {
        let routed = self
            .routes
            .provider_for(ticker)
            .and_then(|name| self.slots.get_key_value(name).map(|(k, _)| *k))
            .unwrap_or(self.default_provider);
        if routed == provider {
            ticker.to_owned()
        } else {
            format!("{provider}:{ticker}")
        }
    }

    /// Every loaded catalog, in the relay's provider order (default first).
    pub(crate) fn catalogs(&self) -> Vec<(&'static str, Arc<Catalog>)> {
        self.names().into_iter().filter_map(|name| Some((name, self.slots.get(name)?.catalog.catalog()?))).collect()
    }

    /// Each provider's catalog state, for `/api/status`.
    pub(crate) fn catalog_info(&self, provider: &str) -> Option<CatalogInfo> {
        self.slots.get(provider)?.catalog.info()
    }

    /// Configured provider names, default first.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.slots.keys().copied().collect();
        names.sort_by_key(|n| *n != self.default_provider);
        names
    }

    /// Instruments currently subscribed upstream, per provider.
    pub(crate) fn subscriptions(&self) -> Vec<(&'static str, usize)> {
        self.slots.iter().map(|(name, slot)| (*name, slot.subscriptions.load(Ordering::Relaxed))).collect()
    }

    /// Applies demand changes until the hub's demand channel closes.
    pub(crate) async fn run(self: Arc<Self>, mut demand: mpsc::UnboundedReceiver<Demand>) {
        let mut batch = Vec::new();
        while demand.recv_many(&mut batch, 1024).await > 0 {
            self.apply(std::mem::take(&mut batch));
        }
    }

    fn apply(&self, batch: Vec<Demand>) {
        // Instruments touched by this batch, with whether they were subscribed before it, per provider.
        let mut touched: HashMap<&'static str, Vec<(String, bool)>> = HashMap::new();
        for change in batch {
            let (symbol, add) = match change {
                Demand::Add(s) => (s, true),
                Demand::Remove(s) => (s, false),
            };
            let Ok(route) = self.route(&symbol) else {
                // Command handling refuses unroutable symbols, so this is a late arrival after a config change.
                tracing::warn!(%symbol, "demand for an unroutable symbol ignored");
                continue;
            };
            let Some(slot) = self.slots.get(route.provider) else { continue };
            let mut keys = slot.keys.write();
            let was = keys.get(&route.instrument).is_some_and(|k| !k.is_empty());
            let list = touched.entry(route.provider).or_default();
            if !list.iter().any(|(i, _)| *i == route.instrument) {
                list.push((route.instrument.clone(), was));
            }
            let feeds = keys.entry(route.instrument.clone()).or_default();
            if add {
                if !feeds.contains(&symbol) {
                    feeds.push(symbol);
                }
            } else {
                feeds.retain(|s| *s != symbol);
                if feeds.is_empty() {
                    keys.remove(&route.instrument);
                }
            }
        }
        for (provider, instruments) in touched {
            let Some(slot) = self.slots.get(provider) else { continue };
            let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
            {
                let keys = slot.keys.read();
                for (instrument, was) in instruments {
                    match (was, keys.contains_key(&instrument)) {
                        (false, true) => subscribe.push(instrument),
                        (true, false) => unsubscribe.push(instrument),
                        _ => {}
                    }
                }
            }
            let count = slot.keys.read().len();
            slot.subscriptions.store(count, Ordering::Relaxed);
            if !unsubscribe.is_empty() {
                tracing::debug!(provider, ?unsubscribe, "upstream unsubscribe");
                let _ = slot.commands.send(ProviderCommand::Unsubscribe(unsubscribe));
            }
            if !subscribe.is_empty() {
                tracing::debug!(provider, ?subscribe, "upstream subscribe");
                let _ = slot.commands.send(ProviderCommand::Subscribe(subscribe));
            }
        }
        let total: usize = self.slots.values().map(|s| s.subscriptions.load(Ordering::Relaxed)).sum();
        self.metrics.upstream_subscriptions.set(total as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use futures::FutureExt;

    /// A provider that records the commands it receives.
    struct Recorder(mpsc::UnboundedSender<ProviderCommand>, &'static str);

    impl Provider for Recorder {
        fn name(&self) -> &'static str {
            self.1
        }
        fn run(
            self: Box<Self>,
            mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
            _events: EventSink,
            _stop: CancellationToken,
        ) -> BoxFuture<'static, ()> {
            async move {
                while let Some(c) = commands.recv().await {
                    let _ = self.0.send(c);
                }
            }
            .boxed()
        }
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    async fn setup() -> (Arc<Upstream>, mpsc::UnboundedReceiver<ProviderCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (hub_tx, _hub_rx) = mpsc::channel(16);
        let providers: Vec<Box<dyn Provider>> = vec![Box::new(Recorder(tx.clone(), "a")), Box::new(Recorder(tx, "b"))];
        let routes = Routes::parse(&["crypto=b".into(), "*/EUR=b".into(), "NVDA=b".into()]).unwrap();
        let up = Upstream::start(
            providers,
            routes,
            hub_tx,
            Metrics::new(),
            None,
            &CancellationToken::new(),
            &TaskTracker::new(),
        )
        .unwrap();
        (up, rx)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<ProviderCommand>) -> ProviderCommand {
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn routes_by_prefix_or_default() {
        let (up, _rx) = setup().await;
        assert_eq!(up.route(&sym("AAPL")).unwrap(), Route { provider: "a", instrument: "AAPL".into() });
        assert_eq!(up.route(&sym("b:AAPL")).unwrap(), Route { provider: "b", instrument: "AAPL".into() });
        assert_eq!(up.route(&sym("zz:AAPL")).unwrap_err().code, ErrorCode::UnknownProvider);
        assert_eq!(up.route(&sym("BTC/USD")).unwrap().provider, "b", "crypto rule");
        assert_eq!(up.route(&sym("EUR/USD")).unwrap().provider, "a", "forex is not crypto");
        assert_eq!(up.route(&sym("GBP/EUR")).unwrap().provider, "b", "glob rule");
        assert_eq!(up.route(&sym("NVDA")).unwrap().provider, "b", "exact rule");
        assert_eq!(up.route(&sym("a:BTC/USD")).unwrap().provider, "a", "a prefix beats rules");
        assert_eq!(up.names(), ["a", "b"]);
    }

    #[test]
    fn bad_routes_are_refused_with_a_reason() {
        assert!(Routes::parse(&["crypto".into()]).unwrap_err().to_string().contains("pattern=provider"));
        assert!(Routes::parse(&["A*B*=x".into()]).is_err());
        assert!(Routes::parse(&["bad sym=x".into()]).is_err());
    }

    #[tokio::test]
    async fn one_upstream_subscription_per_instrument() {
        let (up, mut rx) = setup().await;
        up.apply(vec![Demand::Add(sym("AAPL")), Demand::Add(sym("a:AAPL")), Demand::Add(sym("MSFT"))]);
        assert_eq!(next(&mut rx).await, ProviderCommand::Subscribe(vec!["AAPL".into(), "MSFT".into()]));
        assert_eq!(up.subscriptions(), [("a", 2), ("b", 0)]);
        up.apply(vec![Demand::Remove(sym("AAPL"))]);
        up.apply(vec![Demand::Remove(sym("a:AAPL"))]);
        assert_eq!(next(&mut rx).await, ProviderCommand::Unsubscribe(vec!["AAPL".into()]));
        assert_eq!(up.subscriptions(), [("a", 1), ("b", 0)]);
    }

    #[tokio::test]
    async fn remove_then_add_in_one_batch_sends_nothing() {
        let (up, mut rx) = setup().await;
        up.apply(vec![Demand::Add(sym("AAPL"))]);
        let _ = next(&mut rx).await;
        up.apply(vec![Demand::Remove(sym("AAPL")), Demand::Add(sym("AAPL")), Demand::Add(sym("b:X"))]);
        // Only provider b hears anything.
        assert_eq!(next(&mut rx).await, ProviderCommand::Subscribe(vec!["X".into()]));
        assert!(rx.try_recv().is_err());
    }
}
