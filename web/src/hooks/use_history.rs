//! Seeds each row's sparkline from `GET /api/history/{symbol}` once per symbol, when the relay is reachable.
//! A failed fetch is forgotten so the next time the connection comes up it is tried again.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use hamster_shared::Symbol;
use yew::prelude::*;

use crate::services::now_ms;
use crate::state::{Action, AppState};

#[hook]
pub(crate) fn use_history(state: UseReducerHandle<AppState>) {
    let requested: Rc<RefCell<HashSet<Symbol>>> = use_mut_ref(HashSet::new);
    let dispatcher = state.dispatcher();
    let deps = (state.watchlist.clone(), state.is_live(), state.api.clone());
    use_effect_with(deps, move |(watchlist, live, api)| {
        let Some(api) = api.clone().filter(|_| *live) else {
            return;
        };
        for symbol in watchlist.iter() {
            if !requested.borrow_mut().insert(symbol.clone()) {
                continue;
            }
            let (symbol, api, requested, dispatcher) =
                (symbol.clone(), api.clone(), requested.clone(), dispatcher.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api.history(&symbol).await {
                    Ok(history) => dispatcher.dispatch(Action::History(history)),
                    Err(e) => {
                        requested.borrow_mut().remove(&symbol);
                        dispatcher
                            .dispatch(Action::Warn { text: format!("history for {symbol}: {e}"), now_ms: now_ms() });
                    }
                }
            });
        }
    });
}
