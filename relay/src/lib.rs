//! # hamster-relay
//!
//! The relay sits between paid market-data feeds and browsers. It holds the provider keys, keeps **one upstream
//! connection per provider**, and multiplexes every client's subscriptions onto it.
//!
//! ```text
//!  providers/*  ──HubEvent──▶  hub  ──Frame──▶  outbox (per client) ──▶ transport/{ws,sse}
//!  (simulator,     (quotes,     │ ref-counted       bounded; conflates      ▲
//!   adapters)       status)     │ subscriptions,    when full               │ commands
//!       ▲                       │ cache, history                       commands (validation)
//!       └── ProviderCommand ── upstream (router) ◀──Demand── hub ◀────────────┘
//! ```
//!
//! * [`hub`] — who wants what, last values and history, fan-out. Knows nothing of providers or sockets; its
//!   input is a stream of normalised [`hub::HubEvent`]s, so a Redis backplane or a replay can feed it later.
//! * [`upstream`] — routes symbols to providers and sends each provider subscription diffs.
//! * [`cluster`] — with `REDIS_URL`, several nodes share one upstream connection per provider through Redis
//!   (a lease per provider, interest sets, a data bus); between the router and the providers only.
//! * [`providers`] — one adapter per data source behind the [`providers::Provider`] trait; [`providers::simulator`]
//!   is the default.
//! * [`transport`] — `/ws`, `/api/stream` (SSE) and REST; [`commands`] is what client commands mean.
//! * [`broker`] — orders, positions and the account: the [`broker::Broker`] contract and the paper broker filled
//!   on every ingested tick; [`trading`] is what the trading commands of a connection mean.
//! * [`guard`] — the edge policy: allowed origins, client auth, per-address and per-connection limits.
//! * [`server`] — the accept loop (request-head deadline, socket options, graceful stop).
//! * [`config`], [`metrics`], [`shutdown`], [`app`] (wiring), [`state`] (what handlers share), [`error`] (HTTP
//!   errors).
//!
//! The library serves `main.rs` alone, so only what the binary calls is public (`config`, `secret`'s log sink,
//! `app::serve`); everything else is crate-private, which lets the compiler report dead code.

pub mod app;
mod broker;
mod catalog;
pub mod cli;
mod clock;
mod cluster;
mod commands;
pub mod config;
mod error;
mod export;
mod guard;
mod hub;
mod ingest;
mod metrics;
mod providers;
mod replay;
pub mod secret;
mod server;
mod shutdown;
mod state;
mod store;
mod trading;
mod transport;
mod upstream;
