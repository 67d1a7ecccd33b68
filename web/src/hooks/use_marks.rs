//! Performance marks for the moments worth measuring: the socket going live and the first quote on screen.
//! They show up in the browser's performance timeline (relative to navigation start), and the end-to-end
//! tests read them to report time to first tick.

use yew::prelude::*;

use crate::state::AppState;

/// Mark names.
pub const MARK_START: &str = "hamster:start";
pub const MARK_RELAY_RESOLVED: &str = "hamster:relay-resolved";
pub const MARK_LIVE: &str = "hamster:live";
pub const MARK_FIRST_QUOTE: &str = "hamster:first-quote";

/// Sets a performance mark (a no-op where the Performance API is missing).
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

#[hook]
pub fn use_marks(state: &AppState) {
    // Each effect runs when its flag flips, so every live transition and the first quote are marked.
    use_effect_with(state.is_live(), |live| {
        if *live {
            mark(MARK_LIVE);
        }
    });
    use_effect_with(state.stats.updates > 0, |any| {
        if *any {
            mark(MARK_FIRST_QUOTE);
        }
    });
}
