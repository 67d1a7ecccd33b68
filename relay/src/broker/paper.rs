//! The built-in paper broker: the [`engine`](super::engine) behind a lock, made durable through the store's
//! [`Journal`] and fed every tick by the ingest loop ([`PaperTap`]).
//!
//! Every change is journalled (one transaction) before the caller hears of it; if the journal refuses a change,
//! the in-memory state is reloaded from the journal, so memory never claims a fill the disk does not have. The
//! journal write happens on the ingest loop for fills and trailing-stop moves: those are rare next to ticks, and
//! tick-exact stops need the answer before the next tick is looked at.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::{ready, BoxFuture, FutureExt};
use hamster_shared::api::BrokerStatus;
use hamster_shared::broker::{
    Account, Fill, Order, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, Position, ReplaceRequest, Side,
};
use hamster_shared::ProviderState;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::engine::{Book, Delta, Engine, Holding, Mark, PaperConfig};
use super::{AccountId, Broker, Update};
use crate::clock::now_ms;
use crate::hub::HubEvent;
use crate::ingest::Tap;
use crate::store::journal::{AccountChange, FillRow, OrderRow, PositionRow};
use crate::store::Journal;

/// The paper broker.
#[derive(Debug)]
pub(crate) struct Paper {
    engine: Mutex<Engine>,
    journal: Option<Journal>,
    updates: broadcast::Sender<Update>,
    /// When the broker opened (ms), for its status.
    started: i64,
}

