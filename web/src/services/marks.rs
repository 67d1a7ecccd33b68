//! Performance marks for the moments worth measuring: the app starting, the relay's address resolved, the
//! socket going live and the first quote on screen. They show up in the browser's performance timeline
//! (relative to navigation start), and the end-to-end tests read them to report time to first tick.
//!
//! A service, not part of the hook that sets two of them, so that the connection service can mark its own
//! moments without reaching up into the hooks.

/// Mark names.
pub(crate) const MARK_START: &str = "hamster:start";
pub(crate) const MARK_RELAY_RESOLVED: &str = "hamster:relay-resolved";
pub(crate) const MARK_LIVE: &str = "hamster:live";
pub(crate) const MARK_FIRST_QUOTE: &str = "hamster:first-quote";

/// Sets a performance mark (a no-op where the Performance API is missing).
pub(crate) fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}
