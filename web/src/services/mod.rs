//! Everything that talks to the world outside the page's state: the relay (socket and REST), localStorage,
//! the page URL, the performance timeline and the service worker. The pure parts (backoff, heartbeat, URL
//! rules, cache encoding) are split out so they are tested natively; the browser glue is thin.

pub(crate) mod api;
mod backoff;
pub(crate) mod config;
pub(crate) mod connection;
mod heartbeat;
pub(crate) mod latency;
pub(crate) mod marks;
pub(crate) mod on_screen;
mod resume;
pub(crate) mod sound;
pub mod storage;
pub(crate) mod tabs;

use wasm_bindgen::JsCast;

/// Wall-clock milliseconds since the Unix epoch (the clock quotes' `ts` use).
pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Minutes the local time zone is behind UTC (JavaScript's `getTimezoneOffset`), for clock display.
pub(crate) fn tz_offset_minutes() -> i64 {
    js_sys::Date::new_0().get_timezone_offset() as i64
}

/// Registers `sw.js`, which keeps the app shell available when the relay (which also serves the page) is
/// down, so a reload still shows the cached quotes. Failures only cost that offline reload, so they are logged
/// to the console and otherwise ignored.
pub(crate) fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    // Older browsers and non-secure origins have no `serviceWorker`; calling through a missing property throws.
    let has_sw = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if !has_sw {
        return;
    }
    let promise = navigator.service_worker().register("sw.js");
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(err) = wasm_bindgen_futures::JsFuture::from(promise).await {
            let text = err
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| "unknown error".into());
            web_sys::console::warn_1(&format!("service worker not registered: {text}").into());
        }
    });
}
