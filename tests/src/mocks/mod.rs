//! Mock upstream providers, one module per provider, each speaking that provider's documented protocol
//! (as written down in `docs/providers/`) on loopback, with switches for the failures tests inject.

pub mod alpaca;
pub mod alpaca_trading;
pub mod binance;
pub mod finnhub;
pub mod twelvedata;
pub mod unusualwhales;
