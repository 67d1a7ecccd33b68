//! The dashboard's components, one per file. Components that need the whole model read [`crate::context::AppContext`];
//! rows and the other hot paths take plain props that compare cheaply, so they re-render only when their
//! data changed.

pub mod activity_log;
pub mod add_symbol;
pub mod app;
pub mod connection_badge;
pub mod quote_row;
pub mod row_group;
pub mod sparkline;
pub mod stats_panel;
pub mod watchlist;
