//! A once-a-second clock action: staleness, the reconnect countdown and the update rate depend on time passing
//! even when no data arrives.

use gloo_timers::callback::Interval;
use yew::prelude::*;

use super::use_effect_dyn;

use crate::services::now_ms;
use crate::state::{Action, AppState};

#[hook]
pub(crate) fn use_clock(dispatcher: UseReducerDispatcher<AppState>) {
    use_effect_dyn((), move |_| {
        let interval = Interval::new(1_000, move || dispatcher.dispatch(Action::Clock { now_ms: now_ms() }));
        // Dropping the interval clears it.
        move || drop(interval)
    });
}
