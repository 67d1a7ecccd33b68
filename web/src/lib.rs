//! Hamster Terminal's dashboard: a Yew single-page app that streams quotes from the relay over one WebSocket.
//!
//! The layout follows Yew's todomvc example:
//!
//! * [`state`] is the model: one [`state::AppState`] changed only by [`state::Action`]s in a pure reducer, so
//!   everything the screen shows can be unit-tested natively without a browser. It is the one owner of the
//!   watchlist. [`stats`] and [`format`](mod@format) are the pure helpers it and the components use.
//! * [`services`] talk to the outside world: [`services::connection`] owns the one socket per page (backoff,
//!   heartbeat, subscriptions, REST fallback), [`services::api`] the REST calls, [`services::storage`] the
//!   localStorage cache, [`services::config`] where the relay is and [`services::marks`] the performance
//!   marks. The services never touch the state; they report [`events::ConnEvent`]s.
//! * [`hooks`] own the long-lived resources of the page (the connection, the clock, the per-frame batcher,
//!   persistence) and create them in effects with cleanups.
//! * [`components`] render the state, one component per file, and reach it through [`context::AppContext`].
//!   Rows are keyed components whose props compare by pointer, so a frame re-renders only the rows whose quote
//!   changed, and groups of rows out of view do not render until they come near it
//!   ([`components::row_group`]).
//!
//! Data flow: socket frame → [`events::ConnEvent`] → frame batcher (at most one dispatch per animation frame)
//! → reducer → render. User actions only dispatch to the reducer; the connection hook hands each new watchlist
//! to the connection service, which (un)subscribes to match it.

// The crate is the page, not a library: its documentation is read with `--document-private-items`, and the
// few public items (kept for the in-browser tests) may point at the private ones.
#![allow(rustdoc::private_intra_doc_links)]

mod chart;
mod components;
mod context;
mod events;
mod format;
mod hooks;
mod json_object;
pub mod services;
mod sort;
pub mod state;
mod stats;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Mounts the dashboard on `<body>`. Called by `main` in the browser.
pub fn run() {
    services::marks::mark(services::marks::MARK_START);
    tag_build();
    services::register_service_worker();
    yew::Renderer::<components::app::App>::new().render();
}

/// Tags the page `<html data-build="debug|release">`, so a benchmark or a bug report can tell which build ran
/// (a debug build renders several times slower).
fn tag_build() {
    let root = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element());
    if let Some(root) = root {
        let _ = root.set_attribute("data-build", if cfg!(debug_assertions) { "debug" } else { "release" });
    }
}
