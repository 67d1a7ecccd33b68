//! The trading vocabulary of the wire protocol: order requests, orders, fills, positions and the account, with
//! the field names traders know from Alpaca's Trading API (`qty`, `time_in_force`, `limit_price`, `order_class`,
//! `take_profit`, …) so a body written for Alpaca works against the relay unchanged. The relay's paper broker
//! and any real broker behind it speak these types; nothing here knows how an order is matched.

use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

crate::json::names_deserialize!(Side { Buy = "buy", Sell = "sell" });

impl Side {
    /// The side that closes a position opened by this one.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How an order's price is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
    StopLimit,
    TrailingStop,
}

crate::json::names_deserialize!(OrderType { Market = "market", Limit = "limit", Stop = "stop", StopLimit = "stop_limit", TrailingStop = "trailing_stop" });

/// How long an order stays working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Until the end of the (UTC) day it was placed on.
    #[default]
    Day,
    /// Until cancelled.
    Gtc,
    /// Fills at once, whatever cannot fill is cancelled.
    Ioc,
}

crate::json::names_deserialize!(TimeInForce { Day = "day", Gtc = "gtc", Ioc = "ioc" });

/// Single orders and linked groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum OrderClass {
    #[default]
    Simple,
    /// Two exits of one position (a take-profit limit and a stop-loss); the first to fill cancels the other.
    Oco,
    /// An entry plus a take-profit and a stop-loss exit that start working only once the entry has filled.
    Bracket,
}

crate::json::names_deserialize!(OrderClass { Simple = "simple", Oco = "oco", Bracket = "bracket" });

/// The take-profit leg of a bracket or OCO order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TakeProfit {
    pub limit_price: f64,
}

/// The stop-loss leg of a bracket or OCO order: a stop, or a stop-limit when `limit_price` is given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopLoss {
    pub stop_price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
}

/// A new order, as `POST /api/orders` and the `place_order` command carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub symbol: String,
    /// Shares or units; fractional quantities are allowed. Exactly one of `qty` and `notional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qty: Option<f64>,
    /// An amount of cash to spend or raise (market orders only); the quantity follows from the fill price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional: Option<f64>,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    #[serde(default)]
    pub time_in_force: TimeInForce,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_percent: Option<f64>,
    #[serde(default)]
    pub order_class: OrderClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<TakeProfit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<StopLoss>,
    /// The client's own id: placing the same id twice returns the first order instead of a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
}

/// Changes to a working order (`PATCH`-like): absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplaceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<TimeInForce>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
}

/// Where an order is in its life. `held` is a bracket exit waiting for its entry to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Accepted,
    Held,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
    Rejected,
    Replaced,
}

crate::json::names_deserialize!(OrderStatus { Accepted = "accepted", Held = "held", PartiallyFilled = "partially_filled", Filled = "filled", Canceled = "canceled", Expired = "expired", Rejected = "rejected", Replaced = "replaced" });

impl OrderStatus {
    /// Whether the order can still fill (or become able to).
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::Accepted | OrderStatus::Held | OrderStatus::PartiallyFilled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::Held => "held",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Replaced => "replaced",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// Why a broker refused an order or a change to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum OrderRejectCode {
    InsufficientBuyingPower,
    InsufficientQty,
    UnknownSymbol,
    InvalidQty,
    LimitPriceMissing,
    StopPriceMissing,
    TrailMissing,
    InvalidOrder,
    NotFound,
    NotCancelable,
    /// The broker could not take the request now (its journal failed, or it is unreachable).
    Unavailable,
    /// The caller may not act on this account (no identity, or auth failed).
    Unauthorized,
    /// The request came from another site or through a host name the relay does not serve.
    Forbidden,
}

crate::json::names_deserialize!(OrderRejectCode { InsufficientBuyingPower = "insufficient_buying_power", InsufficientQty = "insufficient_qty", UnknownSymbol = "unknown_symbol", InvalidQty = "invalid_qty", LimitPriceMissing = "limit_price_missing", StopPriceMissing = "stop_price_missing", TrailMissing = "trail_missing", InvalidOrder = "invalid_order", NotFound = "not_found", NotCancelable = "not_cancelable", Unavailable = "unavailable", Unauthorized = "unauthorized", Forbidden = "forbidden" });

impl OrderRejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderRejectCode::InsufficientBuyingPower => "insufficient_buying_power",
            OrderRejectCode::InsufficientQty => "insufficient_qty",
            OrderRejectCode::UnknownSymbol => "unknown_symbol",
            OrderRejectCode::InvalidQty => "invalid_qty",
            OrderRejectCode::LimitPriceMissing => "limit_price_missing",
            OrderRejectCode::StopPriceMissing => "stop_price_missing",
            OrderRejectCode::TrailMissing => "trail_missing",
            OrderRejectCode::InvalidOrder => "invalid_order",
            OrderRejectCode::NotFound => "not_found",
            OrderRejectCode::NotCancelable => "not_cancelable",
            OrderRejectCode::Unavailable => "unavailable",
            OrderRejectCode::Unauthorized => "unauthorized",
            OrderRejectCode::Forbidden => "forbidden",
        }
    }
}

