//! Starts the page's one [`Connection`] when the app mounts and stops it when it unmounts, and keeps it told
//! what the reducer's watchlist is: whenever the watchlist (or the set of symbols the relay refused) changes,
//! the new [`Wanted`] goes to the service, which works out what to (un)subscribe. The reducer stays the only
//! owner of the watchlist; components change it by dispatching, never by talking to the connection.

use std::rc::Rc;

use yew::prelude::*;

use crate::events::ConnEvent;
use crate::services::connection::{Connection, Wanted, WantedSender};
use crate::state::AppState;

#[hook]
pub(crate) fn use_connection(emit: Callback<ConnEvent>, state: &AppState) {
    // Made on the first render, so what is sent before the connection starts waits in the channel.
    let channel = use_mut_ref(|| {
        let (tx, rx) = WantedSender::channel();
        (tx, Some(rx))
    });
    {
        let channel = channel.clone();
        use_effect_with((), move |_| {
            // The receiver is taken exactly once: effects with `()` deps run once per mount.
            let connection = channel.borrow_mut().1.take().map(|rx| Connection::start(rx, emit));
            move || drop(connection)
        });
    }
    let wanted = Wanted { symbols: Rc::clone(&state.watchlist), refused: state.refused() };
    use_effect_with(wanted, move |wanted| channel.borrow().0.send(wanted.clone()));
}
