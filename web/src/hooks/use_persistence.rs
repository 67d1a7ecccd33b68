//! Saves the watchlist whenever it changes, and adopts the one another tab of the page saved (a `storage`
//! event), so two tabs never overwrite each other's changes: each starts from the other's latest list. Alerts
//! go the same way: saved when they change here, adopted (and not saved again) when another tab saved them. Saves
//! the quote cache when quotes changed: within a second of the
//! first quotes, then at most every [`QUOTES_SAVE_EVERY_MS`]. So a reload (even with the relay down) starts
//! from what was on screen a few seconds before.
//!
//! A quote save encodes every watched quote (about 100 KB of JSON with 500 symbols) and writes localStorage
//! synchronously, so it is kept rare and runs in a task of its own, not inside the animation frame whose
//! render triggered it.

use gloo_timers::future::TimeoutFuture;
use yew::prelude::*;

use super::use_effect_dyn;

use wasm_bindgen::JsCast;

use crate::services::{now_ms, storage};
use crate::state::{Action, AlertAction, AppState, ListAction};

/// Shortest time between two saves of the quote cache.
const QUOTES_SAVE_EVERY_MS: i64 = 5_000;

#[hook]
pub(crate) fn use_persistence(state: UseReducerHandle<AppState>) {
    {
        let dispatcher = state.dispatcher();
        use_effect_dyn((), move |_| {
            let listener = web_sys::window().map(|window| {
                gloo_events::EventListener::new(&window, "storage", move |event| {
                    let Some(event) = event.dyn_ref::<web_sys::StorageEvent>() else {
                        return;
                    };
                    let (key, value) = (event.key(), event.new_value());
                    if let Some(symbols) = storage::watchlist_saved_elsewhere(key.as_deref(), value.as_deref()) {
                        dispatcher.dispatch(Action::AdoptWatchlist { symbols, now_ms: now_ms() });
                    } else if key.as_deref() == Some(storage::WATCHLISTS_KEY) {
                        if let Some(lists) = value.as_deref().and_then(|v| serde_json::from_str(v).ok()) {
                            dispatcher.dispatch(Action::Lists(ListAction::Adopt(lists)));
                        }
                    } else if key.as_deref() == Some(storage::ALERTS_KEY) {
                        let list = value.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
                        dispatcher.dispatch(Action::Alert(AlertAction::Adopt(list)));
                    }
                })
            });
            move || drop(listener)
        });
    }
    {
        let watchlist = state.watchlist.clone();
        use_effect_dyn(state.watchlist_rev, move |_| {
            if let Err(e) = storage::save_watchlist(&watchlist) {
                web_sys::console::warn_1(&e.into());
            }
        });
    }
    {
        // Every list with the active one's current symbols; identical text is not written again, so tabs that
        // adopt each other's lists do not echo them back and forth.
        let (lists, watchlist) = (state.lists.clone(), state.watchlist.clone());
        use_effect_dyn((state.lists_rev, state.watchlist_rev), move |_| {
            if let Err(e) = storage::save_json(storage::WATCHLISTS_KEY, &lists.saved(&watchlist)) {
                web_sys::console::warn_1(&e.into());
            }
        });
    }
    {
        let alerts = state.alerts.clone();
        // The first run is the restore at load: saving then would only write back what was just read.
        let first = use_mut_ref(|| true);
        use_effect_dyn(state.alerts_rev, move |_| {
            if std::mem::replace(&mut *first.borrow_mut(), false) {
                return;
            }
            if let Err(e) = storage::save_json(storage::ALERTS_KEY, &alerts.list) {
                web_sys::console::warn_1(&e.into());
            }
        });
    }
    // The `quotes_rev` last saved, and when.
    let saved = use_mut_ref(|| (0u64, None::<i64>));
    let second = state.now_ms.div_euclid(1_000);
    use_effect_dyn(second, move |_| {
        let (rev, at) = *saved.borrow();
        let due = at.is_none_or(|t| state.now_ms - t >= QUOTES_SAVE_EVERY_MS);
        if rev == state.quotes_rev || !due {
            return;
        }
        *saved.borrow_mut() = (state.quotes_rev, Some(state.now_ms));
        let state = state.clone();
        wasm_bindgen_futures::spawn_local(async move {
            TimeoutFuture::new(0).await;
            if let Err(e) = storage::save_quotes(&state.quotes_to_cache(), state.now_ms) {
                web_sys::console::warn_1(&e.into());
            }
        });
    });
}