/// Why the paper broker cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PaperError {
    #[error("cannot read the broker journal: {0}")]
    Load(#[from] crate::store::StoreError),
    #[error("the broker journal holds an unreadable order {id}: {source}")]
    Order { id: String, source: serde_json::Error },
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn unavailable() -> OrderReject {
    OrderReject { code: OrderRejectCode::Unavailable, message: "the broker could not record the change".into() }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The engine's change in the journal's terms.
fn to_change(delta: &Delta) -> AccountChange {
    AccountChange {
        account: delta.account.0.clone(),
        durable: delta.durable,
        cash: delta.cash,
        realized: delta.realized,
        orders: delta
            .orders
            .iter()
            .map(|o| OrderRow {
                id: o.id.clone(),
                status: o.status.as_str().to_owned(),
                created_at: o.created_at,
                body: serde_json::to_string(o).unwrap_or_default(),
            })
            .collect(),
        fills: delta
            .fills
            .iter()
            .map(|f| FillRow {
                id: f.id,
                order_id: f.order_id.clone(),
                symbol: f.symbol.clone(),
                side: side_name(f.side).to_owned(),
                qty: f.qty,
                price: f.price,
                commission: f.commission,
                ts: f.ts,
            })
            .collect(),
        positions: delta
            .holdings
            .iter()
            .map(|(symbol, h)| PositionRow {
                symbol: symbol.clone(),
                qty: h.qty,
                avg_cost: h.avg_cost,
                realized: h.realized,
            })
            .collect(),
    }
}

/// Rebuilds the engine's accounts from the journal.
fn load(journal: &Journal, engine: &mut Engine) -> Result<(), PaperError> {
    let (accounts, next_fill) = journal.load()?;
    engine.books.clear();
    engine.next_fill = next_fill;
    for a in accounts {
        let mut book = Book::new(a.cash);
        book.realized = a.realized;
        for o in a.orders {
            let order: Order =
                serde_json::from_str(&o.body).map_err(|source| PaperError::Order { id: o.id.clone(), source })?;
            book.orders.insert(o.id, order);
        }
        for p in a.positions {
            book.holdings.insert(
                p.symbol,
                Holding { qty: p.qty, avg_cost: p.avg_cost, realized: p.realized, ..Holding::default() },
            );
        }
        engine.books.insert(AccountId(a.account), book);
    }
    engine.orders_changed();
    Ok(())
}

impl Paper {
    /// Starts the paper broker, restoring every account from `journal` (in memory only without one).
    pub(crate) fn open(config: PaperConfig, journal: Option<Journal>) -> Result<Arc<Paper>, PaperError> {
        let mut engine = Engine::new(config);
        if let Some(j) = &journal {
            load(j, &mut engine)?;
        }
        let (updates, _) = broadcast::channel(1024);
        Ok(Arc::new(Paper { engine: Mutex::new(engine), journal, updates, started: now_ms() }))
    }

    /// Symbols the broker needs prices for: those of working orders and of open positions.
    fn watched_now(&self) -> BTreeSet<String> {
        let engine = self.engine.lock();
        let mut out = BTreeSet::new();
        for book in engine.books.values() {
            out.extend(book.orders.values().filter(|o| o.status.is_open()).map(|o| o.symbol.clone()));
            out.extend(book.holdings.iter().filter(|(_, h)| h.qty > 0.0).map(|(s, _)| s.clone()));
        }
        out
    }

    /// Makes `delta` durable, then tells subscribers. On a journal failure, memory goes back to what is on disk.
    fn commit(&self, engine: &mut Engine, delta: Delta) -> Result<(), OrderReject> {
        // A reset of an account with nothing in it still changes its cash: `durable` makes it count.
        if delta.is_empty() && !delta.durable {
            return Ok(());
        }
        if let Some(journal) = &self.journal {
            if let Err(e) = journal.apply(&to_change(&delta)) {
                tracing::error!(error = %e, account = %delta.account.0, "broker journal write failed; reloading");
                if let Err(e) = load(journal, engine) {
                    tracing::error!(error = %e, "broker journal reload failed");
                }
                return Err(unavailable());
            }
        }
        let _ = self.updates.send(Update { account: delta.account, orders: delta.orders, fills: delta.fills });
        Ok(())
    }

    pub(crate) fn place_now(&self, account: &AccountId, request: OrderRequest) -> Result<Order, OrderReject> {
        let mut engine = self.engine.lock();
        let (order, delta) = engine.place(account, request, &mut new_id, now_ms())?;
        self.commit(&mut engine, delta)?;
        Ok(order)
    }

    pub(crate) fn cancel_now(&self, account: &AccountId, id: &str) -> Result<Order, OrderReject> {
        let mut engine = self.engine.lock();
        let (order, delta) = engine.cancel(account, id, now_ms())?;
        self.commit(&mut engine, delta)?;
        Ok(order)
    }

    pub(crate) fn replace_now(
        &self,
        account: &AccountId,
        id: &str,
        change: ReplaceRequest,
    ) -> Result<Order, OrderReject> {
        let mut engine = self.engine.lock();
        let (order, delta) = engine.replace(account, id, change, &mut new_id, now_ms())?;
        self.commit(&mut engine, delta)?;
        Ok(order)
    }

    /// Starts the account over (see [`Engine::reset`]).
    pub(crate) fn reset_now(&self, account: &AccountId) -> Result<Account, OrderReject> {
        let mut engine = self.engine.lock();
        let delta = engine.reset(account, now_ms());
        self.commit(&mut engine, delta)?;
        Ok(engine.account(account))
    }

    pub(crate) fn orders_now(&self, account: &AccountId, statuses: Option<&[OrderStatus]>) -> Vec<Order> {
        self.engine.lock().orders(account, statuses)
    }

    pub(crate) fn positions_now(&self, account: &AccountId) -> Vec<Position> {
        self.engine.lock().positions(account)
    }

    pub(crate) fn account_now(&self, account: &AccountId) -> Account {
        self.engine.lock().account(account)
    }

    /// The ledger's fills (none without a journal: the ledger is the journal).
    pub(crate) fn fills_now(&self, account: &AccountId, limit: usize) -> Vec<Fill> {
        let Some(journal) = &self.journal else { return Vec::new() };
        match journal.fills(&account.0, limit) {
            Ok(rows) => rows
                .into_iter()
                .map(|f| Fill {
                    id: f.id,
                    order_id: f.order_id,
                    symbol: f.symbol,
                    side: if f.side == "sell" { Side::Sell } else { Side::Buy },
                    qty: f.qty,
                    price: f.price,
                    commission: f.commission,
                    ts: f.ts,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the broker ledger");
                Vec::new()
            }
        }
    }

    /// One ingested tick.
    fn on_quote(&self, symbol: &str, mark: Mark) {
        let mut engine = self.engine.lock();
        for delta in engine.on_quote(symbol, mark) {
            // A failed write has been logged and undone; the next tick tries again.
            let _ = self.commit(&mut engine, delta);
        }
    }
}

impl Broker for Paper {
    fn place(&self, account: &AccountId, request: OrderRequest) -> BoxFuture<'_, Result<Order, OrderReject>> {
        ready(self.place_now(account, request)).boxed()
    }

    fn cancel(&self, account: &AccountId, id: &str) -> BoxFuture<'_, Result<Order, OrderReject>> {
        ready(self.cancel_now(account, id)).boxed()
    }

    fn replace(
        &self,
        account: &AccountId,
        id: &str,
        change: ReplaceRequest,
    ) -> BoxFuture<'_, Result<Order, OrderReject>> {
        ready(self.replace_now(account, id, change)).boxed()
    }

    fn reset(&self, account: &AccountId) -> BoxFuture<'_, Result<Account, OrderReject>> {
        ready(self.reset_now(account)).boxed()
    }

    fn orders(&self, account: &AccountId, statuses: Option<Vec<OrderStatus>>) -> BoxFuture<'_, Vec<Order>> {
        ready(self.orders_now(account, statuses.as_deref())).boxed()
    }

    fn positions(&self, account: &AccountId) -> BoxFuture<'_, Vec<Position>> {
        ready(self.positions_now(account)).boxed()
    }

    fn account(&self, account: &AccountId) -> BoxFuture<'_, Account> {
        ready(self.account_now(account)).boxed()
    }

    fn fills(&self, account: &AccountId, limit: usize) -> BoxFuture<'_, Vec<Fill>> {
        ready(self.fills_now(account, limit)).boxed()
    }

    fn updates(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    fn status(&self) -> BrokerStatus {
        BrokerStatus {
            name: "paper".into(),
            live_money: false,
            state: ProviderState::Live,
            detail: self.journal.is_none().then(|| "in memory only: orders will not survive a restart".into()),
            since: self.started,
        }
    }

    fn watched(&self) -> Vec<String> {
        self.watched_now().into_iter().collect()
    }
}

