//! The paper broker's matching engine: accounts, orders, positions and the fill rules, as plain data and pure
//! functions of (state, request or tick, time). No I/O, no clock, no locks: the caller ([`super::paper`]) owns
//! those, which is what lets every rule be unit-tested tick by tick.
//!
//! Rules (docs/protocol.md, "Paper broker"):
//! * buys fill at the ask and sells at the bid when the quote has them, else at the last price, moved against the
//!   trader by the configured slippage; a flat commission is charged per fill;
//! * stops trigger on the last price; a triggered stop works as a market order, a stop-limit as a limit order;
//! * a trailing stop tracks its best price since it started working (the high-water mark for a sell) and fills on
//!   the first tick that moves back by the trail;
//! * an order fills whole on the first tick that allows it (the paper book has unlimited depth);
//! * no short selling and no margin: a sell needs the position, a buy needs the cash (buying power is cash less
//!   what open buy orders may spend).
//!
//! Every operation returns a [`Delta`]: what changed, for one account, to be made durable in one transaction
//! before anyone is told.

use std::collections::{BTreeMap, HashMap};

use hamster_shared::broker::{
    Account, Fill, Order, OrderClass, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, OrderType, Position,
    ReplaceRequest, Side, TimeInForce,
};
use hamster_shared::Symbol;

use super::AccountId;

/// Quantities and cash below this are zero (fractional crypto quantities are fine above it).
const EPS: f64 = 1e-9;
const DAY_MS: i64 = 86_400_000;

/// The paper broker's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PaperConfig {
    pub(crate) starting_cash: f64,
    /// Price moved against the trader on every fill, in basis points.
    pub(crate) slippage_bps: f64,
    /// Charged per fill, in account currency.
    pub(crate) commission: f64,
}

impl Default for PaperConfig {
    fn default() -> Self {
        PaperConfig { starting_cash: 100_000.0, slippage_bps: 0.0, commission: 0.0 }
    }
}

/// A holding as kept (marking to market happens on read).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Holding {
    pub(crate) qty: f64,
    pub(crate) avg_cost: f64,
    pub(crate) realized: f64,
    /// The UTC day (days since the epoch) `pl_at_day_start` belongs to; 0 until the first price of a day (after a
    /// restart, the day starts at the first price seen). Not journalled: it follows from the prices.
    pub(crate) day: i64,
    /// The holding's total P&L (unrealised at the day's first price, plus realised) when its day started.
    pub(crate) pl_at_day_start: f64,
}

impl Holding {
    /// Realised plus unrealised P&L at `price`.
    fn total_pl(&self, price: f64) -> f64 {
        self.qty * (price - self.avg_cost) + self.realized
    }

    /// The P&L since the day started, at `price`; nothing for a holding whose day has not started.
    fn day_pl(&self, price: f64, today: i64) -> f64 {
        if self.day == today {
            self.total_pl(price) - self.pl_at_day_start
        } else {
            0.0
        }
    }
}

/// One account's book.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Book {
    pub(crate) cash: f64,
    pub(crate) realized: f64,
    pub(crate) holdings: BTreeMap<String, Holding>,
    pub(crate) orders: BTreeMap<String, Order>,
}

impl Book {
    pub(crate) fn new(cash: f64) -> Book {
        Book { cash, realized: 0.0, holdings: BTreeMap::new(), orders: BTreeMap::new() }
    }
}

/// The last quote of a symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mark {
    pub(crate) price: f64,
    pub(crate) bid: Option<f64>,
    pub(crate) ask: Option<f64>,
    pub(crate) ts: i64,
}

impl Mark {
    fn fill_price(&self, side: Side) -> f64 {
        let quoted = match side {
            Side::Buy => self.ask,
            Side::Sell => self.bid,
        };
        quoted.filter(|p| p.is_finite() && *p > 0.0).unwrap_or(self.price)
    }
}

/// What one operation changed in one account, to be journalled atomically.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delta {
    pub(crate) account: AccountId,
    /// Orders whose status, fill or trailing stop changed (or that are new).
    pub(crate) orders: Vec<Order>,
    pub(crate) fills: Vec<Fill>,
    /// Holdings whose quantity changed; a zero quantity means closed.
    pub(crate) holdings: Vec<(String, Holding)>,
    pub(crate) cash: f64,
    pub(crate) realized: f64,
    /// Whether anything but a trailing stop's move or a stop's trigger changed: those may be lost to a power cut
    /// (not to a killed process) without harm, so they need no flush to disk of their own.
    pub(crate) durable: bool,
}

impl Delta {
    fn new(account: &AccountId, book: &Book) -> Delta {
        Delta {
            account: account.clone(),
            orders: Vec::new(),
            fills: Vec::new(),
            holdings: Vec::new(),
            cash: book.cash,
            realized: book.realized,
            durable: false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.orders.is_empty() && self.fills.is_empty() && self.holdings.is_empty()
    }

    fn touch(&mut self, order: &Order) {
        self.durable = true;
        self.touch_soft(order);
    }

    /// Records a change that needs no flush of its own (see [`Delta::durable`]).
    fn touch_soft(&mut self, order: &Order) {
        match self.orders.iter_mut().find(|o| o.id == order.id) {
            Some(slot) => *slot = order.clone(),
            None => self.orders.push(order.clone()),
        }
    }
}

fn reject(code: OrderRejectCode, message: impl Into<String>) -> OrderReject {
    OrderReject { code, message: message.into() }
}

fn positive(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite() && *v > 0.0)
}

