//! Twelve Data: stocks, forex and crypto prices over `wss://ws.twelvedata.com/v1/quotes/price`, with a REST
//! `/price` fallback while the stream is down.
//!
//! Wire protocol (`docs/providers/twelvedata.md`): auth by `?apikey=`; no greeting;
//! `{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}` answered by one `subscribe-status` whose
//! `fails[]` become per-symbol rejections; `price` events with a Unix-seconds `timestamp`, numeric `price`,
//! optional `bid`/`ask`/`day_volume`; `{"action":"heartbeat"}` every 10 s. The server accepts about 100 client
//! events a minute, so outgoing frames are paced at one per 600 ms. Instruments use Twelve Data's own spelling
//! (`AAPL`, `EUR/USD`, `BTC/USD`), so no mapping is needed. A symbol's chart starts with a day of one-minute
//! candles from `/time_series` ([`history`]), fetched once when it is first wanted, within the same credit budget.
//!
//! UNVERIFIED upstream behaviour, made configurable: how a bad key is refused (treated as bad credentials when
//! the upgrade gets HTTP 400, 401 or 403 — see [`Wire::is_auth_failure`]); the REST credit budget per minute
//! (`--twelvedata-rest-credits-per-min`, default 8 as on the Basic plan).


mod catalog;
mod history;
mod rest_fallback;
mod wire;

use futures::FutureExt;

use self::rest_fallback::RestFallback;
use self::wire::TdWire;
use super::stream::Streaming;
use super::Adapter;

const NAME: &str = "twelvedata";

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &[],
    about: "Twelve Data: stocks, forex and crypto (TWELVE_DATA_API_KEY)",
    key_vars: &["TWELVE_DATA_API_KEY"],
    args: <TwelveDataArgs as clap::Args>::augment_args,
    build: |build| {
        let args: TwelveDataArgs = build.args()?;
        let key = build.key()?;
        let fallback = RestFallback::new(&args.rest_url, key.clone(), args.rest_credits_per_min);
        let backfill = history::backfill(&args.rest_url, &key, args.rest_credits_per_min, args.history_minutes);
        let catalog = catalog::source(&args.rest_url, &key);
        let wire = TdWire::new(args.ws_url, key);
        let stream = Streaming::new(wire, build.timing).with_beside(Box::new(|link, events, stop| {
            fallback.run(link, events, stop).boxed()
        }));
        let stream = match backfill {
            Some(backfill) => stream.with_backfill(backfill),
            None => stream,
        };
        Ok(Box::new(match catalog {
            Some(catalog) => stream.with_catalog(catalog),
            None => stream,
        }))
    },
};

/// A client that sends the key as `Authorization: apikey …` (REST); `None`, logged, when the key cannot be a header
/// value.
fn keyed_client(key: &crate::secret::Secret, timeout: std::time::Duration) -> Option<reqwest::Client> {
    let auth = format!("apikey {}", key.expose());
    crate::secret::keyed_client(&[("Authorization", &auth)], timeout)
        .map_err(|e| tracing::warn!(error = %e, "twelvedata REST calls disabled"))
        .ok()
}

/// Twelve Data settings (the key itself comes from `TWELVE_DATA_API_KEY`).
#[derive(Debug, Clone, clap::Args)]
struct TwelveDataArgs {
    /// Twelve Data streaming endpoint.
    #[arg(
        id = "twelvedata_ws_url",
        long = "twelvedata-ws-url",
        env = "TWELVE_DATA_WS_URL",
        default_value = "wss://ws.twelvedata.com/v1/quotes/price"
    )]
    ws_url: String,
    /// Twelve Data REST base, used by the fallback while the stream is down.
    #[arg(
        id = "twelvedata_rest_url",
        long = "twelvedata-rest-url",
        env = "TWELVE_DATA_REST_URL",
        default_value = "https://api.twelvedata.com"
    )]
    rest_url: String,
    /// API credits per minute the REST fallback and the charts' past may spend (1 per symbol per request); 0
    /// disables both.
    #[arg(long = "twelvedata-rest-credits-per-min", env = "TWELVE_DATA_REST_CREDITS_PER_MIN", default_value_t = 8)]
    rest_credits_per_min: u32,
    /// Minutes of one-minute candles fetched (`/time_series`, one credit) when a symbol is first wanted, so its
    /// chart opens with a past (0 = none).
    #[arg(
        id = "twelvedata_history_minutes",
        long = "twelvedata-history-minutes",
        env = "TWELVE_DATA_HISTORY_MINUTES",
        default_value_t = 1440
    )]
    history_minutes: usize,
}


#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
