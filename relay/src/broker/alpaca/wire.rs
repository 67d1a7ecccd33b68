//! Alpaca's Trading API objects as they arrive (`docs/providers/alpaca-broker.md`), and their translation into
//! the protocol's [`Order`], [`Position`] and [`Account`].
//!
//! Alpaca writes decimals as strings (sometimes as numbers), leaves unset fields `null`, adds statuses and
//! events over time and has removed account fields before, so everything here is lenient: every decimal is read
//! from a string or a number, every field but an order's identity is optional, and an unknown status or event is
//! kept as text rather than refused.

use hamster_shared::broker::{
    Account, Fill, Order, OrderClass, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, OrderType, Position,
    ReplaceRequest, Side, TimeInForce,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

/// A decimal Alpaca may send as `"1.5"`, `1.5` or `null`.
fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Number(n)) if n.is_finite() => Some(n),
        Some(Raw::Text(s)) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    })
}

/// An RFC 3339 time (any offset, up to nine fractional digits) as Unix milliseconds.
pub(super) fn millis(text: Option<&str>) -> Option<i64> {
    let parsed = time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An order object (REST responses and the `order` of every trade update).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct WireOrder {
    pub(super) id: String,
    #[serde(default)]
    client_order_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    submitted_at: Option<String>,
    pub(super) symbol: String,
    #[serde(default)]
    asset_class: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    qty: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    notional: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    filled_qty: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    filled_avg_price: Option<f64>,
    #[serde(default)]
    order_class: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// The deprecated copy of `type`, used when `type` is missing.
    #[serde(default)]
    order_type: Option<String>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    time_in_force: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    limit_price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    stop_price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    trail_price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    trail_percent: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    hwm: Option<f64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    legs: Option<Vec<WireOrder>>,
}

/// Alpaca's order statuses in the protocol's smaller set. Pending states still work (`accepted`); `done_for_day`
/// and `stopped` can still fill later, so they stay open too; anything unknown is treated as open, because
/// calling a live order finished would hide it from the trader.
fn status(text: &str) -> OrderStatus {
    match text {
        "held" => OrderStatus::Held,
        "partially_filled" => OrderStatus::PartiallyFilled,
        "filled" => OrderStatus::Filled,
        "canceled" => OrderStatus::Canceled,
        "expired" => OrderStatus::Expired,
        "replaced" => OrderStatus::Replaced,
        "rejected" | "suspended" => OrderStatus::Rejected,
        _ => OrderStatus::Accepted,
    }
}

fn side(text: Option<&str>) -> Side {
    match text {
        Some("sell") => Side::Sell,
        _ => Side::Buy,
    }
}

fn order_type(text: Option<&str>) -> OrderType {
    match text {
        Some("limit") => OrderType::Limit,
        Some("stop") => OrderType::Stop,
        Some("stop_limit") => OrderType::StopLimit,
        Some("trailing_stop") => OrderType::TrailingStop,
        _ => OrderType::Market,
    }
}

/// Alpaca knows more times in force than the protocol; the nearest one is shown (`fok` fills now or never like
/// `ioc`; `opg`/`cls` work for one session like `day`).
fn time_in_force(text: Option<&str>) -> TimeInForce {
    match text {
        Some("gtc") => TimeInForce::Gtc,
        Some("ioc") | Some("fok") => TimeInForce::Ioc,
        _ => TimeInForce::Day,
    }
}

fn order_class(text: Option<&str>) -> OrderClass {
    match text {
        Some("bracket") | Some("oto") => OrderClass::Bracket,
        Some("oco") => OrderClass::Oco,
        _ => OrderClass::Simple,
    }
}

/// The hub's name for an Alpaca symbol: crypto pairs come as `BTC/USD` from newer endpoints and as `BTCUSD` from
/// older ones; the hub always writes the slash.
pub(super) fn hub_symbol(symbol: &str, asset_class: Option<&str>) -> String {
    if asset_class == Some("crypto") && !symbol.contains('/') {
        for quote in ["USDT", "USDC", "USD", "BTC"] {
            if let Some(base) = symbol.strip_suffix(quote).filter(|b| !b.is_empty()) {
                return format!("{base}/{quote}");
            }
        }
    }
    symbol.to_owned()
}

impl WireOrder {
    /// This order and its legs (bracket exits), flattened, the legs pointing at this order as their parent.
    pub(super) fn into_orders(self, now_ms: i64) -> Vec<Order> {
        let mut out = Vec::with_capacity(1 + self.legs.as_ref().map_or(0, Vec::len));
        self.flatten(None, now_ms, &mut out);
        out
    }

    fn flatten(mut self, parent: Option<&str>, now_ms: i64, out: &mut Vec<Order>) {
        let legs = self.legs.take().unwrap_or_default();
        let id = self.id.clone();
        out.push(self.to_order(parent, now_ms));
        for leg in legs {
            leg.flatten(Some(&id), now_ms, out);
        }
    }

    fn to_order(&self, parent: Option<&str>, now_ms: i64) -> Order {
        let created = millis(self.created_at.as_deref()).or(millis(self.submitted_at.as_deref())).unwrap_or(now_ms);
        let status = status(self.status.as_deref().unwrap_or("new"));
        Order {
            id: self.id.clone(),
            client_order_id: self.client_order_id.clone().filter(|c| !c.is_empty()),
            symbol: hub_symbol(&self.symbol, self.asset_class.as_deref()),
            qty: self.qty,
            notional: self.notional,
            filled_qty: self.filled_qty.unwrap_or(0.0),
            filled_avg_price: self.filled_avg_price,
            side: side(self.side.as_deref()),
            order_type: order_type(self.kind.as_deref().or(self.order_type.as_deref())),
            time_in_force: time_in_force(self.time_in_force.as_deref()),
            order_class: order_class(self.order_class.as_deref()),
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            trail_price: self.trail_price,
            trail_percent: self.trail_percent,
            hwm: self.hwm,
            parent_id: parent.map(str::to_owned),
            status,
            reject: (status == OrderStatus::Rejected).then(|| OrderReject {
                code: OrderRejectCode::InvalidOrder,
                message: format!("Alpaca {} the order", self.status.as_deref().unwrap_or("rejected")),
            }),
            triggered: false,
            created_at: created,
            updated_at: millis(self.updated_at.as_deref()).unwrap_or(created),
        }
    }
}

/// A position object (`GET /v2/positions`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct WirePosition {
    symbol: String,
    #[serde(default)]
    asset_class: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    qty: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    avg_entry_price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    cost_basis: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    current_price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    market_value: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    unrealized_pl: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    unrealized_intraday_pl: Option<f64>,
}

