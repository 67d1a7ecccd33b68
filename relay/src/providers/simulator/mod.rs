//! The built-in simulator: plausible live prices with no key and no network, so the terminal runs anywhere.
//!
//! Each subscribed instrument follows a geometric Brownian motion, `S ← S·exp((μ − σ²/2)·dt + σ·√dt·Z)`, with a
//! volatility that fits its asset class (crypto > equities > forex) and time compressed so moves are visible on
//! a dashboard. Seed symbols start near realistic prices; any other valid symbol gets a stable starting price
//! derived from its name. Quotes carry a bid/ask spread, a running day volume and change vs. the day open, with
//! prices rounded to the decimals of the asset class. Every subscribed instrument ticks `tick_hz` times a second.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::ProviderState;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod walk;

use self::walk::Walk;
use super::{Adapter, EventSink, Provider, ProviderCommand};
use crate::clock::now_ms;

/// Name used in `sim:SYMBOL` and `Quote.provider`.
const NAME: &str = "sim";

/// Instruments with realistic starting prices; anything else gets a price derived from its name.
pub(super) const SEEDS: &[(&str, f64)] = &[
    ("BTC/USD", 67_000.0),
    ("ETH/USD", 3_500.0),
    ("AAPL", 190.0),
    ("MSFT", 420.0),
    ("NVDA", 120.0),
    ("SPY", 520.0),
    ("EUR/USD", 1.0850),
    ("GBP/USD", 1.2700),
];

/// Simulator settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimulatorArgs {
    /// Simulator ticks per second per subscribed symbol.
    #[arg(long, env = "SIM_TICK_HZ", default_value_t = 4.0)]
    sim_tick_hz: f64,

    /// Simulator random seed, for reproducible price paths.
    #[arg(long, env = "SIM_SEED")]
    sim_seed: Option<u64>,
}

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &["simulator"],
    about: "built-in simulated prices (no key, no network)",
    key_vars: &[],
    args: <SimulatorArgs as clap::Args>::augment_args,
    build: |build| Ok(Box::new(Simulator { args: build.args()? })),
};

/// The simulator provider.
#[derive(Debug)]
struct Simulator {
    args: SimulatorArgs,
}

impl Provider for Simulator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        self: Box<Self>,
        mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let mut rng = match self.args.sim_seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            };
            let period = Duration::from_secs_f64(1.0 / self.args.sim_tick_hz.clamp(0.01, 10_000.0));
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut walks: HashMap<String, Walk> = HashMap::new();
            events.status(ProviderState::Live, None).await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    command = commands.recv() => match command {
                        Some(ProviderCommand::Subscribe(instruments)) => {
                            for instrument in instruments {
                                walks.entry(instrument.clone()).or_insert_with(|| Walk::new(&instrument, &mut rng));
                            }
                        }
                        Some(ProviderCommand::Unsubscribe(instruments)) => {
                            for instrument in instruments {
                                walks.remove(&instrument);
                            }
                        }
                        None => return,
                    },
                    _ = tick.tick() => {
                        if walks.is_empty() {
                            continue;
                        }
                        let ts = now_ms();
                        let quotes = walks.values_mut().filter_map(|w| w.step(&mut rng, ts)).collect();
                        events.quotes(quotes).await;
                    }
                }
            }
        }
        .boxed()
    }
}

