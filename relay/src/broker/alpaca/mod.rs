//! Alpaca as the real broker (`--broker alpaca`): orders, positions and the account of one Alpaca trading
//! account through its Trading REST API, order updates from its `trade_updates` stream, all in the protocol's
//! terms so the transports and the dashboard cannot tell it from the paper broker
//! (`docs/providers/alpaca-broker.md`).
//!
//! One key pair is one Alpaca account, so the relay hands it to exactly one identity (`--alpaca-owner`, the
//! local account by default): every other identity is refused and sees an empty account. The paper endpoint is
//! the default; live trading needs `--alpaca-live` and is announced at startup.
//!
//! What this module keeps is a cache, never the truth: orders come from the stream and from a full resync after
//! every (re)connect, positions and the account from REST every `--alpaca-poll-ms` and after every fill, and
//! between polls positions are marked to the live quote stream ([`AlpacaMarks`]) so P&L moves with every tick
//! without spending Alpaca's rate limit (200 requests a minute).

mod rest;
mod stream;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use hamster_shared::api::BrokerStatus;
use hamster_shared::broker::{
    Account, Fill, Order, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, Position, ReplaceRequest,
};
use hamster_shared::ProviderState;
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use self::rest::{Rest, RestError};
use self::wire::{TradeUpdate, WireOrder};
use super::{AccountId, Broker, Update};
use crate::clock::now_ms;
use crate::hub::HubEvent;
use crate::ingest::Tap;
use crate::secret::Secret;

/// Alpaca's paper and live Trading API hosts.
const PAPER_URL: &str = "https://paper-api.alpaca.markets";
const LIVE_URL: &str = "https://api.alpaca.markets";
/// The key pair, shared with the market-data adapter.
pub(crate) const KEY_VARS: [&str; 2] = ["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"];
/// Orders kept in the cache (newest first); Alpaca keeps the full history.
const MAX_ORDERS: usize = 1000;
/// Fills kept in memory (Alpaca keeps the ledger; this is what the relay saw since it started).
const MAX_FILLS: usize = 1000;

/// Alpaca trading settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AlpacaTradingArgs {
    /// Send orders to Alpaca's live market (real money). Without it the paper endpoint is used.
    #[arg(long, env = "ALPACA_LIVE")]
    pub(crate) alpaca_live: bool,

    /// Trading API base URL (overrides the paper/live default; tests point it at a mock).
    #[arg(long, env = "ALPACA_TRADING_URL")]
    pub(crate) alpaca_trading_url: Option<String>,

    /// `trade_updates` stream URL (default: the trading URL with `wss://` and `/stream`).
    #[arg(long, env = "ALPACA_TRADING_STREAM_URL")]
    pub(crate) alpaca_trading_stream_url: Option<String>,

    /// The identity that owns the Alpaca account: `local` (client auth off), `token-N` (the N-th of AUTH_TOKENS, from 1) or `sub:NAME` (a JWT subject).
    #[arg(long, env = "ALPACA_OWNER", default_value = "local")]
    pub(crate) alpaca_owner: String,

    /// How often positions and the account are fetched from Alpaca, in milliseconds (also after every fill).
    #[arg(long, env = "ALPACA_POLL_MS", default_value_t = 5_000)]
    pub(crate) alpaca_poll_ms: u64,
}

impl AlpacaTradingArgs {
    fn rest_url(&self) -> String {
        match &self.alpaca_trading_url {
            Some(url) => url.clone(),
            None if self.alpaca_live => LIVE_URL.to_owned(),
            None => PAPER_URL.to_owned(),
        }
    }

    /// The stream lives on the REST host at `/stream` (`wss` for `https`).
    fn stream_url(&self) -> String {
        if let Some(url) = &self.alpaca_trading_stream_url {
            return url.clone();
        }
        let rest = self.rest_url();
        let ws = match rest.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}"),
            Some((_, rest)) => format!("wss://{rest}"),
            None => format!("wss://{rest}"),
        };
        format!("{}/stream", ws.trim_end_matches('/'))
    }
}

/// What the relay knows of the Alpaca account.
#[derive(Debug, Default)]
struct Cache {
    /// Newest first.
    orders: IndexMap<String, Order>,
    positions: Vec<Position>,
    account: Option<Account>,
    fills: VecDeque<Fill>,
    next_fill: i64,
    /// Executions already booked (the stream and a resync may both report one).
    executions: HashSet<String>,
}