/// One symbol's working orders (by account) and its wake-up band.
#[derive(Debug, Clone, Default)]
struct Working {
    holders: Vec<(AccountId, Vec<String>)>,
    gate: Gate,
}

/// The prices (and the day) at which a tick can change some working order of a symbol. Each condition is
/// compared with the price the engine itself compares: stops and trailing stops with the last price, buy limits
/// with the price a buy fills at (the ask), sell limits with the bid. A tick that reaches none of the bounds, on
/// a day no `day` order has outlived, changes nothing.
#[derive(Debug, Clone, Copy)]
struct Gate {
    /// Some order changes at any price (a market order, a triggered stop, a trailing stop not yet started).
    always: bool,
    /// Wake when the last price is at or below `last_lo`, or at or above `last_hi`.
    last_lo: f64,
    last_hi: f64,
    /// Wake when a buy would fill at or below `buy_lo`.
    buy_lo: f64,
    /// Wake when a sell would fill at or above `sell_hi`.
    sell_hi: f64,
    /// The earliest day a `day` order on the symbol was placed on.
    first_day: i64,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::CLOSED
    }
}

impl Gate {
    /// No order: no tick wakes it.
    const CLOSED: Gate = Gate {
        always: false,
        last_lo: f64::NEG_INFINITY,
        last_hi: f64::INFINITY,
        buy_lo: f64::NEG_INFINITY,
        sell_hi: f64::INFINITY,
        first_day: i64::MAX,
    };

    /// Widens the band so that every tick that could change `o` wakes it (ties wake too).
    fn widen(&mut self, o: &Order) {
        let limit = |gate: &mut Gate| match (o.side, o.limit_price) {
            (Side::Buy, Some(l)) => gate.buy_lo = gate.buy_lo.max(l),
            (Side::Sell, Some(l)) => gate.sell_hi = gate.sell_hi.min(l),
            (_, None) => gate.always = true,
        };
        match o.order_type {
            OrderType::Market => self.always = true,
            OrderType::Limit => limit(self),
            OrderType::Stop if o.triggered => self.always = true,
            OrderType::StopLimit if o.triggered => limit(self),
            OrderType::Stop | OrderType::StopLimit => match (o.side, o.stop_price) {
                (Side::Buy, Some(s)) => self.last_hi = self.last_hi.min(s),
                (Side::Sell, Some(s)) => self.last_lo = self.last_lo.max(s),
                (_, None) => self.always = true,
            },
            // A trailing stop changes on a new best price (its mark moves) or when the price reaches its stop.
            OrderType::TrailingStop => match (o.side, o.hwm, o.stop_price) {
                (Side::Sell, Some(best), Some(stop)) => {
                    self.last_lo = self.last_lo.max(stop);
                    self.last_hi = self.last_hi.min(best);
                }
                (Side::Buy, Some(best), Some(stop)) => {
                    self.last_lo = self.last_lo.max(best);
                    self.last_hi = self.last_hi.min(stop);
                }
                _ => self.always = true,
            },
        }
        if o.time_in_force == TimeInForce::Day {
            self.first_day = self.first_day.min(o.created_at.div_euclid(DAY_MS));
        }
    }

    fn wakes(&self, mark: Mark) -> bool {
        self.always
            || mark.price <= self.last_lo
            || mark.price >= self.last_hi
            || mark.fill_price(Side::Buy) <= self.buy_lo
            || mark.fill_price(Side::Sell) >= self.sell_hi
            || mark.ts.div_euclid(DAY_MS) > self.first_day
    }
}

/// All accounts and the last quotes.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) config: PaperConfig,
    pub(crate) books: HashMap<AccountId, Book>,
    pub(crate) marks: HashMap<String, Mark>,
    pub(crate) next_fill: i64,
    /// For each symbol with working orders: which orders of which accounts, and the prices beyond which a tick
    /// can change any of them. A tick inside that band costs one lookup; only a tick that can trigger, fill,
    /// move a trailing stop or expire something looks at the orders. Rebuilt after anything that may open or
    /// close an order.
    working: HashMap<String, Working>,
    working_stale: bool,
    /// Tests compare the gated engine with one that looks at every order on every tick.
    #[cfg(test)]
    pub(crate) ungated: bool,
    /// The latest UTC day a price arrived on: day P&L is about this day.
    today: i64,
}

impl Engine {
    pub(crate) fn new(config: PaperConfig) -> Engine {
        Engine {
            config,
            books: HashMap::new(),
            marks: HashMap::new(),
            next_fill: 1,
            working: HashMap::new(),
            working_stale: true,
            #[cfg(test)]
            ungated: false,
            today: 0,
        }
    }