/// A rejection: the code to branch on and a sentence to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct OrderReject {
    pub code: OrderRejectCode,
    pub message: String,
}

crate::json::map_deserialize!(OrderReject, required { code "code": OrderRejectCode, message "message": String } optional {});

/// An order as the broker keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Order {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
    pub symbol: String,
    /// Absent only for a notional order that has not filled yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional: Option<f64>,
    pub filled_qty: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_avg_price: Option<f64>,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub order_class: OrderClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    /// For a trailing stop, the current stop (it moves with the high- or low-water mark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_percent: Option<f64>,
    /// A trailing stop's best price since it started working (highest for a sell, lowest for a buy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hwm: Option<f64>,
    /// The entry of a bracket, or the first leg of an OCO pair, for its linked exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<OrderReject>,
    /// Stop or stop-limit legs that have been triggered work as market or limit orders.
    #[serde(default)]
    pub triggered: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::json::map_deserialize!(Order, required { id "id": String, symbol "symbol": String, filled_qty "filled_qty": f64, side "side": Side, order_type "type": OrderType, time_in_force "time_in_force": TimeInForce, order_class "order_class": OrderClass, status "status": OrderStatus, created_at "created_at": i64, updated_at "updated_at": i64 } optional { client_order_id "client_order_id": Option<String>, qty "qty": Option<f64>, notional "notional": Option<f64>, filled_avg_price "filled_avg_price": Option<f64>, limit_price "limit_price": Option<f64>, stop_price "stop_price": Option<f64>, trail_price "trail_price": Option<f64>, trail_percent "trail_percent": Option<f64>, hwm "hwm": Option<f64>, parent_id "parent_id": Option<String>, reject "reject": Option<OrderReject>, triggered "triggered": bool });

/// One execution, as the ledger keeps it (never changed once written).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Fill {
    pub id: i64,
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: f64,
    pub price: f64,
    pub commission: f64,
    pub ts: i64,
}

crate::json::map_deserialize!(Fill, required { id "id": i64, order_id "order_id": String, symbol "symbol": String, side "side": Side, qty "qty": f64, price "price": f64, commission "commission": f64, ts "ts": i64 } optional {});

/// A holding, marked to the last price.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Position {
    pub symbol: String,
    pub qty: f64,
    pub avg_entry_price: f64,
    pub cost_basis: f64,
    pub current_price: f64,
    pub market_value: f64,
    pub unrealized_pl: f64,
    pub realized_pl: f64,
    /// Profit or loss since the start of the current UTC day (realised and unrealised): against the first price
    /// of the day for what was held then, against the fill price for what was bought since.
    #[serde(default)]
    pub day_pl: f64,
}

crate::json::map_deserialize!(Position, required { symbol "symbol": String, qty "qty": f64, avg_entry_price "avg_entry_price": f64, cost_basis "cost_basis": f64, current_price "current_price": f64, market_value "market_value": f64, unrealized_pl "unrealized_pl": f64, realized_pl "realized_pl": f64 } optional { day_pl "day_pl": f64 });

/// Cash and what it is worth with the positions marked to market.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Account {
    pub id: String,
    pub cash: f64,
    pub equity: f64,
    pub long_market_value: f64,
    /// Cash not promised to open buy orders.
    pub buying_power: f64,
    pub realized_pl: f64,
    /// The sum of the positions' `day_pl`, closed ones included.
    #[serde(default)]
    pub day_pl: f64,
}

crate::json::map_deserialize!(Account, required { id "id": String, cash "cash": f64, equity "equity": f64, long_market_value "long_market_value": f64, buying_power "buying_power": f64, realized_pl "realized_pl": f64 } optional { day_pl "day_pl": f64 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alpaca_bracket_body_parses() {
        let body = r#"{"symbol":"AAPL","qty":"5","side":"buy","type":"market","time_in_force":"gtc",
            "order_class":"bracket","take_profit":{"limit_price":301},"stop_loss":{"stop_price":299,"limit_price":298.5},
            "client_order_id":"abc"}"#;
        // Alpaca sends numbers as strings; this protocol takes JSON numbers, and says so.
        assert!(serde_json::from_str::<OrderRequest>(body).is_err());
        let body = body.replace("\"5\"", "5");
        let req: OrderRequest = serde_json::from_str(&body).unwrap();
        assert_eq!(req.order_class, OrderClass::Bracket);
        assert_eq!(req.stop_loss.unwrap().limit_price, Some(298.5));
        assert_eq!(req.order_type, OrderType::Market);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [OrderStatus::Accepted, OrderStatus::Held, OrderStatus::PartiallyFilled, OrderStatus::Canceled] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("open"), None);
    }
}