impl Cache {
    /// Stores `order` unless the cache already has a later state of it (a REST answer can arrive after the
    /// stream's events about the same order); returns whether anything a trader sees changed.
    fn put(&mut self, order: Order) -> bool {
        match self.orders.get_mut(&order.id) {
            Some(old) if !supersedes(&order, old) => false,
            Some(old) => {
                let changed = old.status != order.status
                    || old.filled_qty != order.filled_qty
                    || old.stop_price != order.stop_price
                    || old.limit_price != order.limit_price;
                *old = order;
                changed
            }
            None => {
                self.orders.shift_insert(0, order.id.clone(), order);
                self.orders.truncate(MAX_ORDERS);
                true
            }
        }
    }

    fn book(&mut self, fill: Fill) {
        self.fills.push_front(fill);
        self.fills.truncate(MAX_FILLS);
    }
}

/// Whether `new` is a later state of the order than `old`: a later update time, or at the same time, no step
/// back in its life (a working order does not follow a fill).
fn supersedes(new: &Order, old: &Order) -> bool {
    let stage = |o: &Order| match o.status {
        OrderStatus::Held | OrderStatus::Accepted => 0,
        OrderStatus::PartiallyFilled => 1,
        _ => 2,
    };
    if new.updated_at != old.updated_at {
        return new.updated_at > old.updated_at;
    }
    (stage(new), new.filled_qty) >= (stage(old), old.filled_qty)
}

/// The Alpaca broker.
#[derive(Debug)]
pub(crate) struct Alpaca {
    rest: Rest,
    owner: AccountId,
    stream_url: String,
    key: Secret,
    secret: Secret,
    poll: Duration,
    cache: Mutex<Cache>,
    status: Mutex<BrokerStatus>,
    updates: broadcast::Sender<Update>,
    /// Wakes the poller early (after a fill).
    refresh: Notify,
}

impl Alpaca {
    /// Reads the keys and starts the stream and the poller; they stop with `stop`.
    pub(crate) fn start(args: &AlpacaTradingArgs, stop: CancellationToken) -> anyhow::Result<Arc<Alpaca>> {
        let [key, secret] = KEY_VARS.map(Secret::from_env);
        let (Some(key), Some(secret)) = (key, secret) else {
            anyhow::bail!("--broker alpaca needs {} and {} in the environment", KEY_VARS[0], KEY_VARS[1]);
        };
        let rest_url = args.rest_url();
        if args.alpaca_live {
            tracing::warn!(url = %rest_url, "LIVE TRADING: orders placed through this relay go to Alpaca's live market with real money");
        } else {
            tracing::info!(url = %rest_url, "trading through Alpaca's paper account");
        }
        let alpaca = Arc::new(Alpaca {
            rest: Rest::new(&rest_url, &key, &secret)?,
            owner: AccountId(args.alpaca_owner.clone()),
            stream_url: args.stream_url(),
            key,
            secret,
            poll: Duration::from_millis(args.alpaca_poll_ms.max(1_000)),
            cache: Mutex::new(Cache::default()),
            status: Mutex::new(BrokerStatus {
                name: "alpaca".into(),
                live_money: args.alpaca_live,
                state: ProviderState::Connecting,
                detail: None,
                since: now_ms(),
            }),
            updates: broadcast::channel(1024).0,
            refresh: Notify::new(),
        });
        tokio::spawn(stream::run(alpaca.clone(), stop.clone()));
        tokio::spawn(alpaca.clone().poll_loop(stop));
        Ok(alpaca)
    }

    fn set_state(&self, state: ProviderState, detail: Option<String>) {
        let mut status = self.status.lock();
        if status.state != state || status.detail != detail {
            match state {
                ProviderState::Live => tracing::info!("Alpaca trading connected"),
                _ => tracing::warn!(state = ?state, detail = detail.as_deref().unwrap_or(""), "Alpaca trading"),
            }
            *status = BrokerStatus { state, detail, since: now_ms(), ..status.clone() };
        }
    }

    /// Refuses every identity but the owner.
    fn check(&self, account: &AccountId) -> Result<(), OrderReject> {
        if *account == self.owner {
            Ok(())
        } else {
            Err(OrderReject {
                code: OrderRejectCode::Forbidden,
                message: "this relay's Alpaca account belongs to another identity".into(),
            })
        }
    }

    fn publish(&self, orders: Vec<Order>, fills: Vec<Fill>) {
        if !orders.is_empty() || !fills.is_empty() {
            let _ = self.updates.send(Update { account: self.owner.clone(), orders, fills });
        }
    }

    /// Stores orders Alpaca returned and tells the streams about those that changed.
    fn absorb(&self, orders: Vec<Order>) {
        let changed: Vec<Order> = {
            let mut cache = self.cache.lock();
            orders.into_iter().filter(|o| cache.put(o.clone())).collect()
        };
        self.publish(changed, Vec::new());
    }