/// The paper broker's seat on the ingest loop: it sees every tick, before any conflation.
#[derive(Debug, Clone)]
pub(crate) struct PaperTap(pub(crate) Arc<Paper>);

impl Tap for PaperTap {
    fn observe(&mut self, events: &[HubEvent], _recv_ms: i64) {
        for event in events {
            if let HubEvent::Quotes(quotes) = event {
                for q in quotes {
                    if q.price.is_finite() && q.price > 0.0 {
                        let mark = Mark { price: q.price, bid: q.bid, ask: q.ask, ts: q.ts };
                        self.0.on_quote(q.symbol.as_str(), mark);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hamster_shared::broker::{OrderClass, OrderType, TimeInForce};
    use hamster_shared::{Quote, Symbol};

    use super::*;

    fn quote(price: f64) -> HubEvent {
        HubEvent::Quotes(vec![Quote::new(Symbol::parse("AAPL").unwrap(), price, now_ms(), "sim")])
    }

    #[test]
    fn state_survives_a_reopen_to_the_bit_and_ticks_reach_the_engine_through_the_tap() {
        let dir = std::env::temp_dir().join(format!("hamster-paper-{}", std::process::id()));
        let path = dir.join("p.db");
        let _ = std::fs::remove_file(&path);
        let me = AccountId("alice".into());
        let (cash, orders) = {
            let paper = Paper::open(
                PaperConfig { commission: 0.35, ..Default::default() },
                Some(Journal::open(&path).unwrap()),
            )
            .unwrap();
            let mut tap = PaperTap(paper.clone());
            tap.observe(&[quote(187.13)], 0);
            let mut req = OrderRequest {
                symbol: "AAPL".into(),
                qty: Some(3.3),
                notional: None,
                side: Side::Buy,
                order_type: OrderType::Market,
                time_in_force: TimeInForce::Gtc,
                limit_price: None,
                stop_price: None,
                trail_price: None,
                trail_percent: None,
                order_class: OrderClass::Simple,
                take_profit: None,
                stop_loss: None,
                client_order_id: None,
            };
            assert_eq!(paper.place_now(&me, req.clone()).unwrap().status, OrderStatus::Filled);
            req.side = Side::Sell;
            req.order_type = OrderType::TrailingStop;
            req.trail_percent = Some(1.0);
            req.qty = Some(1.1);
            let trailing = paper.place_now(&me, req).unwrap();
            tap.observe(&[quote(190.0)], 0);
            assert_eq!(paper.orders_now(&me, None).iter().find(|o| o.id == trailing.id).unwrap().hwm, Some(190.0));
            (paper.account_now(&me).cash, paper.orders_now(&me, None))
        };
        let paper = Paper::open(PaperConfig::default(), Some(Journal::open(&path).unwrap())).unwrap();
        assert_eq!(paper.account_now(&me).cash.to_bits(), cash.to_bits());
        assert_eq!(paper.orders_now(&me, None), orders);
        assert_eq!(paper.positions_now(&me)[0].qty, 3.3);
        assert_eq!(paper.watched().into_iter().collect::<Vec<_>>(), ["AAPL"]);
        let fills = paper.fills_now(&me, 10);
        assert_eq!((fills.len(), fills[0].side, fills[0].qty), (1, Side::Buy, 3.3));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
