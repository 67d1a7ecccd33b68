//! Coalesces connection events and hands them to the reducer at most once per animation frame, so a burst of
//! quote frames costs one state change and one render, whatever the tick rate.
//!
//! A short timeout backs up `requestAnimationFrame`, which browsers pause in background tabs; without it the
//! queue would grow for as long as the tab stays hidden. The queue is bounded as well: when it overflows, the
//! oldest quote batches go first (newer values supersede them) while status events are kept.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use hamster_shared::ServerMessage;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use yew::prelude::*;

use super::use_effect_dyn;

use crate::events::ConnEvent;
use crate::services::now_ms;
use crate::state::{Action, AppState};

/// Fallback flush delay when no animation frame comes (hidden tab).
const FALLBACK_FLUSH_MS: i32 = 250;
/// Most events held between flushes.
const MAX_PENDING: usize = 5_000;

/// The flush callback, shared by `requestAnimationFrame` and `setTimeout`.
type FlushClosure = Closure<dyn FnMut(JsValue)>;

struct Batcher {
    pending: RefCell<Vec<ConnEvent>>,
    dispatcher: UseReducerDispatcher<AppState>,
    /// Created once and reused for every frame; holds only a weak reference back, so no cycle.
    flush: RefCell<Option<FlushClosure>>,
    raf_id: Cell<Option<i32>>,
    timeout_id: Cell<Option<i32>>,
}

impl Batcher {
    fn push(self: &Rc<Self>, event: ConnEvent) {
        let mut pending = self.pending.borrow_mut();
        pending.push(event);
        if pending.len() > MAX_PENDING {
            trim(&mut pending);
        }
        drop(pending);
        if self.raf_id.get().is_none() && self.timeout_id.get().is_none() {
            self.schedule();
        }
    }

    fn schedule(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let mut slot = self.flush.borrow_mut();
        let closure = slot.get_or_insert_with(|| {
            let weak: Weak<Batcher> = Rc::downgrade(self);
            Closure::new(move |_: JsValue| {
                if let Some(batcher) = weak.upgrade() {
                    batcher.flush_now();
                }
            })
        });
        let f: &js_sys::Function = closure.as_ref().unchecked_ref();
        self.raf_id.set(window.request_animation_frame(f).ok());
        self.timeout_id.set(window.set_timeout_with_callback_and_timeout_and_arguments_0(f, FALLBACK_FLUSH_MS).ok());
    }

    fn cancel(&self) {
        if let Some(window) = web_sys::window() {
            if let Some(id) = self.raf_id.take() {
                let _ = window.cancel_animation_frame(id);
            }
            if let Some(id) = self.timeout_id.take() {
                window.clear_timeout_with_handle(id);
            }
        }
    }

    fn flush_now(&self) {
        // Whichever of the frame and the timeout fired first, the other must not flush again.
        self.cancel();
        let events = std::mem::take(&mut *self.pending.borrow_mut());
        if !events.is_empty() {
            self.dispatcher.dispatch(Action::Batch { events, now_ms: now_ms() });
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // The closure dies with us; the browser must not call it afterwards.
        self.cancel();
    }
}

/// Drops the oldest quote batches until the queue is half full.
fn trim(pending: &mut Vec<ConnEvent>) {
    let mut excess = pending.len().saturating_sub(MAX_PENDING / 2);
    pending.retain(|e| {
        let is_quotes = matches!(e, ConnEvent::Server(ServerMessage::Quotes { .. }) | ConnEvent::RestQuotes(_));
        if excess > 0 && is_quotes {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

/// Returns the callback the connection service reports through.
#[hook]
pub(crate) fn use_frame_batch(dispatcher: UseReducerDispatcher<AppState>) -> Callback<ConnEvent> {
    let batcher = use_memo((), move |_| {
        Rc::new(Batcher {
            pending: RefCell::new(Vec::new()),
            dispatcher,
            flush: RefCell::new(None),
            raf_id: Cell::new(None),
            timeout_id: Cell::new(None),
        })
    });
    {
        let batcher = batcher.clone();
        use_effect_dyn((), move |_| move || batcher.cancel());
    }
    let callback = use_memo((), move |_| {
        let batcher: Rc<Batcher> = (*batcher).clone();
        Callback::from(move |event: ConnEvent| batcher.push(event))
    });
    (*callback).clone()
}