    /// Marks the working-symbol index for a rebuild (after a restore, or any change to orders).
    pub(crate) fn orders_changed(&mut self) {
        self.working_stale = true;
    }

    fn book(&mut self, account: &AccountId) -> &mut Book {
        let cash = self.config.starting_cash;
        self.books.entry(account.clone()).or_insert_with(|| Book::new(cash))
    }

    /// Validates and accepts an order, filling it at once if the last quote allows.
    pub(crate) fn place(
        &mut self,
        account: &AccountId,
        req: OrderRequest,
        id: &mut dyn FnMut() -> String,
        now: i64,
    ) -> Result<(Order, Delta), OrderReject> {
        if let Some(c) = req.client_order_id.as_ref() {
            let book = self.book(account);
            if let Some(existing) = book.orders.values().find(|o| o.client_order_id.as_ref() == Some(c)) {
                return Ok((existing.clone(), Delta::new(account, book)));
            }
        }
        let symbol = Symbol::parse(&req.symbol)
            .map_err(|e| reject(OrderRejectCode::UnknownSymbol, format!("{}: {e}", req.symbol)))?
            .as_str()
            .to_owned();
        let orders = self.validate(account, &req, &symbol, id, now)?;
        let first = orders[0].id.clone();
        let book = self.book(account);
        let mut delta = Delta::new(account, book);
        for order in orders {
            delta.touch(&order);
            book.orders.insert(order.id.clone(), order);
        }
        if let Some(mark) = self.marks.get(&symbol).copied() {
            self.match_symbol(account, &symbol, mark, None, &mut delta);
        }
        // IOC: what could not fill against the quote in hand is cancelled.
        let book = self.book(account);
        if let Some(o) = book.orders.get_mut(&first) {
            if o.time_in_force == TimeInForce::Ioc && o.status.is_open() {
                o.status = OrderStatus::Canceled;
                o.updated_at = now;
                let o = o.clone();
                delta.touch(&o);
                cancel_children(book, &first, now, &mut delta);
            }
        }
        let order = self.books[account].orders[&first].clone();
        self.working_stale = true;
        Ok((order, delta))
    }

