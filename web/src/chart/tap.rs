//! Hands every quote the connection service delivers to the open chart as it arrives, before the per-frame
//! batching that the watchlist uses: the chart must see each tick (its high and low depend on all of them), not
//! only the last one of a frame.
//!
//! The same tap feeds the latency estimate ([`latency`]), which must time each frame as it arrives.
//!
//! The tap wraps the callback the connection service reports through; one listener at most (there is one
//! detail view), registered with [`listen`] and removed when its [`Listening`] guard drops.

use std::cell::RefCell;
use std::rc::Rc;

use hamster_shared::{Quote, ServerMessage};
use yew::prelude::*;

use crate::events::ConnEvent;
use crate::services::{latency, now_ms};

type Listener = Rc<dyn Fn(&Quote)>;

thread_local! {
    static LISTENER: RefCell<Option<Listener>> = const { RefCell::new(None) };
}

/// Keeps a listener registered; dropping it unregisters.
pub(crate) struct Listening(Listener);

impl Drop for Listening {
    fn drop(&mut self) {
        LISTENER.with(|l| {
            let mut l = l.borrow_mut();
            if l.as_ref().is_some_and(|cur| Rc::ptr_eq(cur, &self.0)) {
                *l = None;
            }
        });
    }
}

/// Makes `f` the listener for every delivered quote, replacing any other.
pub(crate) fn listen(f: impl Fn(&Quote) + 'static) -> Listening {
    let f: Listener = Rc::new(f);
    LISTENER.with(|l| *l.borrow_mut() = Some(f.clone()));
    Listening(f)
}

fn deliver(event: &ConnEvent) {
    if let ConnEvent::Server(msg) = event {
        latency::observe(msg, now_ms());
    }
    let quotes = match event {
        ConnEvent::Server(ServerMessage::Quotes { quotes } | ServerMessage::Snapshot { quotes }) => quotes,
        ConnEvent::RestQuotes(r) => &r.quotes,
        _ => return,
    };
    // Cloned out so the listener may (un)register without a double borrow.
    let Some(f) = LISTENER.with(|l| l.borrow().clone()) else { return };
    for q in quotes {
        f(q);
    }
}

/// Wraps the connection service's callback so the chart sees quotes first.
#[hook]
pub(crate) fn use_tick_tap(emit: Callback<ConnEvent>) -> Callback<ConnEvent> {
    let tapped = use_memo((), move |_| {
        Callback::from(move |event: ConnEvent| {
            deliver(&event);
            emit.emit(event);
        })
    });
    (*tapped).clone()
}
