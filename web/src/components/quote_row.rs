//! One watchlist row. Props compare by pointer (`Rc<Row>`), so the row renders only when the reducer replaced
//! its data. A price change lights the price green or red for [`FLASH_MS`], as a class that a timer takes off
//! again: a discrete highlight costs the browser two style changes, where a fading CSS animation restyled and
//! repainted the cell in every frame it ran (with many ticking rows in view, the largest rendering cost left;
//! docs/dashboard-performance.md).
//!
//! A refused row shows the relay's reason and, when the relay had closest matches ("did you mean"), one button
//! per match that replaces the refused symbol with it in place: focusable and pressed with Enter or Space like
//! any button.
//!
//! Rows far out of view do not render at all: see [`super::row_group`].

use crate::format::Num;
use crate::hooks::use_effect_dyn;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use hamster_shared::Symbol;
use yew::prelude::*;

use super::markup::{class_with, raw};
use super::sparkline::Sparkline;
use crate::format;
use crate::services::tz_offset_minutes;
use crate::state::{Direction, Row};

#[derive(Properties)]
pub(crate) struct QuoteRowProps {
    pub(crate) row: Rc<Row>,
    pub(crate) stale: bool,
    pub(crate) on_remove: Callback<Symbol>,
    /// Replace the first symbol with the second (a refused symbol by one of the relay's suggestions).
    pub(crate) on_replace: Callback<(Symbol, Symbol)>,
}

impl PartialEq for QuoteRowProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.row, &other.row)
            && self.stale == other.stale
            && self.on_remove == other.on_remove
            && self.on_replace == other.on_replace
    }
}

/// How long a price change stays lit.
const FLASH_MS: u32 = 450;

