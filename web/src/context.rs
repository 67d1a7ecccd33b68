//! [`AppContext`], what every component can reach through Yew's context: the model and the way to change it.
//!
//! It lives apart from the root component (as in Yew's contexts example) so that components depend on the
//! context, not on the component that provides it; the root only creates and provides it.
//!
//! Changing the watchlist is only a dispatch: the reducer owns the watchlist, and the connection hook passes
//! every new version of it to the connection service, which subscribes accordingly.

use std::rc::Rc;

use hamster_shared::{ClientMessage, Symbol};
use yew::prelude::*;

use crate::services::connection::CommandSender;
use crate::services::now_ms;
use crate::state::{Action, AppState};

/// What every component can reach: the model and a way to change it.
#[derive(Clone)]
pub(crate) struct AppContext {
    pub(crate) state: UseReducerHandle<AppState>,
    /// Commands beyond subscriptions (a replay and its controls), sent on the page's one connection.
    commands: Rc<CommandSender>,
    /// `state.generation` when this value was made: comparing it is much cheaper than comparing the states.
    generation: u64,
}

impl PartialEq for AppContext {
    fn eq(&self, other: &Self) -> bool {
        self.generation == other.generation
    }
}

impl AppContext {
    pub(crate) fn new(state: UseReducerHandle<AppState>, commands: Rc<CommandSender>) -> AppContext {
        AppContext { generation: state.generation, state, commands }
    }

    /// Sends a command on the current socket (dropped with a warning when none is live).
    pub(crate) fn send(&self, command: ClientMessage) {
        self.commands.send(command);
    }

    /// Adds a validated symbol to the watchlist (and so to the subscriptions).
    pub(crate) fn add(&self, symbol: Symbol) {
        self.state.dispatch(Action::AddSymbol { symbol, now_ms: now_ms() });
    }

    /// Removes a symbol from the watchlist (and so from the subscriptions).
    pub(crate) fn remove(&self, symbol: Symbol) {
        self.state.dispatch(Action::RemoveSymbol { symbol, now_ms: now_ms() });
    }

    /// Replaces a symbol of the watchlist with another, in place (a refused one by a suggestion of the relay's).
    pub(crate) fn replace(&self, old: Symbol, new: Symbol) {
        self.state.dispatch(Action::ReplaceSymbol { old, new, now_ms: now_ms() });
    }

    /// Rows came into view or left it.
    pub(crate) fn on_screen(&self, symbols: Vec<Symbol>, on_screen: bool) {
        self.state.dispatch(Action::OnScreen { symbols, on_screen });
    }
}
