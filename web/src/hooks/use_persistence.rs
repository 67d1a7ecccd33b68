//! Saves the watchlist whenever it changes and the quote cache at most once a second when quotes changed,
//! so a reload (even with the relay down) starts from what was last on screen.

use yew::prelude::*;

use crate::services::storage;
use crate::state::AppState;

#[hook]
pub fn use_persistence(state: UseReducerHandle<AppState>) {
    {
        let watchlist = state.watchlist.clone();
        use_effect_with(state.watchlist_rev, move |_| {
            if let Err(e) = storage::save_watchlist(&watchlist) {
                web_sys::console::warn_1(&e.into());
            }
        });
    }
    let saved_rev = use_mut_ref(|| 0u64);
    let second = state.now_ms.div_euclid(1_000);
    use_effect_with(second, move |_| {
        let mut saved = saved_rev.borrow_mut();
        if *saved != state.quotes_rev {
            *saved = state.quotes_rev;
            if let Err(e) = storage::save_quotes(&state.quotes_to_cache(), state.now_ms) {
                web_sys::console::warn_1(&e.into());
            }
        }
    });
}