    /// One `trade_updates` event.
    fn on_trade_update(&self, update: TradeUpdate) {
        let now = now_ms();
        let key = update.execution_key();
        let (orders, fills) = {
            let mut cache = self.cache.lock();
            let fill = match update.fill(cache.next_fill + 1, now) {
                Some(fill) if key.as_ref().is_none_or(|k| cache.executions.insert(k.clone())) => {
                    cache.next_fill = fill.id;
                    cache.book(fill.clone());
                    vec![fill]
                }
                _ => Vec::new(),
            };
            // A `replaced` event carries the old order; the new one arrives as its own `new`.
            let orders: Vec<Order> =
                update.order.into_orders(now).into_iter().filter(|o| cache.put(o.clone())).collect();
            (orders, fill)
        };
        if !fills.is_empty() {
            self.refresh.notify_one();
        }
        self.publish(orders, fills);
    }

    /// After a (re)connect: the stream does not replay what happened while it was down, so the recent orders are
    /// fetched again; an order that filled meanwhile is reported (and its missed execution booked at the
    /// order's average price), then positions and the account are refreshed.
    async fn resync(&self) -> Result<(), RestError> {
        let wire = self.rest.recent_orders().await?;
        let now = now_ms();
        let fresh: Vec<Order> = wire.into_iter().flat_map(|o| o.into_orders(now)).collect();
        let (orders, fills) = {
            let mut cache = self.cache.lock();
            let mut fills = Vec::new();
            for order in &fresh {
                let before = cache.orders.get(&order.id).map_or(0.0, |o| o.filled_qty);
                let known = !cache.orders.is_empty();
                if known && order.filled_qty > before {
                    if let Some(price) = order.filled_avg_price {
                        cache.next_fill += 1;
                        let fill = Fill {
                            id: cache.next_fill,
                            order_id: order.id.clone(),
                            symbol: order.symbol.clone(),
                            side: order.side,
                            qty: order.filled_qty - before,
                            price,
                            commission: 0.0,
                            ts: order.updated_at,
                        };
                        cache.executions.insert(format!("{}:{}:resync", order.id, order.filled_qty));
                        cache.book(fill.clone());
                        fills.push(fill);
                    }
                }
            }
            // Oldest first into a newest-first map, so the order of `fresh` (newest first) is kept.
            let changed: Vec<Order> = fresh.iter().rev().filter(|o| cache.put((*o).clone())).cloned().collect();
            (changed, fills)
        };
        self.publish(orders, fills);
        self.refresh_holdings().await
    }

    async fn refresh_holdings(&self) -> Result<(), RestError> {
        let (positions, account) = tokio::join!(self.rest.positions(), self.rest.account());
        let positions: Vec<Position> = positions?.into_iter().map(Position::from).collect();
        let account = account?.to_account(&self.owner.0);
        let mut cache = self.cache.lock();
        cache.positions = positions;
        cache.account = Some(account);
        Ok(())
    }

    /// Positions and the account, every poll interval and soon after a fill.
    async fn poll_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.refresh.notified() => {}
            }
            if let Err(e) = self.refresh_holdings().await {
                tracing::debug!(error = %e, "Alpaca positions and account not refreshed");
            }
        }
    }

    /// Marks positions to ticks: P&L moves with the quote stream between polls.
    fn mark<'a>(&self, ticks: impl Iterator<Item = (&'a str, f64)>) {
        let mut cache = self.cache.lock();
        let Cache { positions, account, .. } = &mut *cache;
        if positions.is_empty() {
            return;
        }
        for (symbol, price) in ticks {
            let Some(p) = positions.iter_mut().find(|p| p.symbol == symbol) else { continue };
            let moved = p.qty * (price - p.current_price);
            p.current_price = price;
            p.market_value = p.qty * price;
            p.unrealized_pl = p.market_value - p.cost_basis;
            p.day_pl += moved;
            if let Some(a) = account.as_mut() {
                a.equity += moved;
                a.long_market_value += moved;
                a.day_pl += moved;
            }
        }
    }

    /// The symbols of positions and open orders, for the hub to keep subscribed.
    pub(crate) fn symbols(&self) -> Vec<String> {
        let cache = self.cache.lock();
        let mut out: Vec<String> = cache.positions.iter().map(|p| p.symbol.clone()).collect();
        out.extend(cache.orders.values().filter(|o| o.status.is_open()).map(|o| o.symbol.clone()));
        out.sort();
        out.dedup();
        out
    }

    fn empty_account(account: &AccountId) -> Account {
        Account {
            id: account.0.clone(),
            cash: 0.0,
            equity: 0.0,
            long_market_value: 0.0,
            buying_power: 0.0,
            realized_pl: 0.0,
            day_pl: 0.0,
        }
    }

    async fn do_place(&self, account: &AccountId, request: OrderRequest) -> Result<Order, OrderReject> {
        self.check(account)?;
        let client_id = request.client_order_id.clone().unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        if let Some(existing) =
            self.cache.lock().orders.values().find(|o| o.client_order_id.as_ref() == Some(&client_id))
        {
            return Ok(existing.clone());
        }
        let placed = self.rest.place(&wire::order_body(&request, &client_id)).await.map_err(|e| e.reject())?;
        Ok(self.take(placed))
    }

    /// Stores an order Alpaca answered with and returns its top-level part, as the cache now knows it (the
    /// stream may already have reported it further along).
    fn take(&self, wire: WireOrder) -> Order {
        let orders = wire.into_orders(now_ms());
        let first = orders[0].clone();
        self.absorb(orders);
        self.cache.lock().orders.get(&first.id).cloned().unwrap_or(first)
    }

    async fn do_cancel(&self, account: &AccountId, id: &str) -> Result<Order, OrderReject> {
        self.check(account)?;
        self.rest.cancel(id).await.map_err(|e| e.reject())?;
        // Alpaca confirms a cancel on the stream; the order as it stands now is the answer.
        let order = self.rest.order(id).await.map_err(|e| e.reject())?;
        Ok(self.take(order))
    }

    async fn do_replace(&self, account: &AccountId, id: &str, change: ReplaceRequest) -> Result<Order, OrderReject> {
        self.check(account)?;
        let order = self.rest.replace(id, &wire::replace_body(&change)).await.map_err(|e| e.reject())?;
        Ok(self.take(order))
    }
}

