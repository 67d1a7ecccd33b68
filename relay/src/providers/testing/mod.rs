//! Test support shared by the adapters' tests: a wire driven as the stream driver drives it ([`Driven`]), and
//! the strategies and checks of the property-based fuzz tests ([`fuzz`]).

pub(crate) mod fuzz;

use crate::providers::stream::demand::{Admitted, Desired};
use crate::providers::stream::{Refusal, Wire, WireEvent};

/// A wire driven the way the stream driver drives it, minus the socket: every subscribe is admitted first (refusals
/// are returned, never sent), a new connection resubscribes everything admitted, and upstream rejections drop the
/// instrument. Adapter tests use it so they see what the relay would send and reject.
pub(crate) struct Driven<W: Wire> {
    pub(crate) wire: W,
    pub(crate) desired: Desired,
}

impl<W: Wire> Driven<W> {
    pub(crate) fn new(wire: W) -> Driven<W> {
        Driven { wire, desired: Desired::default() }
    }

    /// A new connection: its opening frames, then the subscribe frames for everything admitted.
    pub(crate) fn open(&mut self) -> Vec<String> {
        let mut frames = self.wire.on_open();
        let all = self.desired.all();
        if !all.is_empty() {
            frames.extend(self.wire.subscribe(&all));
        }
        frames
    }

    /// Admits `instruments` and returns the frames for those admitted, with the refusals.
    pub(crate) fn subscribe(&mut self, instruments: &[&str]) -> (Vec<String>, Vec<(String, Refusal)>) {
        self.subscribe_owned(instruments.iter().map(|s| s.to_string()).collect())
    }

    pub(crate) fn subscribe_owned(&mut self, instruments: Vec<String>) -> (Vec<String>, Vec<(String, Refusal)>) {
        let Admitted { added, refused } = self.desired.subscribe(&self.wire, instruments);
        let frames = if added.is_empty() { Vec::new() } else { self.wire.subscribe(&added) };
        (frames, refused)
    }

    pub(crate) fn unsubscribe(&mut self, instruments: &[&str]) -> Vec<String> {
        self.unsubscribe_owned(instruments.iter().map(|s| s.to_string()).collect())
    }

    pub(crate) fn unsubscribe_owned(&mut self, instruments: Vec<String>) -> Vec<String> {
        let held = self.desired.unsubscribe(instruments);
        if held.is_empty() {
            Vec::new()
        } else {
            self.wire.unsubscribe(&held)
        }
    }

    /// One incoming frame; an upstream rejection drops its instrument, as the driver does.
    pub(crate) fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        let events = self.wire.on_text(text);
        for event in &events {
            if let WireEvent::Rejected { instrument, .. } = event {
                self.desired.remove(instrument);
            }
        }
        events
    }
}
