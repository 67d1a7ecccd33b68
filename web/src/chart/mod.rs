//! The detail view's chart: candles built from the relay's history and moved by live ticks ([`candles`]),
//! indicators in pure Rust ([`indicators`]), the bindings to TradingView's Lightweight Charts ([`lwc`]), the
//! chart on the page ([`view`]) and the tap that feeds it every tick ([`tap`]).

pub(crate) mod candles;
pub(crate) mod indicators;
pub(crate) mod lwc;
pub(crate) mod tap;
pub(crate) mod view;