    /// The checks before acceptance; returns the order and its linked legs.
    fn validate(
        &mut self,
        account: &AccountId,
        req: &OrderRequest,
        symbol: &str,
        id: &mut dyn FnMut() -> String,
        now: i64,
    ) -> Result<Vec<Order>, OrderReject> {
        use OrderRejectCode::*;
        let qty = match (req.qty, req.notional) {
            (Some(_), Some(_)) => return Err(reject(InvalidQty, "give qty or notional, not both")),
            (None, None) => return Err(reject(InvalidQty, "qty or notional is required")),
            (Some(q), None) => Some(positive(Some(q)).ok_or_else(|| reject(InvalidQty, "qty must be positive"))?),
            (None, Some(n)) => {
                positive(Some(n)).ok_or_else(|| reject(InvalidQty, "notional must be positive"))?;
                if req.order_type != OrderType::Market || req.order_class != OrderClass::Simple {
                    return Err(reject(InvalidOrder, "notional is for simple market orders only"));
                }
                None
            }
        };
        for (name, v) in [
            ("limit_price", req.limit_price),
            ("stop_price", req.stop_price),
            ("trail_price", req.trail_price),
            ("trail_percent", req.trail_percent),
        ] {
            if v.is_some() && positive(v).is_none() {
                return Err(reject(InvalidOrder, format!("{name} must be positive")));
            }
        }
        let needs_limit = matches!(req.order_type, OrderType::Limit | OrderType::StopLimit);
        let limit = req.limit_price.or(if req.order_class == OrderClass::Oco {
            req.take_profit.map(|t| t.limit_price)
        } else {
            None
        });
        if needs_limit && limit.is_none() {
            return Err(reject(LimitPriceMissing, "limit and stop_limit orders need limit_price"));
        }
        if matches!(req.order_type, OrderType::Stop | OrderType::StopLimit) && req.stop_price.is_none() {
            return Err(reject(StopPriceMissing, "stop and stop_limit orders need stop_price"));
        }
        if req.order_type == OrderType::TrailingStop {
            if req.trail_price.is_some() == req.trail_percent.is_some() {
                return Err(reject(TrailMissing, "trailing_stop orders need one of trail_price or trail_percent"));
            }
            if req.trail_percent.is_some_and(|p| p >= 100.0) {
                return Err(reject(InvalidOrder, "trail_percent must be below 100"));
            }
        }
        if req.order_class != OrderClass::Simple {
            let (Some(tp), Some(sl)) = (req.take_profit, req.stop_loss) else {
                return Err(reject(InvalidOrder, "oco and bracket orders need take_profit and stop_loss"));
            };
            if positive(Some(tp.limit_price)).is_none()
                || positive(Some(sl.stop_price)).is_none()
                || (sl.limit_price.is_some() && positive(sl.limit_price).is_none())
            {
                return Err(reject(InvalidOrder, "take_profit and stop_loss prices must be positive"));
            }
            if req.order_class == OrderClass::Oco && req.order_type != OrderType::Limit {
                return Err(reject(InvalidOrder, "an oco order is a limit (take-profit) plus a stop-loss"));
            }
            if req.order_class == OrderClass::Bracket && !matches!(req.order_type, OrderType::Market | OrderType::Limit)
            {
                return Err(reject(InvalidOrder, "a bracket's entry is a market or limit order"));
            }
        }
        let mark = self.marks.get(symbol).copied();
        let config = self.config;
        let cash = config.starting_cash;
        let marks = &self.marks;
        let book = self.books.entry(account.clone()).or_insert_with(|| Book::new(cash));
        // The side that spends cash, and how much it may spend.
        let entry_side = req.side;
        let opens_buy = entry_side == Side::Buy && req.order_class != OrderClass::Oco;
        if opens_buy {
            let price = limit
                .or(req.stop_price)
                .or(mark.map(|m| m.fill_price(Side::Buy)))
                .map(|p| p * (1.0 + config.slippage_bps / 10_000.0));
            let cost = match (qty, price) {
                (Some(q), Some(p)) => q * p + config.commission,
                (None, _) => req.notional.unwrap_or(0.0) + config.commission,
                (Some(_), None) => 0.0,
            };
            let power = buying_power(book, marks, config);
            if cost > power + EPS {
                return Err(reject(InsufficientBuyingPower, format!("needs {cost:.2} but buying power is {power:.2}")));
            }
        } else if entry_side == Side::Sell {
            let held = book.holdings.get(symbol).map_or(0.0, |h| h.qty);
            let committed: f64 = book
                .orders
                .values()
                .filter(|o| o.symbol == symbol && o.side == Side::Sell && o.status.is_open())
                // The second leg of an OCO pair sells the same shares as the first: count the pair once.
                .filter(|o| !(o.order_class == OrderClass::Oco && o.parent_id.is_some()))
                .filter(|o| !(o.order_class == OrderClass::Bracket && o.parent_id.is_some()))
                .map(|o| o.qty.unwrap_or(0.0) - o.filled_qty)
                .sum();
            let wanted = qty.unwrap_or_else(|| mark.map_or(f64::INFINITY, |m| req.notional.unwrap_or(0.0) / m.price));
            if wanted > held - committed + EPS {
                return Err(reject(
                    InsufficientQty,
                    format!("sells {wanted} but {} is held and not already offered", held - committed),
                ));
            }
        }

        let base = |id: String, side, order_type, class, status| Order {
            id,
            client_order_id: None,
            symbol: symbol.to_owned(),
            qty,
            notional: req.notional,
            filled_qty: 0.0,
            filled_avg_price: None,
            side,
            order_type,
            time_in_force: req.time_in_force,
            order_class: class,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            trail_percent: None,
            hwm: None,
            parent_id: None,
            status,
            reject: None,
            triggered: false,
            created_at: now,
            updated_at: now,
        };
        let mut first = base(id(), req.side, req.order_type, req.order_class, OrderStatus::Accepted);
        first.client_order_id = req.client_order_id.clone();
        first.limit_price = if needs_limit { limit } else { None };
        first.stop_price = req.stop_price;
        first.trail_price = req.trail_price;
        first.trail_percent = req.trail_percent;
        if req.order_type == OrderType::TrailingStop {
            if let Some(m) = mark {
                start_trail(&mut first, m.price);
            }
        }
        let mut legs = vec![first];
        match req.order_class {
            OrderClass::Simple => {}
            OrderClass::Oco => {
                // The first leg is the take-profit limit; the second the stop-loss.
                let (Some(tp), Some(sl)) = (req.take_profit, req.stop_loss) else { return Err(missing_legs()) };
                legs[0].limit_price = Some(req.limit_price.unwrap_or(tp.limit_price));
                let kind = if sl.limit_price.is_some() { OrderType::StopLimit } else { OrderType::Stop };
                let mut stop = base(id(), req.side, kind, OrderClass::Oco, OrderStatus::Accepted);
                stop.stop_price = Some(sl.stop_price);
                stop.limit_price = sl.limit_price;
                stop.parent_id = Some(legs[0].id.clone());
                legs.push(stop);
            }
            OrderClass::Bracket => {
                let (Some(tp), Some(sl)) = (req.take_profit, req.stop_loss) else { return Err(missing_legs()) };
                let exit = req.side.opposite();
                let mut take = base(id(), exit, OrderType::Limit, OrderClass::Bracket, OrderStatus::Held);
                take.limit_price = Some(tp.limit_price);
                take.parent_id = Some(legs[0].id.clone());
                take.time_in_force = TimeInForce::Gtc;
                let kind = if sl.limit_price.is_some() { OrderType::StopLimit } else { OrderType::Stop };
                let mut stop = base(id(), exit, kind, OrderClass::Bracket, OrderStatus::Held);
                stop.stop_price = Some(sl.stop_price);
                stop.limit_price = sl.limit_price;
                stop.parent_id = Some(legs[0].id.clone());
                stop.time_in_force = TimeInForce::Gtc;
                legs.push(take);
                legs.push(stop);
            }
        }
        Ok(legs)
    }

