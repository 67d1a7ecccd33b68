//! The brokers' flags: which broker takes orders, and each one's settings.

use super::alpaca::AlpacaTradingArgs;
use super::engine::PaperConfig;

/// Which broker takes orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum BrokerKind {
    /// The built-in paper broker, filled against the live quote stream.
    #[default]
    Paper,
    /// Alpaca's Trading API (paper endpoint unless `--alpaca-live`).
    Alpaca,
}

/// Trading settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BrokerArgs {
    /// Where orders go: `paper` (built in, no key) or `alpaca` (APCA_API_KEY_ID, APCA_API_SECRET_KEY).
    #[arg(long, env = "BROKER", value_enum, default_value_t = BrokerKind::Paper)]
    pub(crate) broker: BrokerKind,

    #[command(flatten)]
    pub(crate) alpaca: AlpacaTradingArgs,

    /// Cash every new paper account starts with.
    #[arg(long, env = "PAPER_STARTING_CASH", default_value_t = 100_000.0)]
    pub(crate) paper_starting_cash: f64,

    /// Slippage on every paper fill, in basis points against the trader.
    #[arg(long, env = "PAPER_SLIPPAGE_BPS", default_value_t = 0.0)]
    pub(crate) paper_slippage_bps: f64,

    /// Commission charged per paper fill, in account currency.
    #[arg(long, env = "PAPER_COMMISSION", default_value_t = 0.0)]
    pub(crate) paper_commission: f64,
}

impl BrokerArgs {
    /// The engine's settings; values that make no sense (negative, not finite) fall back to none.
    pub(crate) fn paper(&self) -> PaperConfig {
        let clean = |v: f64, default: f64| if v.is_finite() && v >= 0.0 { v } else { default };
        PaperConfig {
            starting_cash: clean(self.paper_starting_cash, 100_000.0),
            slippage_bps: clean(self.paper_slippage_bps, 0.0),
            commission: clean(self.paper_commission, 0.0),
        }
    }
}
