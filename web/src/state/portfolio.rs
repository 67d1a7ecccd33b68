//! The trading side of the model: the account, positions, orders and fills the relay's account stream reports,
//! the order ticket's outcome, and the toasts that announce fills and rejections.
//!
//! Owns three pure pieces, tested natively: the order list reducer ([`Portfolio::apply_server`] and
//! [`PortfolioAction`]), marking positions to market with the dashboard's own quote stream ([`Portfolio::mark`],
//! so P&L moves with every tick instead of the relay's once-a-second snapshots), and the ticket's validation
//! ([`TicketForm::validate`]), which catches what the relay would refuse for the form's shape before anything is
//! sent. What only the broker can know (buying power, a symbol it cannot route) comes back as `order_rejected` and
//! is pinned to the field it is about ([`field_of`]).

use crate::format::Fixed;
use hamster_shared::api::BrokerStatus;

use hamster_shared::broker::{
    Account, Fill, Order, OrderClass, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, OrderType, Position,
    Side, StopLoss, TakeProfit, TimeInForce,
};
use hamster_shared::{RequestId, ServerMessage, Symbol};

/// How long a toast stays up.
pub(crate) const TOAST_MS: i64 = 6_000;
/// At most this many toasts at once (the oldest goes first).
const MAX_TOASTS: usize = 4;
/// Fills kept for the history panel (the relay's ledger has them all).
const MAX_FILLS: usize = 200;
/// Every known order, by id: a `Vec` searched in order, not a map. The page knows a few hundred orders at most
/// (the open ones and [`MAX_CLOSED_ORDERS`] closed), and a map's code (one more instance of it in the wasm) weighs
/// more than the search.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Orders(Vec<Order>);

impl Orders {
    pub(crate) fn get(&self, id: &str) -> Option<&Order> {
        self.0.iter().find(|o| o.id == id)
    }

    fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Adds `order`, or replaces the known order with its id.
    fn insert(&mut self, order: Order) {
        match self.0.iter_mut().find(|o| o.id == order.id) {
            Some(known) => *known = order,
            None => self.0.push(order),
        }
    }

    fn values(&self) -> std::slice::Iter<'_, Order> {
        self.0.iter()
    }

    fn remove(&mut self, id: &str) {
        self.0.retain(|o| o.id != id);
    }
}

/// Closed orders kept besides the open ones.
const MAX_CLOSED_ORDERS: usize = 100;

/// A ticket field a message can be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Symbol,
    Amount,
    LimitPrice,
    StopPrice,
    Trail,
    TakeProfit,
    StopLoss,
    /// The order as a whole (nothing more specific applies).
    Form,
}

impl Field {
    /// Its name in `data-testid="ticket-error-…"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Field::Symbol => "symbol",
            Field::Amount => "amount",
            Field::LimitPrice => "limit",
            Field::StopPrice => "stop",
            Field::Trail => "trail",
            Field::TakeProfit => "take-profit",
            Field::StopLoss => "stop-loss",
            Field::Form => "form",
        }
    }
}

/// A message about one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub(crate) field: Field,
    pub(crate) message: String,
}

fn err(field: Field, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into() }
}

/// The field a broker rejection is about.
pub(crate) fn field_of(code: OrderRejectCode) -> Field {
    match code {
        OrderRejectCode::InsufficientBuyingPower | OrderRejectCode::InsufficientQty | OrderRejectCode::InvalidQty => {
            Field::Amount
        }
        OrderRejectCode::UnknownSymbol => Field::Symbol,
        OrderRejectCode::LimitPriceMissing => Field::LimitPrice,
        OrderRejectCode::StopPriceMissing => Field::StopPrice,
        OrderRejectCode::TrailMissing => Field::Trail,
        _ => Field::Form,
    }
}

