//! The watchlist table. It re-renders with the model, but its rows are
//! [`QuoteRow`](super::quote_row::QuoteRow)s whose props compare by pointer, so only rows whose data changed
//! render again, in [`RowGroup`]s that render only while on screen.
//!
//! Sorting is a view of the watchlist, not a change to it: a column header cycles ascending → descending → the
//! user's own order. While sorted by a live column rows move as prices tick; "Freeze order" keeps the order they
//! had when it was pressed (new symbols join at the end) until it is released.
//!
//! Keyboard (outside text fields): `/` focuses the add field, ↑/↓ move between rows, Enter opens the focused
//! row's chart, Delete removes it, `a` prefills an alert for it.

use crate::hooks::use_effect_dyn;
use std::cmp::Ordering;
use std::rc::Rc;

use hamster_shared::Symbol;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::markup::raw;
use super::row_group::{GroupRow, RowGroup, GROUP_ROWS};
use crate::context::AppContext;
use crate::services::on_screen::OnScreen;
use crate::state::{Action, AlertAction, Row};

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Symbol,
    Price,
    ChangePct,
    Volume,
}

impl SortBy {
    fn key(self) -> &'static str {
        match self {
            SortBy::Symbol => "symbol",
            SortBy::Price => "price",
            SortBy::ChangePct => "change-pct",
            SortBy::Volume => "volume",
        }
    }

    /// Rows without the value sort last either way.
    fn compare(self, a: &Row, b: &Row, descending: bool) -> Ordering {
        let value = |r: &Row| {
            r.quote.as_ref().and_then(|q| match self {
                SortBy::Symbol => None,
                SortBy::Price => Some(q.price),
                SortBy::ChangePct => q.change_pct,
                SortBy::Volume => q.volume,
            })
        };
        let flip = |o: Ordering| if descending { o.reverse() } else { o };
        match self {
            SortBy::Symbol => flip(a.symbol.as_str().cmp(b.symbol.as_str())),
            _ => match (value(a), value(b)) {
                (Some(x), Some(y)) => flip(x.partial_cmp(&y).unwrap_or(Ordering::Equal)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        }
    }
}

/// The table's columns before the actions: label, how it sorts (if it does) and class.
const COLUMNS: [(&str, Option<SortBy>, &str); 9] = [
    ("Symbol", Some(SortBy::Symbol), "sym"),
    ("Price", Some(SortBy::Price), "num"),
    ("Chg", None, "num opt-sm"),
    ("Chg %", Some(SortBy::ChangePct), "num"),
    ("Bid / Ask", None, "num opt"),
    ("Volume", Some(SortBy::Volume), "num opt"),
    ("Last tick", None, "opt opt-md"),
    ("Provider", None, "opt opt-md"),
    ("Trend", None, "spark-col"),
];

/// Whether a key press belongs to a text field (shortcuts stay out of typing).
fn typing(event: &KeyboardEvent) -> bool {
    let Some(el) = event.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return false };
    matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") || el.has_attribute("contenteditable")
}

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// The rows on the page, in order, and the index of the focused one.
fn rows_and_focus() -> (Vec<web_sys::HtmlElement>, Option<usize>) {
    let Some(doc) = document() else { return (Vec::new(), None) };
    let list = doc.query_selector_all("tr[data-testid=\"quote-row\"]").ok();
    let rows: Vec<web_sys::HtmlElement> = list
        .map(|l| (0..l.length()).filter_map(|i| l.get(i)?.dyn_into::<web_sys::HtmlElement>().ok()).collect())
        .unwrap_or_default();
    let active = doc.active_element();
    let focused = active.and_then(|a| rows.iter().position(|r| r.is_same_node(Some(&a))));
    (rows, focused)
}

/// Row groups this close to the viewport (px) count as on screen: about four rows' worth, so rows scrolling
/// in at a normal pace are up to date before they show.
const ON_SCREEN_MARGIN_PX: u32 = 160;

