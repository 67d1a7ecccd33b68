//! Seeds each row's sparkline from `GET /api/history/{symbol}` once per symbol, when the relay is reachable.
//!
//! A failed fetch is remembered, not retried on every change of the watchlist (a symbol the relay refused would
//! otherwise ask again each time any row is added or removed); failures get one more try each time the
//! connection comes back, and symbols the relay refused are not asked for at all.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use hamster_shared::Symbol;
use yew::prelude::*;

use super::use_effect_dyn;

use crate::services::now_ms;
use crate::state::{Action, AppState};

/// What has been asked for on this page.
#[derive(Default)]
struct Requests {
    /// Asked for (answered, in flight, or failed).
    asked: HashSet<Symbol>,
    /// Of those, the ones that failed: asked again after the next reconnect.
    failed: HashSet<Symbol>,
}

#[hook]
pub(crate) fn use_history(state: UseReducerHandle<AppState>) {
    let requests: Rc<RefCell<Requests>> = use_mut_ref(Requests::default);
    let was_live = use_mut_ref(|| false);
    let dispatcher = state.dispatcher();
    let deps = (state.watchlist.clone(), state.is_live(), state.api.clone(), state.refused());
    use_effect_dyn(deps, move |(watchlist, live, api, refused)| {
        let came_back = *live && !std::mem::replace(&mut *was_live.borrow_mut(), *live);
        if came_back {
            let mut r = requests.borrow_mut();
            let failed = std::mem::take(&mut r.failed);
            r.asked.retain(|s| !failed.contains(s));
        }
        let Some(api) = api.clone().filter(|_| *live) else {
            return;
        };
        for symbol in watchlist.iter().filter(|s| !refused.contains(*s)) {
            if !requests.borrow_mut().asked.insert(symbol.clone()) {
                continue;
            }
            let (symbol, api, requests, dispatcher) =
                (symbol.clone(), api.clone(), requests.clone(), dispatcher.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api.history(&symbol).await {
                    Ok(history) => dispatcher.dispatch(Action::History(history)),
                    Err(e) => {
                        requests.borrow_mut().failed.insert(symbol.clone());
                        dispatcher
                            .dispatch(Action::Warn { text: format!("history for {symbol}: {e}"), now_ms: now_ms() });
                    }
                }
            });
        }
    });
}
