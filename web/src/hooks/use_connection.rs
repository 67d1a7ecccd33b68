//! Starts the page's connection ([`TabConnection`]: this tab's own socket, or a thin client of the tab that
//! holds the browser's one socket) when the app mounts and stops it when it unmounts, and keeps it told what the
//! reducer's watchlist is: whenever the watchlist (or the set of symbols the relay refused) changes, the new
//! [`Wanted`] goes to the service, which works out what to (un)subscribe. The reducer stays the only owner of
//! the watchlist; components change it by dispatching, never by talking to the connection, and never know
//! which kind of tab they are in. Alerts this tab fired go to the service too, which tells the other tabs.

use std::rc::Rc;

use yew::prelude::*;

use super::use_effect_dyn;

use crate::events::ConnEvent;
use crate::services::connection::{CommandSender, Wanted, WantedSender};
use crate::services::tabs::{FiredSender, Inputs, TabConnection};
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
    let fired = use_mut_ref(|| {
        let (tx, rx) = FiredSender::channel();
        (tx, Some(rx))
    });
    {
        let (channel, commands, fired) = (channel.clone(), commands.clone(), fired.clone());
        use_effect_dyn((), move |_| {
            // The receivers are taken exactly once: effects with `()` deps run once per mount.
            let taken = (channel.borrow_mut().1.take(), commands.borrow_mut().1.take(), fired.borrow_mut().1.take());
            let connection = match taken {
                (Some(wanted), Some(commands), Some(fired)) => {
                    Some(TabConnection::start(Inputs { wanted, commands, fired }, emit))
                }
                _ => None,
            };
            move || drop(connection)
        });
    }
    // Alerts this tab fired (only the tab that talks to the relay fires any), for the other tabs' logs.
    {
        let told = use_mut_ref(|| None::<u64>);
        let alerts = Rc::clone(&state.alerts);
        use_effect_dyn(state.alerts.fired_seq, move |seq| {
            // The first run only notes where the log is: what was fired before is not news.
            if let Some(after) = told.borrow_mut().replace(*seq) {
                for f in alerts.fired_here_after(after) {
                    fired.borrow().0.send(f);
                }
            }
        });
    }
    let sender = Rc::clone(&commands.borrow().0);
    let wanted = Wanted {
        symbols: Rc::clone(&state.watchlist),
        refused: state.refused(),
        off_screen: Rc::clone(&state.off_screen),
        full_rate: Rc::new(state.watchlist.iter().filter(|s| state.alerts.watches(s)).cloned().collect()),
    };
    use_effect_dyn(wanted, move |wanted| channel.borrow().0.send(wanted.clone()));
    sender
}
