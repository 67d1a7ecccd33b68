//! The add-symbol field, with search as you type. While the user types, the relay's instrument catalogs are
//! searched (`GET /api/symbols`, through the page's one REST service) and the matches listed under the field
//! with their name, provider and asset class; arrows move through them, Enter or a click adds the highlighted
//! one, Escape closes the list. Whatever is added is validated with the shared symbol rules first, so the user
//! sees the same reason the relay would give; the relay's own refusals (an `unknown_symbol` with its "did you
//! mean") show up in the row.

use std::rc::Rc;

use gloo_timers::callback::Timeout;
use hamster_shared::api::SymbolMatch;
use hamster_shared::Symbol;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::markup::{class_with, raw};
use crate::context::AppContext;

/// Matches shown under the field.
const SUGGESTIONS: usize = 8;
/// Typing pauses this long before the relay is asked, so a word typed quickly costs one request.
const DEBOUNCE_MS: u32 = 120;

/// Validates `raw` and adds it to the watchlist; the reason otherwise.
fn add(ctx: &AppContext, raw: &str) -> Result<(), String> {
    match Symbol::parse(raw) {
        Err(why) => Err(why.to_string()),
        Ok(symbol) if ctx.state.rows.contains_key(&symbol) => Err(format!("{symbol} is already in the watchlist")),
        Ok(symbol) => {
            ctx.add(symbol);
            Ok(())
        }
    }
}

/// The list under the field: what matched, and which one the arrows are on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Matches {
    items: Vec<SymbolMatch>,
    highlighted: Option<usize>,
}

#[component]
pub(crate) fn AddSymbol() -> Html {
    let ctx = use_context::<AppContext>();
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let matches = use_state(Matches::default);
    // The pending search, and a counter so an answer to an older query never replaces a newer one's.
    let pending = use_mut_ref(|| None::<Timeout>);
    let generation = use_mut_ref(|| 0u64);

    let close = {
        let matches = matches.clone();
        move || matches.set(Matches::default())
    };

    let commit = {
        let (ctx, input, error, close) = (ctx.clone(), input.clone(), error.clone(), close.clone());
        let generation = generation.clone();
        Rc::new(move |raw: String| {
            let (Some(ctx), Some(field)) = (&ctx, input.cast::<HtmlInputElement>()) else { return };
            *generation.borrow_mut() += 1;
            match add(ctx, &raw) {
                Ok(()) => {
                    field.set_value("");
                    error.set(None);
                    close();
                }
                Err(why) => error.set(Some(why)),
            }
        })
    };

    let onsubmit = {
        let (input, matches, commit) = (input.clone(), matches.clone(), commit.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let chosen = matches.highlighted.and_then(|i| matches.items.get(i)).map(|m| m.symbol.clone());
            let typed = input.cast::<HtmlInputElement>().map(|f| f.value()).unwrap_or_default();
            commit(chosen.unwrap_or(typed));
        })
    };

    let oninput = {
        let (ctx, error, matches) = (ctx.clone(), error.clone(), matches.clone());
        let (pending, generation) = (pending.clone(), generation.clone());
        Callback::from(move |e: InputEvent| {
            if error.is_some() {
                error.set(None);
            }
            let query = e.target_unchecked_into::<HtmlInputElement>().value().trim().to_owned();
            *generation.borrow_mut() += 1;
            let asked = *generation.borrow();
            let api = ctx.as_ref().and_then(|c| c.state.api.clone());
            let (Some(api), false) = (api, query.is_empty()) else {
                pending.borrow_mut().take();
                matches.set(Matches::default());
                return;
            };
            let (matches, generation) = (matches.clone(), generation.clone());
            let search = Timeout::new(DEBOUNCE_MS, move || {
                wasm_bindgen_futures::spawn_local(async move {
                    let Ok(found) = api.symbols(&query, SUGGESTIONS).await else { return };
                    if *generation.borrow() == asked {
                        matches.set(Matches { items: found.results, highlighted: None });
                    }
                });
            });
            // Dropping the previous timeout cancels its search.
            *pending.borrow_mut() = Some(search);
        })
    };

    let onkeydown = {
        let (matches, close) = (matches.clone(), close.clone());
        Callback::from(move |e: KeyboardEvent| {
            let n = matches.items.len();
            match e.key().as_str() {
                "ArrowDown" | "ArrowUp" if n > 0 => {
                    e.prevent_default();
                    let down = e.key() == "ArrowDown";
                    let next = match (matches.highlighted, down) {
                        (None, true) => 0,
                        (None, false) => n - 1,
                        (Some(i), true) => (i + 1) % n,
                        (Some(i), false) => (i + n - 1) % n,
                    };
                    matches.set(Matches { highlighted: Some(next), ..(*matches).clone() });
                }
                "Escape" if n > 0 => {
                    e.prevent_default();
                    close();
                }
                _ => {}
            }
        })
    };

    let open = !matches.items.is_empty();
    let active = matches.highlighted.map(|i| format!("symbol-option-{i}"));
    let options = matches.items.iter().enumerate().map(|(i, m)| {
        let selected = matches.highlighted == Some(i);
        // `mousedown`, not `click`: it lands before the field's blur and keeps the focus in the field.
        let onmousedown = {
            let (commit, symbol) = (commit.clone(), m.symbol.clone());
            Callback::from(move |e: MouseEvent| {
                e.prevent_default();
                commit(symbol.clone());
            })
        };
        html! {
            <li id={format!("symbol-option-{i}")} role="option" aria-selected={selected.to_string()}
                class={class_with("suggestion", selected.then_some("highlighted"))}
                data-testid="symbol-suggestion" data-symbol={m.symbol.clone()} onmousedown={onmousedown}>
                <span class="suggestion-symbol">{&m.symbol}</span>
                <span class="suggestion-name">{&m.name}</span>
                <span class="suggestion-meta">{format!("{} · {}", m.provider, m.class.as_str())}</span>
            </li>
        }
    });
    let onblur = {
        let close = close.clone();
        Callback::from(move |_: FocusEvent| close())
    };

    html! {
        <form class="add" onsubmit={onsubmit} novalidate=true>
            {raw(r#"<label for="symbol-input" class="sr-only">Symbol to add</label>"#)}
            <div class="combo">
                <input
                    id="symbol-input"
                    ref={input}
                    data-testid="symbol-input"
                    type="text"
                    role="combobox"
                    aria-autocomplete="list"
                    aria-expanded={open.to_string()}
                    aria-controls="symbol-suggestions"
                    aria-activedescendant={active}
                    placeholder="Add symbol — type to search: TSLA, bitcoin, binance:BTC/USDT"
                    autocomplete="off"
                    autocapitalize="characters"
                    spellcheck="false"
                    maxlength="256"
                    aria-invalid={error.is_some().to_string()}
                    aria-describedby="symbol-error"
                    oninput={oninput}
                    onkeydown={onkeydown}
                    onblur={onblur}
                />
                if open {
                    <ul id="symbol-suggestions" role="listbox" class="suggestions" data-testid="symbol-suggestions">
                        {for options}
                    </ul>
                }
            </div>
            {raw(r#"<button type="submit" data-testid="add-symbol">Add</button>"#)}
            <p id="symbol-error" class="input-error" role="alert">
                { (*error).clone().unwrap_or_default() }
            </p>
        </form>
    }
}
