//! [`AppContext`], what every component can reach through Yew's context: the model and the way to change it.
//!
//! It lives apart from the root component (as in Yew's contexts example) so that components depend on the
//! context, not on the component that provides it; the root only creates and provides it.

use hamster_shared::Symbol;
use yew::prelude::*;

use crate::services::connection::Commands;
use crate::services::now_ms;
use crate::state::{Action, AppState};

/// What every component can reach: the model, a way to change it, and the connection's commands.
#[derive(Clone)]
pub struct AppContext {
    pub state: UseReducerHandle<AppState>,
    pub commands: Commands,
    /// `state.generation` when this value was made: comparing it is much cheaper than comparing the states.
    generation: u64,
}

impl PartialEq for AppContext {
    fn eq(&self, other: &Self) -> bool {
        self.generation == other.generation && self.commands == other.commands
    }
}

impl AppContext {
    pub fn new(state: UseReducerHandle<AppState>, commands: Commands) -> AppContext {
        AppContext { generation: state.generation, state, commands }
    }

    /// Adds a validated symbol to the watchlist and subscribes to it.
    pub fn add(&self, symbol: Symbol) {
        self.state.dispatch(Action::AddSymbol { symbol: symbol.clone(), now_ms: now_ms() });
        self.commands.subscribe(vec![symbol]);
    }

    /// Removes a symbol and unsubscribes from it.
    pub fn remove(&self, symbol: Symbol) {
        self.state.dispatch(Action::RemoveSymbol { symbol: symbol.clone(), now_ms: now_ms() });
        self.commands.unsubscribe(vec![symbol]);
    }
}