impl Broker for Alpaca {
    fn place(&self, account: &AccountId, request: OrderRequest) -> BoxFuture<'_, Result<Order, OrderReject>> {
        let account = account.clone();
        async move { self.do_place(&account, request).await }.boxed()
    }

    fn cancel(&self, account: &AccountId, id: &str) -> BoxFuture<'_, Result<Order, OrderReject>> {
        let (account, id) = (account.clone(), id.to_owned());
        async move { self.do_cancel(&account, &id).await }.boxed()
    }

    fn replace(
        &self,
        account: &AccountId,
        id: &str,
        change: ReplaceRequest,
    ) -> BoxFuture<'_, Result<Order, OrderReject>> {
        let (account, id) = (account.clone(), id.to_owned());
        async move { self.do_replace(&account, &id, change).await }.boxed()
    }

    fn orders(&self, account: &AccountId, statuses: Option<Vec<OrderStatus>>) -> BoxFuture<'_, Vec<Order>> {
        let orders = if self.check(account).is_ok() {
            let cache = self.cache.lock();
            cache.orders.values().filter(|o| statuses.as_ref().is_none_or(|s| s.contains(&o.status))).cloned().collect()
        } else {
            Vec::new()
        };
        futures::future::ready(orders).boxed()
    }

    fn positions(&self, account: &AccountId) -> BoxFuture<'_, Vec<Position>> {
        let positions = if self.check(account).is_ok() { self.cache.lock().positions.clone() } else { Vec::new() };
        futures::future::ready(positions).boxed()
    }

    fn account(&self, account: &AccountId) -> BoxFuture<'_, Account> {
        let cached = if self.check(account).is_ok() { self.cache.lock().account.clone() } else { None };
        futures::future::ready(cached.unwrap_or_else(|| Alpaca::empty_account(account))).boxed()
    }

    fn fills(&self, account: &AccountId, limit: usize) -> BoxFuture<'_, Vec<Fill>> {
        let fills = if self.check(account).is_ok() {
            self.cache.lock().fills.iter().take(limit).cloned().collect()
        } else {
            Vec::new()
        };
        futures::future::ready(fills).boxed()
    }

    fn updates(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    fn status(&self) -> BrokerStatus {
        self.status.lock().clone()
    }

    fn watched(&self) -> Vec<String> {
        self.symbols()
    }
}

/// Feeds every tick to [`Alpaca::mark`].
pub(crate) struct AlpacaMarks(pub(crate) Arc<Alpaca>);

impl Tap for AlpacaMarks {
    fn observe(&mut self, events: &[HubEvent], _recv_ms: i64) {
        let ticks = events
            .iter()
            .filter_map(|e| match e {
                HubEvent::Quotes(quotes) => Some(quotes.iter()),
                _ => None,
            })
            .flatten()
            .filter(|q| q.price.is_finite() && q.price > 0.0)
            .map(|q| (q.symbol.as_str(), q.price));
        self.0.mark(ticks);
    }
}
