//! The built-in simulator: plausible live prices with no key and no network, so the terminal runs anywhere.
//!
//! Each subscribed instrument follows a geometric Brownian motion, `S ← S·exp((μ − σ²/2)·dt + σ·√dt·Z)`, with a
//! volatility that fits its asset class (crypto > equities > forex) and time compressed so moves are visible on
//! a dashboard. Listed instruments and any pair of major currencies or coins start near realistic levels
//! ([`universe`]); other equity tickers get a stable price derived from the name; pairs of unknown currencies are
//! refused. A symbol whose last subscriber left keeps its walk, so it continues from its last price when it returns.
//! The event channels `FLOW-ALERTS` and `NEWS` carry options-flow alerts and headlines in Unusual Whales' payload
//! shapes ([`events`]). Quotes carry a bid/ask spread, a running day volume and change vs. the day open, with
//! prices rounded to the decimals of the asset class. Every subscribed instrument ticks `tick_hz` times a second.
//! A symbol's first subscription also hands the relay a reconstructed day of one-minute candles ending at its
//! price ([`walk::Walk::past`]), as a real provider's history endpoint would, so its chart opens with a past.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::api::Candle;
use hamster_shared::{ErrorCode, ProviderState};
use indexmap::IndexMap;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod events;
mod universe;
mod walk;

use self::walk::Walk;
use crate::catalog::CatalogSource;
use super::{Adapter, EventSink, Provider, ProviderCommand};
use crate::clock::now_ms;

/// Name used in `sim:SYMBOL` and `Quote.provider`.
const NAME: &str = "sim";

/// Most minutes of past the simulator reconstructs per symbol: a week, far beyond what the hub keeps by default.
const MAX_HISTORY_MINUTES: usize = 7 * 1440;

/// Walks kept after their last subscriber left, so a symbol that comes back continues from its last price (the
/// relay keeps its last value and history; a restarted walk would draw a cliff). Oldest dropped beyond this.
const PARKED_WALKS: usize = 10_000;

/// Simulator settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimulatorArgs {
    /// Simulator ticks per second per subscribed symbol.
    #[arg(long, env = "SIM_TICK_HZ", default_value_t = 4.0)]
    sim_tick_hz: f64,

    /// Simulator random seed, for reproducible price paths.
    #[arg(long, env = "SIM_SEED")]
    sim_seed: Option<u64>,

    /// Simulated events per minute on each event channel (`FLOW-ALERTS`, `NEWS`) while subscribed; 0 = none.
    #[arg(long, env = "SIM_EVENTS_PER_MIN", default_value_t = 12.0)]
    sim_events_per_min: f64,

    /// Minutes of one-minute candles the simulator reconstructs before a symbol's first tick, so its chart opens
    /// with a past; 0 = charts start empty and fill from live ticks only.
    #[arg(long, env = "SIM_HISTORY_MINUTES", default_value_t = 1440)]
    sim_history_minutes: usize,
}

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &["simulator"],
    about: "built-in simulated prices and options-flow events (no key, no network)",
    key_vars: &[],
    args: <SimulatorArgs as clap::Args>::augment_args,
    build: |build| Ok(Box::new(Simulator { args: build.args()? })),
};

/// The simulator provider.
#[derive(Debug)]
struct Simulator {
    args: SimulatorArgs,
}

/// The simulated market: walks of subscribed instruments, parked walks, and subscribed event channels with the
/// time of their next event.
struct Market {
    rng: StdRng,
    walks: HashMap<String, Walk>,
    parked: IndexMap<String, Walk>,
    channels: BTreeMap<String, Instant>,
    events_per_min: f64,
    /// Minutes of past handed over for each walk started, and its ticks per minute.
    history_minutes: usize,
    ticks_per_min: f64,
}

/// What a subscribe did: instruments refused (with why), and the reconstructed past of each walk it started.
#[derive(Debug, Default)]
struct Subscribed {
    refused: Vec<(String, String)>,
    pasts: Vec<(String, Vec<Candle>)>,
}

impl Market {
    /// Starts (or resumes) what `instruments` name. A walk started here comes with its past; a resumed one does
    /// not need one (the relay kept what it saw).
    fn subscribe(&mut self, instruments: Vec<String>, now_ms: i64) -> Subscribed {
        let mut out = Subscribed::default();
        for instrument in instruments {
            if events::CHANNELS.contains(&instrument.as_str()) {
                if self.events_per_min > 0.0 {
                    let at = Instant::now() + events::next_gap(&mut self.rng, self.events_per_min);
                    self.channels.entry(instrument).or_insert(at);
                }
                continue;
            }
            if self.walks.contains_key(&instrument) {
                continue;
            }
            if let Some(walk) = self.parked.shift_remove(&instrument) {
                self.walks.insert(instrument, walk);
                continue;
            }
            match universe::start_price(&instrument) {
                Ok(base) => {
                    let walk = Walk::new(&instrument, base, &mut self.rng);
                    if self.history_minutes > 0 {
                        let past = walk.past(&mut self.rng, now_ms, self.history_minutes, self.ticks_per_min);
                        out.pasts.push((instrument.clone(), past));
                    }
                    self.walks.insert(instrument, walk);
                }
                Err(why) => out.refused.push((instrument, why)),
            }
        }
        out
    }

    fn unsubscribe(&mut self, instruments: Vec<String>) {
        for instrument in instruments {
            self.channels.remove(&instrument);
            if let Some(walk) = self.walks.remove(&instrument) {
                self.parked.insert(instrument, walk);
                if self.parked.len() > PARKED_WALKS {
                    self.parked.shift_remove_index(0);
                }
            }
        }
    }

