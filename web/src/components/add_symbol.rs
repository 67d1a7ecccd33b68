//! The add-symbol form. Input is validated with the shared symbol rules before anything is sent, so the user
//! sees the same reason the relay would give; the relay's own refusals show up in the row instead.

use hamster_shared::Symbol;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::context::AppContext;

#[component]
pub(crate) fn AddSymbol() -> Html {
    let ctx = use_context::<AppContext>();
    let input = use_node_ref();
    let error = use_state(|| None::<String>);

    let onsubmit = {
        let (input, error) = (input.clone(), error.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Some(ctx), Some(field)) = (&ctx, input.cast::<HtmlInputElement>()) else {
                return;
            };
            let raw = field.value();
            match Symbol::parse(&raw) {
                Err(why) => error.set(Some(why.to_string())),
                Ok(symbol) if ctx.state.rows.contains_key(&symbol) => {
                    error.set(Some(format!("{symbol} is already in the watchlist")));
                }
                Ok(symbol) => {
                    ctx.add(symbol);
                    field.set_value("");
                    error.set(None);
                }
            }
        })
    };
    let oninput = {
        let error = error.clone();
        Callback::from(move |_: InputEvent| {
            if error.is_some() {
                error.set(None);
            }
        })
    };

    html! {
        <form class="add" onsubmit={onsubmit} novalidate=true>
            <label for="symbol-input" class="sr-only">{"Symbol to add"}</label>
            <input
                id="symbol-input"
                ref={input}
                data-testid="symbol-input"
                type="text"
                placeholder="Add symbol — TSLA, SOL/USD, binance:BTC/USDT"
                autocomplete="off"
                autocapitalize="characters"
                spellcheck="false"
                maxlength="256"
                aria-invalid={error.is_some().to_string()}
                aria-describedby="symbol-error"
                oninput={oninput}
            />
            <button type="submit" data-testid="add-symbol">{"Add"}</button>
            <p id="symbol-error" class="input-error" role="alert">
                { (*error).clone().unwrap_or_default() }
            </p>
        </form>
    }
}
