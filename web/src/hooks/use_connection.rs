//! Starts the page's one [`Connection`] when the app mounts and stops it when it unmounts. Returns the
//! [`Commands`] handle components use to change subscriptions; it exists from the first render, and commands
//! sent before the socket is up wait in the channel.

use std::rc::Rc;

use hamster_shared::Symbol;
use yew::prelude::*;

use crate::events::ConnEvent;
use crate::services::connection::{Commands, Connection};

#[hook]
pub fn use_connection(emit: Callback<ConnEvent>, initial: Rc<Vec<Symbol>>) -> Commands {
    let channel = use_mut_ref(|| {
        let (commands, rx) = Commands::channel();
        (commands, Some(rx))
    });
    let commands = channel.borrow().0.clone();
    {
        let commands = commands.clone();
        use_effect_with((), move |_| {
            // The receiver is taken exactly once: effects with `()` deps run once per mount.
            let connection = channel.borrow_mut().1.take().map(|rx| {
                commands.subscribe(initial.to_vec());
                Connection::start(rx, emit)
            });
            move || drop(connection)
        });
    }
    commands
}
