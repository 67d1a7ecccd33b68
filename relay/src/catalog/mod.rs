//! Instrument catalogs: what each provider can actually quote, loaded from the provider's own reference
//! endpoint, kept fresh, and used twice — to refuse a symbol the provider does not have before anything is sent
//! upstream (`unknown_symbol`, with the closest matches), and to answer search as you type
//! (`GET /api/symbols`, [`search`]).
//!
//! An adapter offers a [`CatalogSource`]: how to load its list, how an instrument the relay was asked for is
//! spelled in that list (the adapter's own symbol mapping, so `BTC/USD` on Binance is looked up as `BTCUSDT`),
//! whether the list is authoritative, and how often to reload it. A catalog that cannot be loaded costs
//! nothing but the checks: symbols then pass as they did before catalogs existed, and `/api/status` says why.

pub(crate) mod search;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hamster_shared::api::{CatalogInfo, InstrumentClass};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::providers::stream::timing::Backoff;
use crate::secret::redact;

/// One instrument a provider lists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instrument {
    /// The relay's spelling (`BTC/USDT`, `AAPL`, `EUR/USD`).
    pub(crate) ticker: String,
    /// The spelling [`CatalogSource::key_of`] produces for it (the provider's own symbol).
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) class: InstrumentClass,
}

/// Loads a provider's instrument list.
pub(crate) type Loader = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<Instrument>, String>> + Send + Sync>;

/// The catalog key of an instrument as clients name it, or `None` when it cannot be one of this provider's.
pub(crate) type KeyOf = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Whether the list speaks for an instrument at all (as clients name it).
pub(crate) type Covers = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What an adapter offers to build its catalog.
#[derive(Clone)]
pub(crate) struct CatalogSource {
    pub(crate) load: Loader,
    pub(crate) key_of: KeyOf,
    /// The instruments the list speaks for; the others pass unchecked. `None`: all of them. (Unusual Whales lists
    /// its channels, but any ticker has a price channel.)
    pub(crate) covers: Option<Covers>,
    /// Whether an instrument missing from the list is refused. The simulator's list is for search only.
    pub(crate) validates: bool,
    /// How often the list is reloaded after a successful load.
    pub(crate) refresh: Duration,
}

impl std::fmt::Debug for CatalogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSource").field("validates", &self.validates).field("refresh", &self.refresh).finish()
    }
}

/// One loaded list, with what search needs precomputed.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) instruments: Vec<Instrument>,
    by_key: HashMap<String, usize>,
    /// Upper-case tickers, also without their `/` (`BTCUSD` finds `BTC/USD`), and lower-case names.
    pub(crate) folded: Vec<(String, String, String)>,
    loaded_at: i64,
}

impl Catalog {
    pub(crate) fn new(instruments: Vec<Instrument>, loaded_at: i64) -> Catalog {
        let by_key = instruments.iter().enumerate().map(|(i, x)| (x.key.clone(), i)).collect();
        let folded = instruments
            .iter()
            .map(|x| {
                let upper = x.ticker.to_ascii_uppercase();
                (upper.replace('/', ""), upper, x.name.to_lowercase())
            })
            .collect();
        Catalog { instruments, by_key, folded, loaded_at }
    }

    fn knows(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }
}

/// Why a catalog refused an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unknown {
    pub(crate) message: String,
    /// Tickers of the closest instruments, best first.
    pub(crate) suggestions: Vec<String>,
}

#[derive(Default)]
struct SlotState {
    catalog: Option<Arc<Catalog>>,
    error: Option<String>,
    source: Option<CatalogSource>,
}

/// A provider's catalog as it stands: none yet, loaded, or failing (with the last good list kept).
#[derive(Clone, Default)]
pub(crate) struct CatalogSlot(Arc<RwLock<SlotState>>);

impl std::fmt::Debug for CatalogSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CatalogSlot").field(&self.info()).finish()
    }
}

/// How many suggestions an `unknown_symbol` carries.
const SUGGESTIONS: usize = 3;

impl CatalogSlot {
    /// A slot that will be filled from `source`.
    pub(crate) fn for_source(source: CatalogSource) -> CatalogSlot {
        CatalogSlot(Arc::new(RwLock::new(SlotState { source: Some(source), ..SlotState::default() })))
    }

    /// The loaded list, if any.
    pub(crate) fn catalog(&self) -> Option<Arc<Catalog>> {
        self.0.read().catalog.clone()
    }

    /// Refuses `instrument` if this provider validates against a loaded catalog that does not list it.
    pub(crate) fn check(&self, provider: &str, instrument: &str) -> Result<(), Unknown> {
        let state = self.0.read();
        let (Some(catalog), Some(source)) = (&state.catalog, &state.source) else { return Ok(()) };
        if !source.validates || source.covers.as_ref().is_some_and(|covers| !covers(instrument)) {
            return Ok(());
        }
        if (source.key_of)(instrument).is_some_and(|key| catalog.knows(&key)) {
            return Ok(());
        }
        let suggestions = search::closest(catalog, instrument, SUGGESTIONS);
        let mut message = format!("{provider} has no instrument {instrument}");
        if let Some(first) = suggestions.first() {
            message.push_str(&format!("; did you mean {first}?"));
        }
        Err(Unknown { message, suggestions })
    }

    /// For `/api/status`.
    pub(crate) fn info(&self) -> Option<CatalogInfo> {
        let state = self.0.read();
        let source = state.source.as_ref()?;
        Some(CatalogInfo {
            instruments: state.catalog.as_ref().map_or(0, |c| c.instruments.len()),
            validates: source.validates,
            loaded_at: state.catalog.as_ref().map(|c| c.loaded_at),
            error: state.error.clone(),
        })
    }

    /// Loads the catalog now and then every `refresh`; a failed load keeps the previous list and is retried with
    /// backoff. Runs until `stop`.
    pub(crate) async fn keep_fresh(self, provider: &'static str, stop: CancellationToken) {
        let Some(source) = self.0.read().source.clone() else { return };
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(30 * 60));
        loop {
            let loaded = tokio::select! {
                _ = stop.cancelled() => return,
                loaded = (source.load)() => loaded,
            };
            let wait = match loaded {
                Ok(instruments) => {
                    tracing::info!(provider, instruments = instruments.len(), "instrument catalog loaded");
                    let mut state = self.0.write();
                    state.catalog = Some(Arc::new(Catalog::new(instruments, now_ms())));
                    state.error = None;
                    backoff.reset();
                    source.refresh
                }
                Err(why) => {
                    let why = redact(&why).into_owned();
                    tracing::warn!(provider, error = %why, "instrument catalog not loaded; symbols pass unchecked");
                    self.0.write().error = Some(why);
                    backoff.next_delay().max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