    /// Cancels a working order; a bracket entry takes its waiting exits with it, an OCO leg its sibling.
    pub(crate) fn cancel(&mut self, account: &AccountId, id: &str, now: i64) -> Result<(Order, Delta), OrderReject> {
        let book = self.book(account);
        let mut delta = Delta::new(account, book);
        let order = book.orders.get_mut(id).ok_or_else(|| reject(OrderRejectCode::NotFound, "no such order"))?;
        if !order.status.is_open() {
            return Err(reject(OrderRejectCode::NotCancelable, format!("the order is {}", order.status.as_str())));
        }
        order.status = OrderStatus::Canceled;
        order.updated_at = now;
        let order = order.clone();
        delta.touch(&order);
        cancel_children(book, id, now, &mut delta);
        if let Some(parent) = order.parent_id.as_deref() {
            if order.order_class == OrderClass::Oco {
                cancel_linked(book, parent, id, now, &mut delta);
            }
        }
        self.working_stale = true;
        Ok((order, delta))
    }

    /// Replaces a working order: the old one ends `replaced`, a new one with the changes takes its place.
    pub(crate) fn replace(
        &mut self,
        account: &AccountId,
        id: &str,
        change: ReplaceRequest,
        new_id: &mut dyn FnMut() -> String,
        now: i64,
    ) -> Result<(Order, Delta), OrderReject> {
        let book = self.book(account);
        let old = book.orders.get(id).ok_or_else(|| reject(OrderRejectCode::NotFound, "no such order"))?;
        if !old.status.is_open() {
            return Err(reject(OrderRejectCode::NotCancelable, format!("the order is {}", old.status.as_str())));
        }
        if old.order_class != OrderClass::Simple {
            return Err(reject(OrderRejectCode::InvalidOrder, "orders in an oco or bracket group cannot be replaced"));
        }
        for v in [change.qty, change.limit_price, change.stop_price, change.trail] {
            if v.is_some() && positive(v).is_none() {
                return Err(reject(OrderRejectCode::InvalidOrder, "replacement values must be positive"));
            }
        }
        let mut new = old.clone();
        new.id = new_id();
        new.qty = change.qty.or(old.qty);
        new.limit_price = change.limit_price.or(old.limit_price);
        new.stop_price = change.stop_price.or(old.stop_price);
        if let Some(trail) = change.trail {
            if old.trail_percent.is_some() {
                new.trail_percent = Some(trail);
            } else {
                new.trail_price = Some(trail);
            }
            new.hwm = None;
        }
        new.time_in_force = change.time_in_force.unwrap_or(old.time_in_force);
        new.client_order_id = change.client_order_id.or(old.client_order_id.clone());
        new.parent_id = Some(old.id.clone());
        new.created_at = now;
        new.updated_at = now;
        let book = self.book(account);
        let mut delta = Delta::new(account, book);
        if let Some(old) = book.orders.get_mut(id) {
            old.status = OrderStatus::Replaced;
            old.client_order_id = None;
            old.updated_at = now;
            let old = old.clone();
            delta.touch(&old);
        }
        if let Some(m) = self.marks.get(&new.symbol).copied() {
            if new.order_type == OrderType::TrailingStop && new.hwm.is_none() {
                start_trail(&mut new, m.price);
            }
        }
        let symbol = new.symbol.clone();
        let new_id = new.id.clone();
        delta.touch(&new);
        self.book(account).orders.insert(new_id.clone(), new);
        if let Some(mark) = self.marks.get(&symbol).copied() {
            self.match_symbol(account, &symbol, mark, None, &mut delta);
        }
        self.working_stale = true;
        Ok((self.books[account].orders[&new_id].clone(), delta))
    }

    /// One tick: every working order on `symbol` in every account is checked against it.
    pub(crate) fn on_quote(&mut self, symbol: &str, mark: Mark) -> Vec<Delta> {
        let day = mark.ts.div_euclid(DAY_MS);
        let first_today = match self.marks.get_mut(symbol) {
            Some(m) => {
                let first = m.ts.div_euclid(DAY_MS) != day;
                *m = mark;
                first
            }
            None => {
                self.marks.insert(symbol.to_owned(), mark);
                true
            }
        };
        self.today = self.today.max(day);
        if first_today {
            self.start_day(symbol, mark.price, day);
        }
        if self.working_stale {
            self.rebuild_working();
        }
        let Some(working) = self.working.get(symbol) else { return Vec::new() };
        #[cfg(test)]
        let skip = !self.ungated && !working.gate.wakes(mark);
        #[cfg(not(test))]
        let skip = !working.gate.wakes(mark);
        if skip {
            return Vec::new();
        }
        let holders = working.holders.clone();
        let mut deltas = Vec::new();
        for (account, ids) in &holders {
            let mut delta = Delta::new(account, &self.books[account]);
            self.match_symbol(account, symbol, mark, Some(ids), &mut delta);
            if !delta.is_empty() {
                deltas.push(delta);
            }
        }
        if deltas.iter().any(|d| d.durable) {
            self.working_stale = true;
        } else {
            // Nothing opened or closed, but trailing stops may have moved: their band moves with them.
            let mut gate = Gate::CLOSED;
            for (account, ids) in &holders {
                let Some(book) = self.books.get(account) else { continue };
                ids.iter().filter_map(|id| book.orders.get(id)).for_each(|o| gate.widen(o));
            }
            if let Some(working) = self.working.get_mut(symbol) {
                working.gate = gate;
            }
        }
        deltas
    }

