//! The order ticket (`data-testid="order-ticket"`): a dialog to place one order, opened by any button with a
//! `data-trade="SYMBOL"` attribute (a watchlist row's, the detail view's, a position's), with `data-side` and
//! `data-qty` to prefill. Like the detail view's row clicks, one listener on the document catches them, so the
//! places that offer trading need no knowledge of the ticket.
//!
//! The form is checked by [`TicketForm::validate`] before anything is sent; the order goes out as `place_order`
//! on the page's connection with a request id, and the relay's answer to that id (accepted, or rejected with a
//! code) is shown in the ticket, a rejection next to the field it is about.

use crate::format::Fixed;
use crate::hooks::use_effect_dyn;
use std::cell::Cell;
use std::rc::Rc;

use hamster_shared::broker::{OrderClass, OrderType, Side, TimeInForce};
use hamster_shared::{ClientMessage, RequestId};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::markup::{class_with, options, raw};
use crate::context::AppContext;
use crate::services::now_ms;
use crate::state::{trim_qty, Action, Field, FieldError, PortfolioAction, TicketForm};

/// The ticket a click on `target` asks for, if it is (inside) a `data-trade` button.
fn trade_request(target: Option<web_sys::EventTarget>) -> Option<TicketForm> {
    let el = target?.dyn_into::<web_sys::Element>().ok()?;
    let button = el.closest("[data-trade]").ok().flatten()?;
    let symbol = button.get_attribute("data-trade")?;
    let side = match button.get_attribute("data-side").as_deref() {
        Some("sell") => Side::Sell,
        _ => Side::Buy,
    };
    let mut form = TicketForm::new(&symbol, side);
    if let Some(qty) = button.get_attribute("data-qty") {
        form.amount = qty;
    }
    Some(form)
}

fn type_value(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
        OrderType::Stop => "stop",
        OrderType::StopLimit => "stop_limit",
        OrderType::TrailingStop => "trailing_stop",
    }
}

fn parse_type(v: &str) -> OrderType {
    match v {
        "limit" => OrderType::Limit,
        "stop" => OrderType::Stop,
        "stop_limit" => OrderType::StopLimit,
        "trailing_stop" => OrderType::TrailingStop,
        _ => OrderType::Market,
    }
}

fn tif_value(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Day => "day",
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
    }
}

fn parse_tif(v: &str) -> TimeInForce {
    match v {
        "gtc" => TimeInForce::Gtc,
        "ioc" => TimeInForce::Ioc,
        _ => TimeInForce::Day,
    }
}

fn class_value(c: OrderClass) -> &'static str {
    match c {
        OrderClass::Simple => "simple",
        OrderClass::Oco => "oco",
        OrderClass::Bracket => "bracket",
    }
}

fn parse_class(v: &str) -> OrderClass {
    match v {
        "oco" => OrderClass::Oco,
        "bracket" => OrderClass::Bracket,
        _ => OrderClass::Simple,
    }
}

type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// `<label>Label<input inputmode="decimal" …></label>`: the ticket's number fields, built by one function.
fn decimal_field(label: &'static str, testid: &'static str, value: String, oninput: Callback<InputEvent>) -> Html {
    html! {
        <label>{label}
            <input data-testid={testid} inputmode="decimal" {value} {oninput} />
        </label>
    }
}

