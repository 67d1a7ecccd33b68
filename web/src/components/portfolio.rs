//! The portfolio panel (`data-testid="portfolio"`): the account summary (cash, equity, buying power, day and
//! unrealised P&L), positions marked to the page's own quote stream with their share of equity, the working
//! orders (`open-orders`) with cancel and replace, and the fills history (`fills`).
//!
//! Everything goes through the page's one connection: on every new socket the panel subscribes to the account
//! stream (`subscribe_account`) and reads, over REST, what that stream does not repeat (orders opened earlier,
//! the ledger). Cancel, replace and reset are WebSocket commands; their answers arrive on the account stream.
//! Buttons with `data-trade` open the order ticket ([`super::order_ticket`]).

use crate::format::{Fixed, Num};
use crate::hooks::use_effect_dyn;
use hamster_shared::api::BrokerStatus;
use hamster_shared::broker::{Order, OrderType, ReplaceRequest, Side};
use hamster_shared::{ClientMessage, ProviderState, RequestId, Symbol};
use yew::prelude::*;

use super::markup::{cell, class_with, column_heads, raw, td};
use crate::context::AppContext;
use crate::services::now_ms;
use crate::state::{trim_qty, Action, Phase, PortfolioAction, ACCOUNT_REQUEST};

/// The positions table's columns: label and class.
const POSITION_COLUMNS: [(&str, &str); 8] = [
    ("Symbol", ""),
    ("Qty", "num"),
    ("Avg", "num opt"),
    ("Last", "num"),
    ("Value", "num opt"),
    ("P&L", "num"),
    ("Day", "num opt"),
    ("Alloc", ""),
];

/// Money with two decimals and thousands separators.
pub(crate) fn money(x: f64) -> String {
    let sign = if x < 0.0 { "-" } else { "" };
    let cents = (x.abs() * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", cents % 100)
}

/// A signed P&L figure.
fn pl(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", money(x))
    } else {
        money(x)
    }
}

fn pl_class(x: f64) -> Option<&'static str> {
    if x > 0.005 {
        Some("up")
    } else if x < -0.005 {
        Some("down")
    } else {
        None
    }
}

/// A side's name and its cell's class.
fn side_names(side: Side) -> (&'static str, &'static str) {
    match side {
        Side::Buy => ("buy", "side buy"),
        Side::Sell => ("sell", "side sell"),
    }
}

fn type_name(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
        OrderType::Stop => "stop",
        OrderType::StopLimit => "stop limit",
        OrderType::TrailingStop => "trailing stop",
    }
}

/// The prices that describe a working order.
fn order_prices(o: &Order) -> String {
    let mut parts = Vec::new();
    if let Some(p) = o.limit_price {
        parts.push(format!("limit {}", Num(p)));
    }
    if let Some(p) = o.stop_price {
        parts.push(format!("stop {}", Num(p)));
    }
    if let Some(p) = o.trail_percent {
        parts.push(format!("trail {}%", Num(p)));
    }
    if let Some(p) = o.trail_price {
        parts.push(format!("trail {}", Num(p)));
    }
    parts.join(", ")
}

/// Who takes this page's orders: the relay's paper broker, or a real broker's paper or live (real money) account,
/// with its connection state when that is not live.
fn broker_badge(broker: Option<&BrokerStatus>) -> Html {
    let Some(b) = broker else { return html! {} };
    let (label, title) = match (b.name.as_str(), b.live_money) {
        ("paper", _) => ("Paper".to_owned(), "The relay's paper broker: simulated fills on the live stream".to_owned()),
        (name, false) => {
            (format!("{} paper", capitalised(name)), format!("Orders go to {}'s paper account", capitalised(name)))
        }
        (name, true) => {
            (format!("{} LIVE", capitalised(name)), "Orders go to a live market with real money".to_owned())
        }
    };
    let state = match b.state {
        ProviderState::Live => None,
        other => Some(other.as_str()),
    };
    let title = match (&state, &b.detail) {
        (Some(s), Some(d)) => format!("{title} · {s}: {d}"),
        (Some(s), None) => format!("{title} · {s}"),
        _ => title,
    };
    let mut class = class_with("broker", b.live_money.then_some("live-money"));
    class.push(state.is_some().then_some("impaired"));
    html! {
        <span {class} data-testid="broker" data-broker={b.name.clone()} data-state={b.state.as_str()} {title}>
            {label}
            if let Some(s) = state { {format!(" · {s}")} }
        </span>
    }
}