/// What became of the ticket's last order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TicketOutcome {
    /// The `id` of the `place_order` awaiting its answer.
    pub(crate) pending: Option<RequestId>,
    /// The relay's refusal of the last order, pinned to a field.
    pub(crate) rejected: Option<FieldError>,
    /// The id of the last order the relay accepted.
    pub(crate) accepted: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToastKind {
    Fill,
    Rejection,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Toast {
    pub(crate) id: u64,
    pub(crate) kind: ToastKind,
    pub(crate) text: String,
    pub(crate) at_ms: i64,
}

/// The request id of the page's `subscribe_account`: a refusal of it means this page cannot trade (a credential
/// without an account), which the panel shows instead of a toast on every connect.
pub(crate) const ACCOUNT_REQUEST: &str = "account";

/// Trading changes that do not come from the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum PortfolioAction {
    /// Orders fetched over REST (open ones at subscription time).
    Orders(Vec<Order>),
    /// The ledger, newest first, fetched over REST.
    Fills(Vec<Fill>),
    /// Which broker takes the orders (from `/api/status`).
    Broker(BrokerStatus),
    /// The ticket sent a `place_order` with this id.
    TicketSent(RequestId),
    /// The ticket's fields changed: an old rejection no longer applies.
    TicketEdited,
    DismissToast(u64),
}

/// The account as the relay's stream reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Portfolio {
    pub(crate) account: Option<Account>,
    pub(crate) positions: Vec<Position>,
    /// Every known order by id.
    pub(crate) orders: Orders,
    /// Newest first.
    pub(crate) fills: Vec<Fill>,
    pub(crate) ticket: TicketOutcome,
    pub(crate) toasts: Vec<Toast>,
    next_toast: u64,
    /// Why the relay refused this page the account stream, if it did.
    pub(crate) refused: Option<String>,
    /// Which broker takes the orders, once the relay has said.
    pub(crate) broker: Option<BrokerStatus>,
    /// Bumped when an order reports a new fill: the page then refreshes the ledger from the relay.
    pub(crate) fills_rev: u64,
}

/// One position marked to the latest price the page has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PositionView {
    pub(crate) symbol: String,
    pub(crate) qty: f64,
    pub(crate) avg_entry_price: f64,
    pub(crate) price: f64,
    pub(crate) market_value: f64,
    pub(crate) unrealized_pl: f64,
    /// Unrealised P&L as a percentage of the cost basis.
    pub(crate) unrealized_pct: f64,
    pub(crate) day_pl: f64,
    /// Share of equity, in percent.
    pub(crate) allocation: f64,
}

/// The account summary with every position marked to market.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marked {
    pub(crate) cash: f64,
    pub(crate) equity: f64,
    pub(crate) buying_power: f64,
    pub(crate) day_pl: f64,
    pub(crate) unrealized_pl: f64,
    pub(crate) positions: Vec<PositionView>,
    /// Cash as a share of equity, in percent.
    pub(crate) cash_allocation: f64,
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "Bought",
        Side::Sell => "Sold",
    }
}

impl Portfolio {
    /// Applies a trading message; other messages are not its business.
    pub(crate) fn apply_server(&mut self, msg: ServerMessage, now_ms: i64) {
        match msg {
            ServerMessage::Order { id, order } => {
                if id.is_some() && id == self.ticket.pending {
                    self.ticket.pending = None;
                    self.ticket.rejected = None;
                    self.ticket.accepted = Some(order.id.clone());
                }
                self.upsert(*order, now_ms);
            }
            ServerMessage::OrderRejected { id: Some(RequestId::Str(id)), reject } if id == ACCOUNT_REQUEST => {
                self.refused = Some(format!("{} ({})", reject.message, reject.code.as_str()));
            }
            ServerMessage::OrderRejected { id, reject } => {
                let OrderReject { code, message } = reject;
                self.toast(ToastKind::Rejection, format!("Rejected: {message} ({})", code.as_str()), now_ms);
                if id.is_some() && id == self.ticket.pending {
                    self.ticket.pending = None;
                    self.ticket.rejected = Some(err(field_of(code), format!("{message} ({})", code.as_str())));
                }
            }
            ServerMessage::Positions { positions } => self.positions = positions,
            ServerMessage::Account { account } => {
                self.refused = None;
                self.account = Some(account);
            }
            _ => {}
        }
    }