    /// Indexes every working order by symbol and account, with each symbol's wake-up band.
    fn rebuild_working(&mut self) {
        self.working.clear();
        for (account, book) in &self.books {
            for o in book
                .orders
                .values()
                .filter(|o| matches!(o.status, OrderStatus::Accepted | OrderStatus::PartiallyFilled))
            {
                let working = self.working.entry(o.symbol.clone()).or_default();
                working.gate.widen(o);
                match working.holders.last_mut() {
                    Some((holder, ids)) if holder == account => ids.push(o.id.clone()),
                    _ => working.holders.push((account.clone(), vec![o.id.clone()])),
                }
            }
        }
        self.working_stale = false;
    }

    /// The first price of `day` for `symbol`: every holding of it starts its day P&L here.
    fn start_day(&mut self, symbol: &str, price: f64, day: i64) {
        for book in self.books.values_mut() {
            if let Some(h) = book.holdings.get_mut(symbol) {
                if h.day != day {
                    h.day = day;
                    h.pl_at_day_start = h.total_pl(price);
                }
            }
        }
    }

    /// Starts an account over: open orders cancelled, holdings closed without a trade (the ledger keeps its
    /// fills), cash back to the starting amount.
    pub(crate) fn reset(&mut self, account: &AccountId, now: i64) -> Delta {
        let cash = self.config.starting_cash;
        let book = self.book(account);
        let mut delta = Delta::new(account, book);
        for order in book.orders.values_mut().filter(|o| o.status.is_open()) {
            order.status = OrderStatus::Canceled;
            order.updated_at = now;
            delta.touch(order);
        }
        for (symbol, h) in std::mem::take(&mut book.holdings) {
            if h.qty != 0.0 {
                delta.holdings.push((symbol, Holding::default()));
            }
        }
        book.cash = cash;
        book.realized = 0.0;
        delta.cash = cash;
        delta.realized = 0.0;
        delta.durable = true;
        self.working_stale = true;
        delta
    }

    /// Checks the account's working orders on one symbol against a quote, until nothing more happens (a fill may
    /// activate a bracket's exits, which may fill on the same quote).
    /// `known` lists the working orders on `symbol` when the caller has them indexed (the first round then
    /// skips the scan of the whole book).
    fn match_symbol(
        &mut self,
        account: &AccountId,
        symbol: &str,
        mark: Mark,
        known: Option<&[String]>,
        delta: &mut Delta,
    ) {
        let config = self.config;
        let next_fill = &mut self.next_fill;
        let Some(book) = self.books.get_mut(account) else { return };
        for round in 0..4 {
            let ids: Vec<String> = match known {
                Some(ids) if round == 0 => ids.to_vec(),
                _ => book
                    .orders
                    .values()
                    .filter(|o| {
                        o.symbol == symbol && matches!(o.status, OrderStatus::Accepted | OrderStatus::PartiallyFilled)
                    })
                    .map(|o| o.id.clone())
                    .collect(),
            };
            let mut filled_any = false;
            for id in ids {
                // An earlier fill in this round may have cancelled it.
                let Some(order) = book.orders.get_mut(&id) else { continue };
                if !order.status.is_open() || order.status == OrderStatus::Held {
                    continue;
                }
                if order.time_in_force == TimeInForce::Day
                    && mark.ts.div_euclid(DAY_MS) > order.created_at.div_euclid(DAY_MS)
                {
                    order.status = OrderStatus::Expired;
                    order.updated_at = mark.ts;
                    let o = order.clone();
                    delta.touch(&o);
                    cancel_children(book, &id, mark.ts, delta);
                    continue;
                }
                let Some(price) = executable(order, mark, delta) else { continue };
                match apply_fill(book, &id, price, mark.ts, config, next_fill) {
                    Ok(fill) => {
                        filled_any = true;
                        delta.fills.push(fill);
                        let order = book.orders[&id].clone();
                        delta.touch(&order);
                        let holding = book.holdings.get(symbol).copied().unwrap_or_default();
                        delta.holdings.retain(|(s, _)| s != symbol);
                        delta.holdings.push((symbol.to_owned(), holding));
                        after_fill(book, &order, mark.ts, delta);
                    }
                    Err(why) => {
                        if let Some(order) = book.orders.get_mut(&id) {
                            order.status = OrderStatus::Rejected;
                            order.reject = Some(why);
                            order.updated_at = mark.ts;
                            let o = order.clone();
                            delta.touch(&o);
                        }
                        cancel_children(book, &id, mark.ts, delta);
                    }
                }
            }
            if !filled_any {
                break;
            }
        }
        delta.cash = book.cash;
        delta.realized = book.realized;
    }