#[component]
pub(crate) fn QuoteRow(props: &QuoteRowProps) -> Html {
    let row = &props.row;
    let symbol = &row.symbol;
    // The flash whose time is up; the row is lit while its latest flash is a newer one.
    let ended = use_state_eq(|| 0u64);
    {
        let ended = ended.clone();
        use_effect_dyn(row.flash_seq, move |&seq| {
            let timer = (seq > 0).then(|| Timeout::new(FLASH_MS, move || ended.set(seq)));
            move || drop(timer)
        });
    }
    let onclick = {
        let (on_remove, symbol) = (props.on_remove.clone(), symbol.clone());
        Callback::from(move |_: MouseEvent| on_remove.emit(symbol.clone()))
    };
    let flash = match row.direction {
        _ if row.flash_seq == *ended => None,
        Direction::Up => Some("flash-up"),
        Direction::Down => Some("flash-down"),
        Direction::Flat => None,
    };
    let mut class = class_with("row", props.stale.then_some("stale"));
    class.push(row.cached.then_some("cached"));
    class.push(row.refusal.is_some().then_some("refused"));
    let remove = html! {
        <td role="cell" class="actions">
            <button type="button" class="bell" data-testid="alert-bell" data-alert={symbol.to_string()}
                data-price={row.quote.as_ref().map(|q| Num(q.price).to_string())}
                aria-label={format!("Alert on {symbol}")} title={format!("Set an alert on {symbol}")}>
                {raw(BELL_SVG)}
            </button>
            <button type="button" class="trade" data-testid="trade-symbol" data-trade={symbol.to_string()}
                aria-label={format!("Trade {symbol}")} title={format!("Trade {symbol}")}>{"$"}</button>
            <button type="button" class="remove" data-testid="remove-symbol"
                aria-label={format!("Remove {symbol}")} title={format!("Remove {symbol}")} onclick={onclick}>
                {"×"}
            </button>
        </td>
    };
    let head = html! {
        <th scope="row" role="rowheader" class="sym">
            <span class="ticker" title={symbol.to_string()}>{symbol.as_str()}</span>
            if row.cached {
                {raw(r#"<span class="tag cached-tag" title="Restored from this browser's cache">cached</span>"#)}
            }
        </th>
    };
    // A row without a price yet: dashes where the price and change would be.
    let dashes = || {
        html! {
            <>
                <td role="cell" class="num price" data-testid="price">{"—"}</td>
                <td role="cell" class="num opt-sm">{"—"}</td>
                <td role="cell" class="num" data-testid="change-pct">{"—"}</td>
            </>
        }
    };

    // One `<tr>` for every kind of row; only the cells between the symbol and the actions differ.
    let (mut kind, mut provider, mut title) = (None, None, None);
    let cells = if let Some(refusal) = &row.refusal {
        let suggestion = |s: &Symbol| {
            let onclick = {
                let (on_replace, old, new) = (props.on_replace.clone(), symbol.clone(), s.clone());
                Callback::from(move |_: MouseEvent| on_replace.emit((old.clone(), new.clone())))
            };
            html! {
                <button type="button" class="did-you-mean" data-testid="did-you-mean" data-suggestion={s.to_string()}
                    aria-label={format!("Replace {symbol} with {s}")} title={format!("Replace {symbol} with {s}")}
                    onclick={onclick}>
                    {s.as_str()}
                </button>
            }
        };
        html! {
            <td role="cell" colspan="8" class="refusal" data-testid="rejection">
                <span role="alert">
                    {format!("Rejected by relay: {} ({})", refusal.message, refusal.code.as_str())}
                </span>
                if !refusal.suggestions.is_empty() {
                    <span class="suggestions-inline" role="group" aria-label="Did you mean">
                        {" Did you mean: "}
                        { for refusal.suggestions.iter().map(suggestion) }
                    </span>
                }
            </td>
        }
    } else if let (None, None, Some(after_ms)) = (&row.quote, &row.last_event, row.no_data_ms) {
        // Subscribed and accepted, but the provider has sent nothing: say so rather than look pending forever.
        let secs = after_ms / 1000;
        html! {
            <td role="cell" colspan="8" class="refusal no-data" data-testid="no-data">
                <span role="status">
                    {format!("No data after {secs} s: the provider accepted {symbol} but sends nothing \
                              (a symbol it does not carry, or a closed market). Try the search above.")}
                </span>
            </td>
        }
    } else if let (None, Some(event)) = (&row.quote, &row.last_event) {
        // A channel (a feed of events, not prices): show how many arrived and the latest one.
        kind = Some("channel");
        html! {
            <>
                {dashes()}
                <td role="cell" colspan="5" class="event" title={event.preview.clone()}>
                    <span class="tag">{format!("{} events", row.events)}</span>
                    <time>{format::clock(event.ts, tz_offset_minutes())}</time>
                    <code>{event.preview.clone()}</code>
                </td>
            </>
        }
    } else if let Some(q) = &row.quote {
        provider = Some(q.provider.clone());
        title = row.provenance(tz_offset_minutes());
        let dash = || "—".to_owned();
        let change = q.change.map(|c| format::change(symbol, c, q.price)).unwrap_or_else(dash);
        let pct = q.change_pct.map(format::percent).unwrap_or_else(dash);
        let bid_ask = match (q.bid, q.ask) {
            (None, None) => dash(),
            (bid, ask) => format!(
                "{} / {}",
                bid.map(|b| format::price(symbol, b)).unwrap_or_else(dash),
                ask.map(|a| format::price(symbol, a)).unwrap_or_else(dash)
            ),
        };
        let spark: Vec<f64> = row.spark.iter().map(|p| p.price).collect();
        html! {
            <>
                <td role="cell" class={class_with("num price", flash)} data-testid="price" data-value={Num(q.price).to_string()}>
                    {format::price(symbol, q.price)}
                </td>
                <td role="cell" class={class_with("num opt-sm", format::trend(&change))}>{change}</td>
                <td role="cell" class={class_with("num", format::trend(&pct))} data-testid="change-pct">{pct}</td>
                <td role="cell" class="num opt">{bid_ask}</td>
                <td role="cell" class="num opt">{q.volume.map(format::volume).unwrap_or_else(dash)}</td>
                <td role="cell" class="opt opt-md time" data-ts={q.ts.to_string()}>{format::clock(q.ts, tz_offset_minutes())}</td>
                <td role="cell" class="opt opt-md provider-name">{q.provider.clone()}</td>
                <td role="cell" class="spark-col"><Sparkline values={spark} /></td>
            </>
        }
    } else {
        html! {
            <>
                {dashes()}
                <td role="cell" colspan="5" class="waiting">{"waiting for data…"}</td>
            </>
        }
    };
    html! {
        <tr class={class} role="row" tabindex="-1" data-testid="quote-row" data-symbol={symbol.to_string()}
            data-kind={kind} data-provider={provider} title={title}>
            {head}
            {cells}
            {remove}
        </tr>
    }
}

/// The alert bell, drawn, as headless and minimal systems have no emoji font. Static markup, so one string
/// rather than the wasm that would build it node by node.
const BELL_SVG: &str = r#"<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path d="M8 1.5a4 4 0 0 0-4 4v3L2.5 11h11L12 8.5v-3a4 4 0 0 0-4-4zM6.5 12.5a1.5 1.5 0 0 0 3 0z" fill="currentColor"/></svg>"#;