#[component]
pub(crate) fn OrderTicket() -> Html {
    let ctx = use_context::<AppContext>();
    let form = use_state(|| None::<TicketForm>);
    let errors = use_state(Vec::<FieldError>::new);
    let counter = use_mut_ref(|| Cell::new(0u64));
    {
        let (form, errors) = (form.setter(), errors.setter());
        use_effect_dyn((), move |_| {
            let mut listeners: Vec<(web_sys::EventTarget, &'static str, Listener)> = Vec::new();
            if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                let (f, e) = (form.clone(), errors.clone());
                let click = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
                    if let Some(ticket) = trade_request(ev.target()) {
                        ev.prevent_default();
                        e.set(Vec::new());
                        f.set(Some(ticket));
                    }
                });
                let _ = doc.add_event_listener_with_callback("click", click.as_ref().unchecked_ref());
                listeners.push((doc.clone().into(), "click", click));
            }
            move || {
                for (target, kind, closure) in listeners {
                    let _ = target.remove_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
                }
            }
        });
    }
    let (Some(ctx), Some(current)) = (ctx, (*form).clone()) else { return html! {} };
    let outcome = ctx.state.portfolio.ticket.clone();

    // Every edit goes through here: the old messages no longer apply.
    let edit = {
        let (form, errors, ctx) = (form.clone(), errors.clone(), ctx.clone());
        Rc::new(move |change: &dyn Fn(&mut TicketForm)| {
            let Some(mut next) = (*form).clone() else { return };
            change(&mut next);
            form.set(Some(next));
            errors.set(Vec::new());
            if ctx.state.portfolio.ticket.rejected.is_some() {
                ctx.state.dispatch(Action::Portfolio { action: PortfolioAction::TicketEdited, now_ms: now_ms() });
            }
        })
    };
    let text_input = |set: fn(&mut TicketForm, String)| {
        let edit = edit.clone();
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            edit(&|f: &mut TicketForm| set(f, value.clone()));
        })
    };
    let select = |set: fn(&mut TicketForm, &str)| {
        let edit = edit.clone();
        Callback::from(move |e: Event| {
            let value = e.target_unchecked_into::<HtmlSelectElement>().value();
            edit(&|f: &mut TicketForm| set(f, &value));
        })
    };
    let side_button = |side: Side, label: &'static str, testid: &'static str| {
        let edit = edit.clone();
        let onclick = Callback::from(move |_: MouseEvent| edit(&|f: &mut TicketForm| f.side = side));
        html! {
            <button type="button" class={class_with("side-choice", (current.side == side).then_some("chosen"))}
                aria-pressed={(current.side == side).to_string()} data-testid={testid} {onclick}>{label}</button>
        }
    };
    // The client's own message for a field, else the relay's rejection when it is about that field.
    let message = |field: Field| -> Html {
        let text = errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
            .or_else(|| outcome.rejected.as_ref().filter(|r| r.field == field).map(|r| r.message.clone()));
        match text {
            Some(text) => html! {
                <p class="field-error" role="alert" data-testid={format!("ticket-error-{}", field.as_str())}>{text}</p>
            },
            None => html! {},
        }
    };

    let close = {
        let form = form.clone();
        Callback::from(move |_: MouseEvent| form.set(None))
    };
    let submit = {
        let (form, errors, ctx, counter) = (form.clone(), errors.clone(), ctx.clone(), counter.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(f) = (*form).clone() else { return };
            let n = counter.borrow().get() + 1;
            counter.borrow().set(n);
            // A client order id makes a resend of the same click harmless (the broker answers with the first order).
            match f.validate(Some(format!("web-{}-{n}", now_ms()))) {
                Err(found) => errors.set(found),
                Ok(order) => {
                    errors.set(Vec::new());
                    let id = RequestId::Str(format!("ticket-{n}"));
                    let now = now_ms();
                    ctx.state
                        .dispatch(Action::Portfolio { action: PortfolioAction::TicketSent(id.clone()), now_ms: now });
                    ctx.send(ClientMessage::PlaceOrder { id: Some(id), order: Box::new(order) });
                }
            }
        })
    };

    let status = if outcome.pending.is_some() {
        raw(r#"<p class="ticket-status" data-testid="ticket-status" data-state="pending">Sending…</p>"#)
    } else if let Some(id) = &outcome.accepted {
        let order = ctx.state.portfolio.orders.get(id);
        let text = match order {
            Some(o) => format!(
                "Order {} {}{}",
                o.status.as_str(),
                o.filled_avg_price.map(|p| format!(" at {}", Fixed(p, 2))).unwrap_or_default(),
                if o.filled_qty > 0.0 { format!(" ({} filled)", trim_qty(o.filled_qty)) } else { String::new() }
            ),
            None => "Order accepted".to_owned(),
        };
        html! { <p class="ticket-status ok" data-testid="ticket-status" data-state="accepted">{text}</p> }
    } else if outcome.rejected.is_some() {
        raw(
            r#"<p class="ticket-status bad" data-testid="ticket-status" data-state="rejected">Rejected by the broker</p>"#,
        )
    } else {
        html! {}
    };

    let buy = current.side == Side::Buy;
    html! {
        <div class="ticket-backdrop">
            <form class={if buy { "ticket buy" } else { "ticket sell" }} role="dialog" aria-modal="true"
                aria-label="Order ticket" data-testid="order-ticket" data-symbol={current.symbol.clone()}
                onsubmit={submit} novalidate=true>
                <header class="ticket-head">
                    {raw(r#"<h2>Order</h2>"#)}
                    <div class="sides" role="group" aria-label="Side">
                        {side_button(Side::Buy, "Buy", "ticket-buy")}
                        {side_button(Side::Sell, "Sell", "ticket-sell")}
                    </div>
                    <button type="button" class="close" aria-label="Close" data-testid="ticket-close" onclick={close}>{"×"}</button>
                </header>
                <label>{"Symbol"}
                    <input data-testid="ticket-symbol" value={current.symbol.clone()} autocomplete="off"
                        oninput={text_input(|f, v| f.symbol = v)} />
                </label>
                {message(Field::Symbol)}
                <div class="ticket-row">
                    <label>{"Type"}
                        <select data-testid="ticket-type" onchange={select(|f, v| f.order_type = parse_type(v))}>
                            {options(&[
                                ("market", "market"),
                                ("limit", "limit"),
                                ("stop", "stop"),
                                ("stop_limit", "stop limit"),
                                ("trailing_stop", "trailing stop"),
                            ], type_value(current.order_type))}
                        </select>
                    </label>
                    <label>{"Time in force"}
                        <select data-testid="ticket-tif" onchange={select(|f, v| f.time_in_force = parse_tif(v))}>
                            {options(&[("day", "day"), ("gtc", "gtc"), ("ioc", "ioc")], tif_value(current.time_in_force))}
                        </select>
                    </label>
                </div>
                <div class="ticket-row">
                    {decimal_field(if current.notional { "Amount ($)" } else { "Quantity" }, "ticket-amount", current.amount.clone(), text_input(|f, v| f.amount = v))}
                    <label>{"In"}
                        <select data-testid="ticket-amount-kind" onchange={select(|f, v| f.notional = v == "notional")}>
                            {options(&[("qty", "shares/units"), ("notional", "cash")],
                                if current.notional { "notional" } else { "qty" })}
                        </select>
                    </label>
                </div>
                {message(Field::Amount)}
                if current.needs_limit() {
                    {decimal_field("Limit price", "ticket-limit", current.limit_price.clone(), text_input(|f, v| f.limit_price = v))}
                    {message(Field::LimitPrice)}
                }
                if current.needs_stop() {
                    {decimal_field("Stop price", "ticket-stop", current.stop_price.clone(), text_input(|f, v| f.stop_price = v))}
                    {message(Field::StopPrice)}
                }
                if current.needs_trail() {
                    <div class="ticket-row">
                        {decimal_field("Trail", "ticket-trail", current.trail.clone(), text_input(|f, v| f.trail = v))}
                        <label>{"By"}
                            <select data-testid="ticket-trail-kind" onchange={select(|f, v| f.trail_percent = v == "percent")}>
                                {options(&[("percent", "%"), ("price", "price")],
                                    if current.trail_percent { "percent" } else { "price" })}
                            </select>
                        </label>
                    </div>
                    {message(Field::Trail)}
                }
                <label>{"Order class"}
                    <select data-testid="ticket-class" onchange={select(|f, v| f.order_class = parse_class(v))}>
                        {options(&[("simple", "simple"), ("bracket", "bracket"), ("oco", "oco")],
                            class_value(current.order_class))}
                    </select>
                </label>
                if current.has_legs() {
                    <div class="ticket-row">
                        {decimal_field("Take profit", "ticket-take-profit", current.take_profit.clone(), text_input(|f, v| f.take_profit = v))}
                        {decimal_field("Stop loss", "ticket-stop-loss", current.stop_loss.clone(), text_input(|f, v| f.stop_loss = v))}
                    </div>
                    {message(Field::TakeProfit)}
                    {message(Field::StopLoss)}
                }
                {message(Field::Form)}
                <button type="submit" class={if buy { "submit buy" } else { "submit sell" }} data-testid="ticket-submit">
                    {format!("{} {}", if buy { "Buy" } else { "Sell" }, current.symbol.trim().to_ascii_uppercase())}
                </button>
                {status}
            </form>
        </div>
    }
}