    /// The account with positions marked to the last prices.
    pub(crate) fn account(&mut self, account: &AccountId) -> Account {
        let config = self.config;
        let marks = &self.marks;
        let cash = config.starting_cash;
        let book = self.books.entry(account.clone()).or_insert_with(|| Book::new(cash));
        let price = |s: &String, h: &Holding| marks.get(s).map_or(h.avg_cost, |m| m.price);
        let long: f64 = book.holdings.iter().map(|(s, h)| h.qty * price(s, h)).sum();
        let day_pl: f64 = book.holdings.iter().map(|(s, h)| h.day_pl(price(s, h), self.today)).sum();
        Account {
            id: account.0.clone(),
            cash: book.cash,
            equity: book.cash + long,
            long_market_value: long,
            buying_power: buying_power(book, marks, config),
            realized_pl: book.realized,
            day_pl,
        }
    }

    /// The account's positions marked to the last prices.
    pub(crate) fn positions(&self, account: &AccountId) -> Vec<Position> {
        let Some(book) = self.books.get(account) else { return Vec::new() };
        book.holdings
            .iter()
            .filter(|(_, h)| h.qty > EPS)
            .map(|(s, h)| {
                let price = self.marks.get(s).map_or(h.avg_cost, |m| m.price);
                Position {
                    symbol: s.clone(),
                    qty: h.qty,
                    avg_entry_price: h.avg_cost,
                    cost_basis: h.qty * h.avg_cost,
                    current_price: price,
                    market_value: h.qty * price,
                    unrealized_pl: h.qty * (price - h.avg_cost),
                    realized_pl: h.realized,
                    day_pl: h.day_pl(price, self.today),
                }
            })
            .collect()
    }

    /// The account's orders, newest first.
    pub(crate) fn orders(&self, account: &AccountId, statuses: Option<&[OrderStatus]>) -> Vec<Order> {
        let Some(book) = self.books.get(account) else { return Vec::new() };
        let mut out: Vec<Order> =
            book.orders.values().filter(|o| statuses.is_none_or(|s| s.contains(&o.status))).cloned().collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        out
    }
}

fn missing_legs() -> OrderReject {
    reject(OrderRejectCode::InvalidOrder, "oco and bracket orders need take_profit and stop_loss")
}

/// Cash less what open buy orders may still spend.
fn buying_power(book: &Book, marks: &HashMap<String, Mark>, config: PaperConfig) -> f64 {
    let reserved: f64 = book
        .orders
        .values()
        .filter(|o| o.side == Side::Buy && matches!(o.status, OrderStatus::Accepted | OrderStatus::PartiallyFilled))
        .map(|o| {
            let price =
                o.limit_price.or(o.stop_price).or(marks.get(&o.symbol).map(|m| m.fill_price(Side::Buy))).unwrap_or(0.0)
                    * (1.0 + config.slippage_bps / 10_000.0);
            match o.qty {
                Some(q) => (q - o.filled_qty) * price + config.commission,
                None => o.notional.unwrap_or(0.0) + config.commission,
            }
        })
        .sum();
    book.cash - reserved
}

fn trail_stop(order: &Order, best: f64) -> Option<f64> {
    let up = order.side == Side::Buy;
    match (order.trail_price, order.trail_percent) {
        (Some(t), _) => Some(if up { best + t } else { best - t }),
        (None, Some(p)) => Some(if up { best * (1.0 + p / 100.0) } else { best * (1.0 - p / 100.0) }),
        (None, None) => None,
    }
}

fn start_trail(order: &mut Order, price: f64) {
    order.hwm = Some(price);
    order.stop_price = trail_stop(order, price);
}

/// The price an order fills at on this quote, if it does; moves trailing stops and triggers stops on the way.
fn executable(order: &mut Order, mark: Mark, delta: &mut Delta) -> Option<f64> {
    let last = mark.price;
    let at = mark.fill_price(order.side);
    let crosses_stop = |o: &Order| match (o.side, o.stop_price) {
        (Side::Buy, Some(s)) => last >= s,
        (Side::Sell, Some(s)) => last <= s,
        (_, None) => false,
    };
    let limit_ok = |o: &Order| match (o.side, o.limit_price) {
        (Side::Buy, Some(l)) => at <= l,
        (Side::Sell, Some(l)) => at >= l,
        (_, None) => true,
    };
    match order.order_type {
        OrderType::Market => Some(at),
        OrderType::Limit => limit_ok(order).then_some(at),
        OrderType::Stop | OrderType::StopLimit => {
            if !order.triggered && crosses_stop(order) {
                order.triggered = true;
                order.updated_at = mark.ts;
                let o = order.clone();
                delta.touch_soft(&o);
            }
            (order.triggered && limit_ok(order)).then_some(at)
        }
        OrderType::TrailingStop => {
            let better = match (order.side, order.hwm) {
                (_, None) => true,
                (Side::Sell, Some(h)) => last > h,
                (Side::Buy, Some(h)) => last < h,
            };
            if better {
                start_trail(order, last);
                order.updated_at = mark.ts;
                let o = order.clone();
                delta.touch_soft(&o);
                return None;
            }
            crosses_stop(order).then_some(at)
        }
    }
}

