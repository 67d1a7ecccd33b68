//! Hamster Terminal's wire protocol, shared by the relay (native) and the dashboard (wasm32).
//!
//! This crate is the only place protocol types and symbol rules live. The relay serialises these types and
//! the dashboard deserialises them (and the other way round for client commands), so a change here is a
//! protocol change: bump [`PROTOCOL_VERSION`] when an existing message changes shape.
//!
//! * [`protocol`] — the JSON messages on `/ws` and the SSE stream, tagged by `"type"`.
//! * [`api`] — the JSON bodies of the REST endpoints (`/api/*`).
//! * `json` — [`ServerMessage::from_json`], the dashboard's reader of relay frames (no intermediate tree), and
//!   the smaller readers of unit enums and structs the dashboard's wasm uses instead of serde's derive.
//! * [`symbol`] — what a valid symbol is, its canonical spelling, `provider:SYMBOL` prefixes and request limits.
//!
//! `docs/protocol.md` shows an example of every message.

pub mod api;
pub mod broker;
mod json;
pub mod protocol;
pub mod symbol;

pub use protocol::{
    ClientMessage, Continuity, ErrorCode, ParseError, ProviderInfo, ProviderState, Quote, Rejection, ReplayAction,
    ReplayPhase, RequestId, Resume, ServerMessage, FEATURES, MSGPACK_SUBPROTOCOL, PROTOCOL_VERSION,
};
pub use symbol::{AssetClass, Symbol, SymbolError, MAX_SYMBOLS_PER_REQUEST, MAX_SYMBOL_LEN};