    pub(crate) fn apply(&mut self, action: PortfolioAction, now_ms: i64) {
        match action {
            PortfolioAction::Orders(orders) => {
                for o in orders {
                    // Known orders may be newer than a REST answer that crossed a stream update.
                    if !self.orders.contains_key(&o.id) {
                        self.orders.insert(o);
                    }
                }
            }
            PortfolioAction::Fills(mut fills) => {
                fills.truncate(MAX_FILLS);
                self.fills = fills;
            }
            PortfolioAction::Broker(broker) => self.broker = Some(broker),
            PortfolioAction::TicketSent(id) => {
                self.ticket = TicketOutcome { pending: Some(id), rejected: None, accepted: None };
            }
            PortfolioAction::TicketEdited => self.ticket.rejected = None,
            PortfolioAction::DismissToast(id) => self.toasts.retain(|t| t.id != id),
        }
        self.expire(now_ms);
    }

    /// Drops toasts older than [`TOAST_MS`].
    pub(crate) fn expire(&mut self, now_ms: i64) {
        if self.toasts.iter().any(|t| now_ms - t.at_ms >= TOAST_MS) {
            self.toasts.retain(|t| now_ms - t.at_ms < TOAST_MS);
        }
    }

    fn toast(&mut self, kind: ToastKind, text: String, now_ms: i64) {
        self.next_toast += 1;
        self.toasts.push(Toast { id: self.next_toast, kind, text, at_ms: now_ms });
        if self.toasts.len() > MAX_TOASTS {
            self.toasts.remove(0);
        }
    }

    /// Records an order's new state; a fill (the filled quantity grew) is toasted once however often the order is
    /// reported (the command's answer and the account stream both carry it).
    fn upsert(&mut self, order: Order, now_ms: i64) {
        let before = self.orders.get(&order.id).map_or(0.0, |o| o.filled_qty);
        if order.filled_qty > before + 1e-12 {
            let price = order.filled_avg_price.map(|p| format!(" @ {}", Fixed(p, 2))).unwrap_or_default();
            let text =
                format!("{} {} {}{price}", side_word(order.side), trim_qty(order.filled_qty - before), order.symbol);
            self.toast(ToastKind::Fill, text, now_ms);
            self.fills_rev += 1;
        }
        if order.status == OrderStatus::Rejected && self.orders.get(&order.id).map(|o| o.status) != Some(order.status) {
            let why = order.reject.as_ref().map(|r| r.message.clone()).unwrap_or_default();
            self.toast(ToastKind::Rejection, format!("Rejected: {} {why}", order.symbol), now_ms);
        }
        self.orders.insert(order);
        let closed = self.orders.values().filter(|o| !o.status.is_open()).count();
        if closed > MAX_CLOSED_ORDERS {
            let mut old: Vec<(i64, String)> =
                self.orders.values().filter(|o| !o.status.is_open()).map(|o| (o.updated_at, o.id.clone())).collect();
            crate::sort::sort_by(&mut old, Ord::cmp);
            for (_, id) in old.into_iter().take(closed - MAX_CLOSED_ORDERS) {
                self.orders.remove(&id);
            }
        }
    }