    /// When the next event is due on any channel.
    fn next_event_at(&self) -> Option<Instant> {
        self.channels.values().min().copied()
    }

    /// The events due now, each rescheduled.
    fn due_events(&mut self, now: Instant, ts: i64) -> Vec<(String, serde_json::Value)> {
        let due: Vec<String> = self.channels.iter().filter(|(_, at)| **at <= now).map(|(c, _)| c.clone()).collect();
        let mut out = Vec::new();
        for channel in due {
            if let Some(payload) = events::payload(&channel, self.walks.iter(), &mut self.rng, ts) {
                out.push((channel.clone(), payload));
            }
            let next = now + events::next_gap(&mut self.rng, self.events_per_min);
            self.channels.insert(channel, next);
        }
        out
    }
}

impl Provider for Simulator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn catalog(&self) -> Option<CatalogSource> {
        let instruments = universe::catalog(events::CHANNELS);
        Some(CatalogSource {
            load: Arc::new(move || futures::future::ready(Ok(instruments.clone())).boxed()),
            key_of: Arc::new(|instrument: &str| Some(instrument.to_owned())),
            covers: None,
            validates: false,
            refresh: Duration::from_secs(24 * 3600),
        })
    }

    fn run(
        self: Box<Self>,
        mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let rng = match self.args.sim_seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            };
            let mut market = Market {
                rng,
                walks: HashMap::new(),
                parked: IndexMap::new(),
                channels: BTreeMap::new(),
                events_per_min: self.args.sim_events_per_min,
                history_minutes: self.args.sim_history_minutes.min(MAX_HISTORY_MINUTES),
                ticks_per_min: self.args.sim_tick_hz.clamp(0.01, 10_000.0) * 60.0,
            };
            let period = Duration::from_secs_f64(1.0 / self.args.sim_tick_hz.clamp(0.01, 10_000.0));
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            events.status(ProviderState::Live, None).await;
            loop {
                let next_event = market.next_event_at();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    command = commands.recv() => match command {
                        Some(ProviderCommand::Subscribe(instruments)) => {
                            let subscribed = market.subscribe(instruments, now_ms());
                            for (instrument, why) in subscribed.refused {
                                events.reject(&instrument, ErrorCode::ProviderRejected, why).await;
                            }
                            for (instrument, past) in subscribed.pasts {
                                events.history(&instrument, past).await;
                            }
                        }
                        Some(ProviderCommand::Unsubscribe(instruments)) => market.unsubscribe(instruments),
                        None => return,
                    },
                    _ = sleep_until_opt(next_event) => {
                        let ts = now_ms();
                        for (channel, payload) in market.due_events(Instant::now(), ts) {
                            events.event(&channel, payload, ts).await;
                        }
                    }
                    _ = tick.tick() => {
                        if market.walks.is_empty() {
                            continue;
                        }
                        let ts = now_ms();
                        let rng = &mut market.rng;
                        let quotes = market.walks.values_mut().filter_map(|w| w.step(rng, ts)).collect();
                        events.quotes(quotes).await;
                    }
                }
            }
        }
        .boxed()
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(events_per_min: f64) -> Market {
        Market {
            rng: StdRng::seed_from_u64(11),
            walks: HashMap::new(),
            parked: IndexMap::new(),
            channels: BTreeMap::new(),
            events_per_min,
            history_minutes: 30,
            ticks_per_min: 240.0,
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_returning_symbol_continues_from_its_last_price() {
        let mut m = market(0.0);
        let first = m.subscribe(strings(&["AAPL"]), 1_700_000_000_000);
        assert!(first.refused.is_empty());
        assert_eq!(first.pasts.len(), 1);
        assert_eq!(first.pasts[0].1.len(), 30, "a new walk comes with its past");
        for ts in 0..500 {
            let rng = &mut m.rng;
            m.walks.get_mut("AAPL").and_then(|w| w.step(rng, ts));
        }
        let last = m.walks["AAPL"].price();
        m.unsubscribe(strings(&["AAPL"]));
        assert!(m.walks.is_empty() && m.parked.contains_key("AAPL"));
        let again = m.subscribe(strings(&["AAPL"]), 1_700_000_100_000);
        assert!(again.pasts.is_empty(), "a resumed walk's past is already at the relay");
        assert_eq!(m.walks["AAPL"].price(), last, "the same walk, not a new one near the base level");
    }

    #[test]
    fn unknown_currencies_are_refused_and_channels_are_not_walks() {
        let mut m = market(60.0);
        let Subscribed { refused, pasts } = m.subscribe(strings(&["USD/JPY", "FOO/BAR", "FLOW-ALERTS", "NEWS"]), 0);
        assert_eq!(pasts.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(), ["USD/JPY"], "channels have no past");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "FOO/BAR");
        assert!(m.walks.contains_key("USD/JPY") && m.channels.len() == 2 && !m.walks.contains_key("NEWS"));
        let later = Instant::now() + Duration::from_secs(3600);
        let due = m.due_events(later, 1_726_670_212_748);
        assert_eq!(due.len(), 2, "both channels were due");
        assert!(m.next_event_at().is_some_and(|at| at > later), "rescheduled");
        m.unsubscribe(strings(&["NEWS", "FLOW-ALERTS"]));
        assert!(m.next_event_at().is_none());
    }
}