impl From<WirePosition> for Position {
    fn from(p: WirePosition) -> Position {
        let qty = p.qty.unwrap_or(0.0);
        let avg = p.avg_entry_price.unwrap_or(0.0);
        let cost_basis = p.cost_basis.unwrap_or(qty * avg);
        let current = p.current_price.unwrap_or(avg);
        let market_value = p.market_value.unwrap_or(qty * current);
        Position {
            symbol: hub_symbol(&p.symbol, p.asset_class.as_deref()),
            qty,
            avg_entry_price: avg,
            cost_basis,
            current_price: current,
            market_value,
            unrealized_pl: p.unrealized_pl.unwrap_or(market_value - cost_basis),
            // Alpaca reports no realised P&L per position; the account's equity carries it.
            realized_pl: 0.0,
            day_pl: p.unrealized_intraday_pl.unwrap_or(0.0),
        }
    }
}

/// The account object (`GET /v2/account`). Every field is optional: Alpaca removed some in 2026.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct WireAccount {
    #[serde(default)]
    account_number: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    cash: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    equity: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    last_equity: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    long_market_value: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    buying_power: Option<f64>,
}

impl WireAccount {
    pub(super) fn to_account(&self, id: &str) -> Account {
        let cash = self.cash.unwrap_or(0.0);
        let equity = self.equity.unwrap_or(cash);
        Account {
            id: self.account_number.clone().unwrap_or_else(|| id.to_owned()),
            cash,
            equity,
            long_market_value: self.long_market_value.unwrap_or(equity - cash),
            buying_power: self.buying_power.unwrap_or(cash),
            realized_pl: 0.0,
            day_pl: self.last_equity.map_or(0.0, |last| equity - last),
        }
    }
}

/// One frame of the `trade_updates` stream, by its `stream` field.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub(super) stream: String,
    #[serde(default)]
    pub(super) data: Value,
}