/// Fills the whole remaining quantity at `price` (before slippage), updating cash, the holding and the order.
fn apply_fill(
    book: &mut Book,
    id: &str,
    price: f64,
    ts: i64,
    config: PaperConfig,
    next_fill: &mut i64,
) -> Result<Fill, OrderReject> {
    let order = book.orders.get(id).ok_or_else(|| reject(OrderRejectCode::NotFound, "no such order"))?;
    let slip = config.slippage_bps / 10_000.0;
    let price = match order.side {
        Side::Buy => price * (1.0 + slip),
        Side::Sell => price * (1.0 - slip),
    };
    let qty = match order.qty {
        Some(q) => q - order.filled_qty,
        None => order.notional.unwrap_or(0.0) / price,
    };
    let symbol = order.symbol.clone();
    let side = order.side;
    let holding = book.holdings.entry(symbol.clone()).or_default();
    let day = ts.div_euclid(DAY_MS);
    if holding.day != day {
        // A holding opened (or first traded) today: its day starts from nothing at this fill.
        holding.day = day;
        holding.pl_at_day_start = holding.total_pl(price);
    }
    match side {
        Side::Buy => {
            let cost = qty * price + config.commission;
            if cost > book.cash + EPS {
                return Err(reject(
                    OrderRejectCode::InsufficientBuyingPower,
                    format!("needs {cost:.2} at the fill but cash is {:.2}", book.cash),
                ));
            }
            holding.avg_cost = (holding.qty * holding.avg_cost + qty * price) / (holding.qty + qty);
            holding.qty += qty;
            book.cash -= cost;
        }
        Side::Sell => {
            if qty > holding.qty + EPS {
                return Err(reject(
                    OrderRejectCode::InsufficientQty,
                    format!("sells {qty} but {} is held", holding.qty),
                ));
            }
            let pnl = qty * (price - holding.avg_cost) - config.commission;
            holding.qty -= qty;
            if holding.qty <= EPS {
                holding.qty = 0.0;
            }
            holding.realized += pnl;
            book.realized += pnl;
            book.cash += qty * price - config.commission;
        }
    }
    let order = book.orders.get_mut(id).ok_or_else(|| reject(OrderRejectCode::NotFound, "no such order"))?;
    order.filled_qty += qty;
    order.qty = Some(order.filled_qty);
    order.filled_avg_price = Some(price);
    order.status = OrderStatus::Filled;
    order.updated_at = ts;
    let fill =
        Fill { id: *next_fill, order_id: id.to_owned(), symbol, side, qty, price, commission: config.commission, ts };
    *next_fill += 1;
    Ok(fill)
}

/// Links after a fill: a bracket entry wakes its exits; an exit or OCO leg cancels its sibling.
fn after_fill(book: &mut Book, order: &Order, now: i64, delta: &mut Delta) {
    match (order.order_class, order.parent_id.as_deref()) {
        (OrderClass::Bracket, None) => {
            let children: Vec<String> = book
                .orders
                .values()
                .filter(|o| o.parent_id.as_deref() == Some(&order.id) && o.status == OrderStatus::Held)
                .map(|o| o.id.clone())
                .collect();
            for id in children {
                if let Some(child) = book.orders.get_mut(&id) {
                    child.status = OrderStatus::Accepted;
                    child.updated_at = now;
                    // The entry may have filled partially under a notional; the exits follow what was bought.
                    child.qty = order.qty;
                    let c = child.clone();
                    delta.touch(&c);
                }
            }
        }
        (OrderClass::Bracket, Some(parent)) => cancel_linked(book, parent, &order.id, now, delta),
        (OrderClass::Oco, Some(parent)) => cancel_linked(book, parent, &order.id, now, delta),
        (OrderClass::Oco, None) => cancel_children(book, &order.id, now, delta),
        (OrderClass::Simple, _) => {}
    }
}

/// Cancels the open orders whose parent is `parent`.
fn cancel_children(book: &mut Book, parent: &str, now: i64, delta: &mut Delta) {
    let ids: Vec<String> = book
        .orders
        .values()
        .filter(|o| o.parent_id.as_deref() == Some(parent) && o.status.is_open() && o.order_class != OrderClass::Simple)
        .map(|o| o.id.clone())
        .collect();
    for id in ids {
        if let Some(o) = book.orders.get_mut(&id) {
            o.status = OrderStatus::Canceled;
            o.updated_at = now;
            let o = o.clone();
            delta.touch(&o);
        }
    }
}

/// Cancels the other open members of a group (its parent if an OCO leg, and siblings), leaving `filled`.
fn cancel_linked(book: &mut Book, parent: &str, filled: &str, now: i64, delta: &mut Delta) {
    let ids: Vec<String> = book
        .orders
        .values()
        .filter(|o| o.id != filled && o.status.is_open())
        .filter(|o| o.parent_id.as_deref() == Some(parent) || (o.id == parent && o.order_class == OrderClass::Oco))
        .map(|o| o.id.clone())
        .collect();
    for id in ids {
        if let Some(o) = book.orders.get_mut(&id) {
            o.status = OrderStatus::Canceled;
            o.updated_at = now;
            let o = o.clone();
            delta.touch(&o);
        }
    }
}
