//! Sets the performance marks that follow the model: the socket going live (every time it does) and the first
//! quote on screen. The marks themselves are [`crate::services::marks`].

use yew::prelude::*;

use super::use_effect_dyn;

use crate::services::marks::{mark, MARK_FIRST_QUOTE, MARK_LIVE};
use crate::state::AppState;

#[hook]
pub(crate) fn use_marks(state: &AppState) {
    // Each effect runs when its flag flips, so every live transition and the first quote are marked.
    use_effect_dyn(state.is_live(), |live| {
        if *live {
            mark(MARK_LIVE);
        }
    });
    use_effect_dyn(state.stats.updates > 0, |any| {
        if *any {
            mark(MARK_FIRST_QUOTE);
        }
    });
}