// ASCII case mapping here and elsewhere in the page: names, tickers and Debug spellings are ASCII, and Unicode
// `to_uppercase`/`to_lowercase` link core's case tables (about 20 KB of wasm) for nothing.
fn capitalised(name: &str) -> String {
    let mut name = name.to_owned();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    name
}

/// Asks for a replacement price in a browser prompt; `None` when dismissed or not a positive number.
fn ask_price(question: &str, current: Option<f64>) -> Option<f64> {
    let window = web_sys::window()?;
    let default = current.map(|p| Num(p).to_string()).unwrap_or_default();
    let answer = window.prompt_with_message_and_default(question, &default).ok().flatten()?;
    crate::format::number(answer.trim()).filter(|p| p.is_finite() && *p > 0.0)
}

#[component]
pub(crate) fn PortfolioPanel() -> Html {
    // The context is provided by the root component around everything; without it there is nothing to show.
    let Some(ctx) = use_context::<AppContext>() else { return html! {} };
    let state = &ctx.state;
    // A new socket (or the relay's address) starts the account stream again and reloads what it does not repeat.
    let socket = match state.phase {
        Phase::Live { since_ms } => Some(since_ms),
        _ => None,
    };
    {
        let ctx = ctx.clone();
        use_effect_dyn((socket, state.api.clone()), move |(socket, api)| {
            if socket.is_some() {
                ctx.send(ClientMessage::SubscribeAccount { id: Some(RequestId::Str(ACCOUNT_REQUEST.to_owned())) });
                if let Some(api) = api.clone() {
                    let dispatcher = ctx.state.dispatcher();
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Ok(orders) = api.open_orders().await {
                            let action = PortfolioAction::Orders(orders);
                            dispatcher.dispatch(Action::Portfolio { action, now_ms: now_ms() });
                        }
                        if let Ok(fills) = api.fills().await {
                            dispatcher.dispatch(Action::Portfolio {
                                action: PortfolioAction::Fills(fills),
                                now_ms: now_ms(),
                            });
                        }
                        if let Ok(status) = api.status().await {
                            if let Some(broker) = status.broker {
                                let action = PortfolioAction::Broker(broker);
                                dispatcher.dispatch(Action::Portfolio { action, now_ms: now_ms() });
                            }
                        }
                    });
                }
            }
        });
    }
    {
        // A new fill: the ledger has a new line.
        let (api, dispatcher) = (state.api.clone(), state.dispatcher());
        use_effect_dyn(state.portfolio.fills_rev, move |rev| {
            if *rev > 0 {
                if let Some(api) = api {
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Ok(fills) = api.fills().await {
                            dispatcher.dispatch(Action::Portfolio {
                                action: PortfolioAction::Fills(fills),
                                now_ms: now_ms(),
                            });
                        }
                    });
                }
            }
        });
    }

    let portfolio = &state.portfolio;
    let price_of = |s: &str| {
        Symbol::parse(s).ok().and_then(|k| state.rows.get(&k)).and_then(|r| r.quote.as_ref()).map(|q| q.price)
    };
    let marked = portfolio.mark(price_of);

    let summary = match &marked {
        None if portfolio.refused.is_some() => html! {
            <p class="muted" role="alert" data-testid="account-refused">
                {format!("Trading is not available to this page: {}", portfolio.refused.clone().unwrap_or_default())}
            </p>
        },
        None => raw(r#"<p class="muted" data-testid="account-waiting">waiting for the account…</p>"#),
        Some(m) => {
            let item = |key: &'static str, label: &'static str, value: f64, signed: bool| {
                html! {
                    <div class="stat">
                        <dt>{label}</dt>
                        <dd data-account={key} data-value={Num(value).to_string()}
                            class={classes!(signed.then(|| pl_class(value)).flatten())}>
                            {if signed { pl(value) } else { money(value) }}
                        </dd>
                    </div>
                }
            };
            html! {
                <dl class="account-summary">
                    { for [
                        ("equity", "Equity", m.equity, false),
                        ("cash", "Cash", m.cash, false),
                        ("buying-power", "Buying power", m.buying_power, false),
                        ("day-pl", "Day P&L", m.day_pl, true),
                        ("unrealized-pl", "Unrealised", m.unrealized_pl, true),
                    ].into_iter().map(|(key, label, value, signed)| item(key, label, value, signed)) }
                </dl>
            }
        }
    };

    let positions = marked.as_ref().map(|m| m.positions.clone()).unwrap_or_default();
    let cash_share = marked.as_ref().map_or(0.0, |m| m.cash_allocation);
    let position_rows = positions.iter().map(|p| {
        html! {
            <tr data-testid="position" data-symbol={p.symbol.clone()} title={format!(
                "avg {} · value {} · day {}", Fixed(p.avg_entry_price, 2), money(p.market_value), pl(p.day_pl)
            )}>
                <th scope="row" class="sym">{p.symbol.clone()}</th>
                <td class="num" data-testid="position-qty">{trim_qty(p.qty)}</td>
                {td("num opt", Fixed(p.avg_entry_price, 2).to_string())}
                <td class="num" data-testid="position-price" data-value={Num(p.price).to_string()}>{Fixed(p.price, 2).to_string()}</td>
                {td("num opt", money(p.market_value))}
                <td class={class_with("num", pl_class(p.unrealized_pl))} data-testid="position-pl"
                    data-value={Num(p.unrealized_pl).to_string()}>
                    {format!("{} ({:+}%)", pl(p.unrealized_pl), Fixed(p.unrealized_pct, 2))}
                </td>
                <td class={class_with("num opt", pl_class(p.day_pl))} data-testid="position-day-pl">{pl(p.day_pl)}</td>
                <td class="alloc" title={format!("{}% of equity", Fixed(p.allocation, 1))}>
                    <span class="bar" style={format!("width:{}%", Fixed(p.allocation.clamp(0.0, 100.0), 1))}></span>
                    <span class="alloc-pct">{format!("{}%", Fixed(p.allocation, 1))}</span>
                </td>
                <td class="actions">
                    <button type="button" class="trade" data-trade={p.symbol.clone()} data-side="buy"
                        title={format!("Buy {}", p.symbol)} aria-label={format!("Buy {}", p.symbol)}>{"B"}</button>
                    <button type="button" class="trade" data-trade={p.symbol.clone()} data-side="sell"
                        data-qty={trim_qty(p.qty)} title={format!("Sell {}", p.symbol)}
                        aria-label={format!("Sell {}", p.symbol)}>{"S"}</button>
                </td>
            </tr>
        }
    });

    let open = portfolio.open_orders();
    let order_rows = open.iter().map(|o| {
        let cancel = {
            let (ctx, id) = (ctx.clone(), o.id.clone());
            Callback::from(move |_: MouseEvent| ctx.send(ClientMessage::CancelOrder { id: None, order_id: id.clone() }))
        };
        let replace = {
            let (ctx, o) = (ctx.clone(), (*o).clone());
            Callback::from(move |_: MouseEvent| {
                let mut change = ReplaceRequest::default();
                match o.order_type {
                    OrderType::Limit | OrderType::StopLimit => {
                        change.limit_price = ask_price("New limit price", o.limit_price);
                        if change.limit_price.is_none() {
                            return;
                        }
                    }
                    OrderType::Stop => {
                        change.stop_price = ask_price("New stop price", o.stop_price);
                        if change.stop_price.is_none() {
                            return;
                        }
                    }
                    OrderType::TrailingStop => {
                        change.trail = ask_price("New trail", o.trail_percent.or(o.trail_price));
                        if change.trail.is_none() {
                            return;
                        }
                    }
                    OrderType::Market => return,
                }
                ctx.send(ClientMessage::ReplaceOrder { id: None, order_id: o.id.clone(), change });
            })
        };
        let (side, side_class) = side_names(o.side);
        let qty = o.qty.map(trim_qty).unwrap_or_else(|| o.notional.map(|n| format!("${}", Num(n))).unwrap_or_default());
        html! {
            <tr data-testid="open-order" data-order-id={o.id.clone()} data-symbol={o.symbol.clone()}>
                {cell("td", side_class, side.into())}
                <th scope="row" class="sym">{o.symbol.clone()}</th>
                {td("num", qty)}
                {cell("td", "", type_name(o.order_type).into())}
                {td("num", order_prices(o))}
                {cell("td", "status", o.status.as_str().into())}
                <td class="actions">
                    if o.order_type != OrderType::Market {
                        <button type="button" data-testid="replace-order" onclick={replace}>{"Replace"}</button>
                    }
                    <button type="button" data-testid="cancel-order" onclick={cancel}>{"Cancel"}</button>
                </td>
            </tr>
        }
    });

    let fill_rows = portfolio.fills.iter().take(50).map(|f| {
        let (side, side_class) = side_names(f.side);
        html! {
            <tr data-testid="fill" data-order-id={f.order_id.clone()}>
                {cell("td", side_class, side.into())}
                <th scope="row" class="sym">{f.symbol.clone()}</th>
                {td("num", trim_qty(f.qty))}
                {td("num", Fixed(f.price, 2).to_string())}
                {td("time", crate::format::clock(f.ts, crate::services::tz_offset_minutes()))}
            </tr>
        }
    });

    let reset = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| {
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message(
                        "Start the paper account over? Open orders are cancelled and positions closed.",
                    )
                    .ok()
                })
                .unwrap_or(false);
            if sure {
                ctx.send(ClientMessage::ResetAccount { id: None });
            }
        })
    };

    html! {
        <section class="panel portfolio" data-testid="portfolio" aria-labelledby="portfolio-title">
            <header class="panel-head">
                {raw(r#"<h2 id="portfolio-title">Portfolio</h2>"#)}
                {broker_badge(portfolio.broker.as_ref())}
                if portfolio.broker.as_ref().is_none_or(|b| b.name == "paper") {
                    <button type="button" class="reset" data-testid="reset-account" onclick={reset}
                        title="Start the paper account over">{"Reset"}</button>
                }
            </header>
            {summary}
            {raw(r#"<h3>Positions</h3>"#)}
            if positions.is_empty() {
                {raw(r#"<p class="muted" data-testid="no-positions">No positions. Trade from a row or a chart.</p>"#)}
            } else {
                <table class="positions">
                    <thead><tr>
                        {column_heads(&POSITION_COLUMNS, true)}<th></th>
                    </tr></thead>
                    <tbody>{for position_rows}</tbody>
                </table>
                <p class="muted cash-share">{format!("Cash {}% of equity", Fixed(cash_share, 1))}</p>
            }
            <div data-testid="open-orders">
                <h3>{format!("Open orders ({})", open.len())}</h3>
                if open.is_empty() {
                    {raw(r#"<p class="muted">None working.</p>"#)}
                } else {
                    <table class="orders"><tbody>{for order_rows}</tbody></table>
                }
            </div>
            <div data-testid="fills">
                {raw(r#"<h3>Fills</h3>"#)}
                if portfolio.fills.is_empty() {
                    {raw(r#"<p class="muted">No fills yet.</p>"#)}
                } else {
                    <table class="fills"><tbody>{for fill_rows}</tbody></table>
                }
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::money;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn money_groups_thousands_and_keeps_the_sign() {
        assert_eq!(money(100_000.0), "100,000.00");
        assert_eq!(money(-1234.567), "-1,234.57");
        assert_eq!(money(0.4), "0.40");
    }
}
