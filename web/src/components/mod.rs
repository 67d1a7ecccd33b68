//! The dashboard's components, one per file. Components that need the whole model read
//! [`crate::context::AppContext`]; rows and the other hot paths take plain props that compare cheaply, so they
//! re-render only when their data changed.

pub(crate) mod activity_log;
pub(crate) mod add_symbol;
pub(crate) mod alerts;
pub(crate) mod app;
pub(crate) mod connection_badge;
pub(crate) mod detail;
pub(crate) mod event_feed;
pub(crate) mod latency;
pub(crate) mod markup;
pub(crate) mod order_ticket;
pub(crate) mod portfolio;
pub(crate) mod quote_row;
pub(crate) mod replay_bar;
pub(crate) mod row_group;
pub(crate) mod sparkline;
pub(crate) mod stats_panel;
pub(crate) mod theme;
pub(crate) mod toasts;
pub(crate) mod watchlist;
pub(crate) mod watchlist_tabs;
