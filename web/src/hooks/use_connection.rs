//! Starts the page's one [`Connection`] when the app mounts and stops it when it unmounts, and keeps it told
//! what the reducer's watchlist is: whenever the watchlist (or the set of symbols the relay refused) changes,
//! the new [`Wanted`] goes to the service, which works out what to (un)subscribe. The reducer stays the only
//! owner of the watchlist; components change it by dispatching, never by talking to the connection.

use std::rc::Rc;

use yew::prelude::*;

use crate::events::ConnEvent;
use crate::services::connection::{CommandSender, Connection, Wanted, WantedSender};
use crate::state::AppState;

/// Returns the way to send other commands (a replay and its controls) on the same connection.
#[hook]
pub(crate) fn use_connection(emit: Callback<ConnEvent>, state: &AppState) -> Rc<CommandSender> {
    // Made on the first render, so what is sent before the connection starts waits in the channel.
    let channel = use_mut_ref(|| {
        let (tx, rx) = WantedSender::channel();
        (tx, Some(rx))
    });
    let commands = use_mut_ref(|| {
        let (tx, rx) = CommandSender::channel();
        (Rc::new(tx), Some(rx))
    });
    {
        let (channel, commands) = (channel.clone(), commands.clone());
        use_effect_with((), move |_| {
            // The receivers are taken exactly once: effects with `()` deps run once per mount.
            let taken = (channel.borrow_mut().1.take(), commands.borrow_mut().1.take());
            let connection = match taken {
                (Some(wanted), Some(commands)) => Some(Connection::start(wanted, commands, emit)),
                _ => None,
            };
            move || drop(connection)
        });
    }
    let sender = Rc::clone(&commands.borrow().0);
    let wanted = Wanted {
        symbols: Rc::clone(&state.watchlist),
        refused: state.refused(),
        off_screen: Rc::clone(&state.off_screen),
        full_rate: Rc::new(state.watchlist.iter().filter(|s| state.alerts.watches(s)).cloned().collect()),
    };
    use_effect_with(wanted, move |wanted| channel.borrow().0.send(wanted.clone()));
    sender
}