/// The `data` of a `trade_updates` frame.
#[derive(Debug, Deserialize)]
pub(super) struct TradeUpdate {
    pub(super) event: String,
    pub(super) order: WireOrder,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    /// This execution's price and size (the order carries the cumulative ones).
    #[serde(default, deserialize_with = "decimal")]
    price: Option<f64>,
    #[serde(default, deserialize_with = "decimal")]
    qty: Option<f64>,
}

impl TradeUpdate {
    /// The execution this update reports, for `fill` and `partial_fill` events that carry one.
    pub(super) fn fill(&self, id: i64, now_ms: i64) -> Option<Fill> {
        if !matches!(self.event.as_str(), "fill" | "partial_fill") {
            return None;
        }
        Some(Fill {
            id,
            order_id: self.order.id.clone(),
            symbol: hub_symbol(&self.order.symbol, self.order.asset_class.as_deref()),
            side: side(self.order.side.as_deref()),
            qty: self.qty.or(self.order.filled_qty)?,
            price: self.price.or(self.order.filled_avg_price)?,
            commission: 0.0,
            ts: millis(self.timestamp.as_deref()).unwrap_or(now_ms),
        })
    }

    /// A key that is the same for a re-delivered execution (used to not book one twice).
    pub(super) fn execution_key(&self) -> Option<String> {
        self.execution_id.clone().or_else(|| {
            Some(format!("{}:{}:{}", self.order.id, self.order.filled_qty?, self.timestamp.as_deref().unwrap_or("")))
        })
    }
}

/// Alpaca's error body: an 8-digit `code` (not always) and a `message`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

fn number(n: f64) -> Value {
    // Alpaca recommends decimals as strings; `{}` prints the shortest exact form of the f64.
    Value::String(format!("{n}"))
}

fn insert(body: &mut Map<String, Value>, key: &str, value: Option<f64>) {
    if let Some(v) = value {
        body.insert(key.to_owned(), number(v));
    }
}

fn tif_text(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Day => "day",
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
    }
}

/// `POST /v2/orders`'s body for a request (the protocol's field names are Alpaca's already).
pub(super) fn order_body(request: &OrderRequest, client_order_id: &str) -> Value {
    let mut body = Map::new();
    body.insert("symbol".into(), json!(request.symbol));
    insert(&mut body, "qty", request.qty);
    insert(&mut body, "notional", request.notional);
    body.insert("side".into(), json!(if request.side == Side::Buy { "buy" } else { "sell" }));
    let kind = match request.order_type {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
        OrderType::Stop => "stop",
        OrderType::StopLimit => "stop_limit",
        OrderType::TrailingStop => "trailing_stop",
    };
    body.insert("type".into(), json!(kind));
    body.insert("time_in_force".into(), json!(tif_text(request.time_in_force)));
    insert(&mut body, "limit_price", request.limit_price);
    insert(&mut body, "stop_price", request.stop_price);
    insert(&mut body, "trail_price", request.trail_price);
    insert(&mut body, "trail_percent", request.trail_percent);
    let class = match request.order_class {
        OrderClass::Simple => "simple",
        OrderClass::Oco => "oco",
        OrderClass::Bracket => "bracket",
    };
    body.insert("order_class".into(), json!(class));
    if let Some(tp) = request.take_profit {
        body.insert("take_profit".into(), json!({ "limit_price": number(tp.limit_price) }));
    }
    if let Some(sl) = request.stop_loss {
        let mut leg = Map::new();
        leg.insert("stop_price".into(), number(sl.stop_price));
        insert(&mut leg, "limit_price", sl.limit_price);
        body.insert("stop_loss".into(), Value::Object(leg));
    }
    body.insert("client_order_id".into(), json!(client_order_id));
    Value::Object(body)
}

/// `PATCH /v2/orders/{id}`'s body.
pub(super) fn replace_body(change: &ReplaceRequest) -> Value {
    let mut body = Map::new();
    insert(&mut body, "qty", change.qty);
    insert(&mut body, "limit_price", change.limit_price);
    insert(&mut body, "stop_price", change.stop_price);
    insert(&mut body, "trail", change.trail);
    if let Some(tif) = change.time_in_force {
        body.insert("time_in_force".into(), json!(tif_text(tif)));
    }
    if let Some(id) = &change.client_order_id {
        body.insert("client_order_id".into(), json!(id));
    }
    Value::Object(body)
}
