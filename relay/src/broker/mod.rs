//! Brokers: where orders go. The [`Broker`] trait is the contract every backend meets (the built-in paper broker
//! in [`paper`], Alpaca in [`alpaca`]), so the transports place, cancel and list orders without knowing which one
//! answers. The vocabulary (orders, fills, positions, the account) is the wire protocol's, from
//! `hamster_shared::broker`.
//!
//! Nothing here knows about transports or the hub: the paper broker learns prices through the ingest path's
//! [`crate::ingest::Tap`] (every tick, never a conflated view) and keeps its state durable through
//! [`crate::store::Journal`].

pub(crate) mod alpaca;
mod args;
pub(crate) mod engine;
pub(crate) mod paper;

#[cfg(test)]
mod tests;

use futures::future::BoxFuture;

pub(crate) use args::{BrokerArgs, BrokerKind};
use hamster_shared::broker::{Account, Fill, Order, OrderReject, OrderRequest, OrderStatus, Position, ReplaceRequest};

/// Whose account a request acts on: the JWT `sub`, the static token's name, or the one local account when
/// client auth is off.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AccountId(pub(crate) String);

impl AccountId {
    /// The account everyone shares when client auth is off.
    pub(crate) fn local() -> AccountId {
        AccountId("local".to_owned())
    }
}

/// What a broker does for one account. Asynchronous because a real broker answers over the network.
pub(crate) trait Broker: Send + Sync + std::fmt::Debug {
    /// Places an order (or returns the existing one for a `client_order_id` already used).
    fn place(&self, account: &AccountId, request: OrderRequest) -> BoxFuture<'_, Result<Order, OrderReject>>;
    /// Cancels a working order (and, for a bracket entry, its waiting exits).
    fn cancel(&self, account: &AccountId, id: &str) -> BoxFuture<'_, Result<Order, OrderReject>>;
    /// Replaces a working order with a changed copy; the old one ends as `replaced`.
    fn replace(
        &self,
        account: &AccountId,
        id: &str,
        change: ReplaceRequest,
    ) -> BoxFuture<'_, Result<Order, OrderReject>>;
    /// Starts the account over: open orders cancelled, positions closed without a trade, cash back to the
    /// starting amount. Only a simulated account can do that; a real broker refuses.
    fn reset(&self, _account: &AccountId) -> BoxFuture<'_, Result<Account, OrderReject>> {
        Box::pin(std::future::ready(Err(OrderReject {
            code: hamster_shared::broker::OrderRejectCode::Unavailable,
            message: "this broker's accounts cannot be reset from the relay".to_owned(),
        })))
    }
    /// The account's orders, newest first, optionally only those in one of `statuses`.
    fn orders(&self, account: &AccountId, statuses: Option<Vec<OrderStatus>>) -> BoxFuture<'_, Vec<Order>>;
    /// The account's positions, marked to the last price.
    fn positions(&self, account: &AccountId) -> BoxFuture<'_, Vec<Position>>;
    /// The account's cash, equity and buying power.
    fn account(&self, account: &AccountId) -> BoxFuture<'_, Account>;
    /// The account's fills from the ledger, newest first, at most `limit`.
    fn fills(&self, account: &AccountId, limit: usize) -> BoxFuture<'_, Vec<Fill>>;
    /// Every change in every account, as it happens (receivers filter by account).
    fn updates(&self) -> tokio::sync::broadcast::Receiver<Update>;
    /// Which backend this is and whether it can take orders now, for `/api/status`.
    fn status(&self) -> hamster_shared::api::BrokerStatus;
    /// Symbols the broker needs live prices for (working orders, open positions): the relay keeps them
    /// subscribed even when no client watches them.
    fn watched(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What changed in one account, for the streams that report it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Update {
    pub(crate) account: AccountId,
    /// Orders whose status changed (every transition), in order.
    pub(crate) orders: Vec<Order>,
    pub(crate) fills: Vec<Fill>,
}