    /// Working orders, newest first.
    pub(crate) fn open_orders(&self) -> Vec<&Order> {
        let mut open: Vec<&Order> = self.orders.values().filter(|o| o.status.is_open()).collect();
        crate::sort::sort_by(&mut open, |a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        open
    }

    /// The account and positions marked with `price_of` (the page's latest price of a symbol, when it has one;
    /// otherwise the relay's mark stands).
    pub(crate) fn mark(&self, price_of: impl Fn(&str) -> Option<f64>) -> Option<Marked> {
        let account = self.account.as_ref()?;
        let mut moved = 0.0;
        let mut positions: Vec<PositionView> = self
            .positions
            .iter()
            .map(|p| {
                let price = price_of(&p.symbol).filter(|x| x.is_finite() && *x > 0.0).unwrap_or(p.current_price);
                let delta = p.qty * (price - p.current_price);
                moved += delta;
                let unrealized_pl = p.unrealized_pl + delta;
                let basis = p.qty * p.avg_entry_price;
                PositionView {
                    symbol: p.symbol.clone(),
                    qty: p.qty,
                    avg_entry_price: p.avg_entry_price,
                    price,
                    market_value: p.qty * price,
                    unrealized_pl,
                    unrealized_pct: if basis > 0.0 { unrealized_pl / basis * 100.0 } else { 0.0 },
                    day_pl: p.day_pl + delta,
                    allocation: 0.0,
                }
            })
            .collect();
        let long: f64 = positions.iter().map(|p| p.market_value).sum();
        let equity = account.cash + long;
        let share = |v: f64| if equity > 0.0 { v / equity * 100.0 } else { 0.0 };
        for p in &mut positions {
            p.allocation = share(p.market_value);
        }
        // Largest first; equal values by symbol, so the order is total.
        crate::sort::sort_by(&mut positions, |a, b| {
            b.market_value.total_cmp(&a.market_value).then_with(|| a.symbol.cmp(&b.symbol))
        });
        Some(Marked {
            cash: account.cash,
            equity,
            buying_power: account.buying_power,
            day_pl: account.day_pl + moved,
            unrealized_pl: positions.iter().map(|p| p.unrealized_pl).sum(),
            positions,
            cash_allocation: share(account.cash),
        })
    }
}

/// A quantity without trailing zeros (`1`, `0.25`).
pub(crate) fn trim_qty(q: f64) -> String {
    let s = Fixed(q, 8).to_string();
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The ticket as typed: text fields stay text until [`TicketForm::validate`] reads them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TicketForm {
    pub(crate) symbol: String,
    pub(crate) side: Side,
    pub(crate) order_type: OrderType,
    /// The amount is cash to spend or raise, not a quantity.
    pub(crate) notional: bool,
    pub(crate) amount: String,
    pub(crate) limit_price: String,
    pub(crate) stop_price: String,
    pub(crate) trail: String,
    /// The trail is a percentage, not a price distance.
    pub(crate) trail_percent: bool,
    pub(crate) time_in_force: TimeInForce,
    pub(crate) order_class: OrderClass,
    pub(crate) take_profit: String,
    pub(crate) stop_loss: String,
}

impl TicketForm {
    pub(crate) fn new(symbol: &str, side: Side) -> TicketForm {
        TicketForm {
            symbol: symbol.to_owned(),
            side,
            order_type: OrderType::Market,
            notional: false,
            amount: "1".to_owned(),
            limit_price: String::new(),
            stop_price: String::new(),
            trail: String::new(),
            trail_percent: true,
            time_in_force: TimeInForce::Day,
            order_class: OrderClass::Simple,
            take_profit: String::new(),
            stop_loss: String::new(),
        }
    }

    pub(crate) fn needs_limit(&self) -> bool {
        matches!(self.order_type, OrderType::Limit | OrderType::StopLimit)
    }

    pub(crate) fn needs_stop(&self) -> bool {
        matches!(self.order_type, OrderType::Stop | OrderType::StopLimit)
    }

    pub(crate) fn needs_trail(&self) -> bool {
        self.order_type == OrderType::TrailingStop
    }

    pub(crate) fn has_legs(&self) -> bool {
        self.order_class != OrderClass::Simple
    }

    /// The order request, or every problem with the form, each pinned to its field.
    pub(crate) fn validate(&self, client_order_id: Option<String>) -> Result<OrderRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let symbol = match Symbol::parse(&self.symbol) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(err(Field::Symbol, e.to_string()));
                None
            }
        };
        let amount = positive(&self.amount, Field::Amount, if self.notional { "amount" } else { "quantity" });
        let amount = amount.map_err(|e| errors.push(e)).ok();
        if self.notional && self.order_type != OrderType::Market {
            errors.push(err(Field::Amount, "an amount of cash works with market orders only"));
        }
        if self.notional && self.has_legs() {
            errors.push(err(Field::Amount, "oco and bracket orders need a quantity"));
        }
        let mut price = |needed: bool, text: &str, field: Field, what: &str| -> Option<f64> {
            if !needed {
                return None;
            }
            positive(text, field, what).map_err(|e| errors.push(e)).ok()
        };
        let limit_price = price(self.needs_limit(), &self.limit_price, Field::LimitPrice, "limit price");
        let stop_price = price(self.needs_stop(), &self.stop_price, Field::StopPrice, "stop price");
        let trail = price(self.needs_trail(), &self.trail, Field::Trail, "trail");
        let legs = self.has_legs();
        let take_profit = price(legs, &self.take_profit, Field::TakeProfit, "take-profit price");
        let stop_loss = price(legs, &self.stop_loss, Field::StopLoss, "stop-loss price");
        if self.trail_percent && trail.is_some_and(|t| t >= 100.0) {
            errors.push(err(Field::Trail, "a trail in percent must be below 100"));
        }
        if let (Some(tp), Some(sl)) = (take_profit, stop_loss) {
            // The exits close the position: a long one (opened by a buy) takes profit above its stop.
            let long = match self.order_class {
                OrderClass::Oco => self.side == Side::Sell,
                _ => self.side == Side::Buy,
            };
            if long && tp <= sl {
                errors.push(err(Field::TakeProfit, "the take-profit must be above the stop-loss"));
            } else if !long && tp >= sl {
                errors.push(err(Field::TakeProfit, "the take-profit must be below the stop-loss"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let Some(symbol) = symbol else { return Err(vec![err(Field::Symbol, "no symbol")]) };
        let (trail_price, trail_percent) = match (trail, self.trail_percent) {
            (Some(t), true) => (None, Some(t)),
            (Some(t), false) => (Some(t), None),
            (None, _) => (None, None),
        };
        Ok(OrderRequest {
            symbol: symbol.as_str().to_owned(),
            qty: if self.notional { None } else { amount },
            notional: if self.notional { amount } else { None },
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            limit_price,
            stop_price,
            trail_price,
            trail_percent,
            order_class: self.order_class,
            take_profit: take_profit.map(|limit_price| TakeProfit { limit_price }),
            stop_loss: stop_loss.map(|stop_price| StopLoss { stop_price, limit_price: None }),
            client_order_id,
        })
    }
}

/// A positive, finite number typed in a field.
fn positive(text: &str, field: Field, what: &str) -> Result<f64, FieldError> {
    let text = text.trim().replace(',', "");
    if text.is_empty() {
        return Err(err(field, format!("enter a {what}")));
    }
    match crate::format::number(&text) {
        Some(x) if x > 0.0 => Ok(x),
        Some(_) => Err(err(field, format!("the {what} must be above zero"))),
        None => Err(err(field, format!("the {what} must be a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn order(id: &str, status: OrderStatus, filled: f64) -> Order {
        Order {
            id: id.into(),
            client_order_id: None,
            symbol: "AAPL".into(),
            qty: Some(2.0),
            notional: None,
            filled_qty: filled,
            filled_avg_price: (filled > 0.0).then_some(100.0),
            side: Side::Buy,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Day,
            order_class: OrderClass::Simple,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            trail_percent: None,
            hwm: None,
            parent_id: None,
            status,
            reject: None,
            triggered: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn order_msg(id: Option<RequestId>, o: Order) -> ServerMessage {
        ServerMessage::Order { id, order: Box::new(o) }
    }

    fn account(cash: f64, day_pl: f64) -> Account {
        Account {
            id: "local".into(),
            cash,
            equity: 0.0,
            long_market_value: 0.0,
            buying_power: cash,
            realized_pl: 0.0,
            day_pl,
        }
    }

    fn position(symbol: &str, qty: f64, avg: f64, price: f64) -> Position {
        Position {
            symbol: symbol.into(),
            qty,
            avg_entry_price: avg,
            cost_basis: qty * avg,
            current_price: price,
            market_value: qty * price,
            unrealized_pl: qty * (price - avg),
            realized_pl: 0.0,
            day_pl: qty * (price - avg),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fill_is_toasted_once_though_reported_twice_and_asks_for_the_ledger() {
        let mut p = Portfolio::default();
        let req = RequestId::Str("t1".into());
        p.apply(PortfolioAction::TicketSent(req.clone()), 0);
        p.apply_server(order_msg(Some(req), order("o1", OrderStatus::Filled, 2.0)), 10);
        p.apply_server(order_msg(None, order("o1", OrderStatus::Filled, 2.0)), 11);
        assert_eq!(p.toasts.len(), 1);
        assert_eq!(p.toasts[0].kind, ToastKind::Fill);
        assert_eq!(p.toasts[0].text, "Bought 2 AAPL @ 100.00");
        assert_eq!(p.fills_rev, 1);
        assert_eq!(p.ticket, TicketOutcome { pending: None, rejected: None, accepted: Some("o1".into()) });
        assert!(p.open_orders().is_empty());
        p.expire(10 + TOAST_MS);
        assert!(p.toasts.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_ticket_shows_its_own_rejection_next_to_the_field_it_is_about() {
        let mut p = Portfolio::default();
        let mine = RequestId::Str("t1".into());
        p.apply(PortfolioAction::TicketSent(mine.clone()), 0);
        let reject = |code| OrderReject { code, message: "needs 1000.00 but cash is 5.00".into() };
        // Someone else's rejection (a cancel) is toasted but leaves the ticket waiting.
        p.apply_server(
            ServerMessage::OrderRejected {
                id: Some(RequestId::Num(9)),
                reject: reject(OrderRejectCode::NotCancelable),
            },
            1,
        );
        assert_eq!(p.ticket.pending, Some(mine.clone()));
        p.apply_server(
            ServerMessage::OrderRejected { id: Some(mine), reject: reject(OrderRejectCode::InsufficientBuyingPower) },
            2,
        );
        let shown = p.ticket.rejected.clone().expect("pinned");
        assert_eq!(shown.field, Field::Amount);
        assert!(shown.message.contains("insufficient_buying_power"));
        assert_eq!(p.toasts.len(), 2);
        assert!(p.toasts.iter().all(|t| t.kind == ToastKind::Rejection));
        p.apply(PortfolioAction::TicketEdited, 3);
        assert_eq!(p.ticket.rejected, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_refused_account_stream_is_a_state_not_a_toast() {
        let mut p = Portfolio::default();
        let reject = OrderReject { code: OrderRejectCode::Unauthorized, message: "this token has no `sub`".into() };
        p.apply_server(ServerMessage::OrderRejected { id: Some(RequestId::Str(ACCOUNT_REQUEST.into())), reject }, 0);
        assert!(p.toasts.is_empty());
        assert_eq!(p.refused.as_deref(), Some("this token has no `sub` (unauthorized)"));
        p.apply_server(ServerMessage::Account { account: account(1.0, 0.0) }, 1);
        assert_eq!(p.refused, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn open_orders_follow_status_changes_and_rest_never_overwrites_the_stream() {
        let mut p = Portfolio::default();
        p.apply_server(order_msg(None, order("o1", OrderStatus::Accepted, 0.0)), 0);
        assert_eq!(p.open_orders().len(), 1);
        // A REST answer that crossed the cancel does not bring the order back.
        p.apply_server(order_msg(None, order("o1", OrderStatus::Canceled, 0.0)), 1);
        p.apply(PortfolioAction::Orders(vec![order("o1", OrderStatus::Accepted, 0.0)]), 2);
        assert!(p.open_orders().is_empty());
        p.apply(PortfolioAction::Orders(vec![order("o2", OrderStatus::Held, 0.0)]), 2);
        assert_eq!(p.open_orders().iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["o2"]);
        assert!(p.toasts.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn positions_are_marked_with_the_page_s_latest_price() {
        let mut p = Portfolio::default();
        assert_eq!(p.mark(|_| None), None);
        p.apply_server(ServerMessage::Account { account: account(800.0, 20.0) }, 0);
        p.apply_server(ServerMessage::Positions { positions: vec![position("AAPL", 2.0, 90.0, 100.0)] }, 0);
        let relay = p.mark(|_| None).expect("account known");
        assert_eq!((relay.equity, relay.day_pl, relay.positions[0].unrealized_pl), (1000.0, 20.0, 20.0));
        // A tick at 110 moves value, unrealised and day P&L by 2 × 10 before the relay's next snapshot.
        let live = p.mark(|s| (s == "AAPL").then_some(110.0)).expect("account known");
        let pos = &live.positions[0];
        assert_eq!((pos.market_value, pos.unrealized_pl, pos.day_pl), (220.0, 40.0, 40.0));
        assert!((pos.unrealized_pct - 40.0 / 180.0 * 100.0).abs() < 1e-9);
        assert_eq!((live.equity, live.day_pl), (1020.0, 40.0));
        assert!((pos.allocation + live.cash_allocation - 100.0).abs() < 1e-9);
        // A nonsense price is ignored.
        assert_eq!(p.mark(|_| Some(f64::NAN)).map(|m| m.equity), Some(1000.0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_ticket_validates_what_each_order_type_needs() {
        let mut f = TicketForm::new("aapl", Side::Buy);
        let req = f.validate(Some("c1".into())).expect("a market buy of 1");
        assert_eq!((req.symbol.as_str(), req.qty, req.order_type), ("AAPL", Some(1.0), OrderType::Market));
        f.order_type = OrderType::StopLimit;
        f.amount = "0".into();
        let fields: Vec<Field> = f.validate(None).unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, [Field::Amount, Field::LimitPrice, Field::StopPrice]);
        f.amount = "2".into();
        f.limit_price = "101".into();
        f.stop_price = "100.5".into();
        let req = f.validate(None).expect("complete stop-limit");
        assert_eq!((req.limit_price, req.stop_price), (Some(101.0), Some(100.5)));
        // Notional only with market orders; a trail in percent under 100.
        f.notional = true;
        assert_eq!(f.validate(None).unwrap_err()[0].field, Field::Amount);
        f.order_type = OrderType::TrailingStop;
        f.notional = false;
        f.trail = "150".into();
        assert_eq!(f.validate(None).unwrap_err()[0].field, Field::Trail);
        f.trail_percent = false;
        assert_eq!(f.validate(None).expect("a 150 trail").trail_price, Some(150.0));
        // A bracket buy takes profit above its stop-loss.
        f.order_type = OrderType::Market;
        f.order_class = OrderClass::Bracket;
        f.take_profit = "90".into();
        f.stop_loss = "95".into();
        assert_eq!(f.validate(None).unwrap_err()[0].field, Field::TakeProfit);
        f.take_profit = "110".into();
        let req = f.validate(None).expect("bracket");
        assert_eq!(req.take_profit, Some(TakeProfit { limit_price: 110.0 }));
        f.symbol = "no way".into();
        assert_eq!(f.validate(None).unwrap_err()[0].field, Field::Symbol);
    }
}