#[component]
pub(crate) fn Watchlist() -> Html {
    let ctx = use_context::<AppContext>();
    // Stable across renders (the context's dispatcher never changes), so rows keep equal props.
    let on_remove = {
        let ctx = ctx.clone();
        use_callback((), move |symbol: Symbol, _| {
            if let Some(ctx) = &ctx {
                ctx.remove(symbol);
            }
        })
    };
    let on_replace = {
        let ctx = ctx.clone();
        use_callback((), move |(old, new): (Symbol, Symbol), _| {
            if let Some(ctx) = &ctx {
                ctx.replace(old, new);
            }
        })
    };
    let on_visible = {
        let ctx = ctx.clone();
        use_callback((), move |(symbols, on_screen): (Vec<Symbol>, bool), _| {
            if let Some(ctx) = &ctx {
                ctx.on_screen(symbols, on_screen);
            }
        })
    };
    let on_screen = use_memo((), |_| OnScreen::new(ON_SCREEN_MARGIN_PX).map(Rc::new));
    let sort = use_state(|| None::<(SortBy, bool)>);
    let frozen = use_state(|| None::<Vec<Symbol>>);
    // The keyboard: one listener on the document for the page's life.
    {
        let ctx = ctx.clone();
        use_effect_dyn((), move |_| {
            let listener = document().zip(ctx).map(|(doc, ctx)| {
                gloo_events::EventListener::new(&doc, "keydown", move |event| {
                    let Some(event) = event.dyn_ref::<KeyboardEvent>() else { return };
                    if typing(event) || event.ctrl_key() || event.meta_key() || event.alt_key() {
                        return;
                    }
                    let (rows, focused) = rows_and_focus();
                    let symbol_of =
                        |i: usize| rows.get(i)?.get_attribute("data-symbol").and_then(|s| Symbol::parse(&s).ok());
                    match event.key().as_str() {
                        "/" => {
                            let input = document()
                                .and_then(|d| d.query_selector("[data-testid=\"symbol-input\"]").ok().flatten())
                                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
                            if let Some(input) = input {
                                event.prevent_default();
                                let _ = input.focus();
                            }
                        }
                        "ArrowDown" | "ArrowUp" if !rows.is_empty() => {
                            event.prevent_default();
                            let next = match (focused, event.key() == "ArrowDown") {
                                (None, _) => 0,
                                (Some(i), true) => (i + 1).min(rows.len() - 1),
                                (Some(i), false) => i.saturating_sub(1),
                            };
                            let _ = rows[next].focus();
                        }
                        "Delete" => {
                            if let Some(symbol) = focused.and_then(symbol_of) {
                                event.prevent_default();
                                // The row below takes the focus, so Delete can be pressed again.
                                let next =
                                    focused.map(|i| if i + 1 < rows.len() { i + 1 } else { i.saturating_sub(1) });
                                if let Some(row) = next.and_then(|n| rows.get(n)).filter(|_| rows.len() > 1) {
                                    let _ = row.focus();
                                }
                                ctx.remove(symbol);
                            }
                        }
                        "a" => {
                            if let Some(i) = focused {
                                if let Some(symbol) = symbol_of(i) {
                                    event.prevent_default();
                                    let price = rows[i]
                                        .query_selector("[data-testid=\"alert-bell\"]")
                                        .ok()
                                        .flatten()
                                        .and_then(|b| b.get_attribute("data-price"))
                                        .and_then(|p| crate::format::number(&p))
                                        .unwrap_or(0.0);
                                    ctx.state.dispatch(Action::Alert(AlertAction::Draft { symbol, price }));
                                }
                            }
                        }
                        _ => {}
                    }
                })
            });
            move || drop(listener)
        });
    }
    let Some(ctx) = ctx else {
        return Html::default();
    };
    let state = &ctx.state;
    let mut ordered: Vec<&Rc<Row>> = state.watchlist.iter().filter_map(|s| state.rows.get(s)).collect();
    match (&*frozen, *sort) {
        (Some(order), _) => {
            let at = |s: &Symbol| order.iter().position(|o| o == s).unwrap_or(usize::MAX);
            crate::sort::sort_by_key(&mut ordered, |r| at(&r.symbol));
        }
        (None, Some((by, descending))) => crate::sort::sort_by(&mut ordered, |a, b| by.compare(a, b, descending)),
        (None, None) => {}
    }
    let rows: Vec<GroupRow> =
        ordered.iter().map(|row| GroupRow { row: Rc::clone(row), stale: state.row_is_stale(row) }).collect();
    let header = |label: &'static str, by: SortBy, class: &'static str| {
        let current = sort.filter(|(b, _)| *b == by).map(|(_, d)| d);
        let aria = match current {
            Some(true) => "descending",
            Some(false) => "ascending",
            None => "none",
        };
        let onclick = {
            let (sort, frozen) = (sort.clone(), frozen.clone());
            Callback::from(move |_: MouseEvent| {
                frozen.set(None);
                sort.set(match current {
                    None => Some((by, by != SortBy::Symbol)),
                    Some(d) if d == (by != SortBy::Symbol) => Some((by, !d)),
                    Some(_) => None,
                });
            })
        };
        let glyph = match current {
            Some(true) => " ▼",
            Some(false) => " ▲",
            None => "",
        };
        html! {
            <th scope="col" role="columnheader" class={class} aria-sort={aria}>
                <button type="button" class="sort" data-testid={format!("sort-{}", by.key())} {onclick}>
                    {label}<span aria-hidden="true">{glyph}</span>
                </button>
            </th>
        }
    };
    let freeze = {
        let (frozen, order) = (frozen.clone(), ordered.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>());
        Callback::from(move |_: MouseEvent| frozen.set(if frozen.is_some() { None } else { Some(order.clone()) }))
    };
    html! {
        <div class="table-wrap">
            if sort.is_some() {
                <div class="sort-bar">
                    <button type="button" data-testid="freeze-order" aria-pressed={frozen.is_some().to_string()}
                        onclick={freeze}>
                        { if frozen.is_some() { "Order frozen (release)" } else { "Freeze order" } }
                    </button>
                </div>
            }
            <table class="quotes" role="table">
                <thead role="rowgroup">
                    <tr role="row">
                        { for COLUMNS.iter().map(|&(label, by, class)| match by {
                            Some(by) => header(label, by, class),
                            None => html! { <th scope="col" role="columnheader" {class}>{label}</th> },
                        }) }
                        <th scope="col" role="columnheader">{raw(r#"<span class="sr-only">Remove</span>"#)}</th>
                    </tr>
                </thead>
                { for rows.chunks(GROUP_ROWS).enumerate().map(|(i, rows)| html! {
                    <RowGroup key={i} rows={rows.to_vec()} on_remove={on_remove.clone()} on_replace={on_replace.clone()}
                        on_screen={(*on_screen).clone()} on_visible={on_visible.clone()} />
                }) }
                if rows.is_empty() {
                    <tbody role="rowgroup">
                        <tr class="empty" role="row">
                            <td role="cell" colspan="10">{"The watchlist is empty. Add a symbol above."}</td>
                        </tr>
                    </tbody>
                }
            </table>
        </div>
    }
}
