//! The latency figure in the header (`data-testid="latency"`): provider→relay and relay→browser, each as p50 and
//! p99 over the last few hundred live quotes, from [`crate::services::latency`]. A hop whose median passes the
//! warning threshold ([`WARN_MS`] unless the user set another, saved in localStorage) turns amber (and says so in
//! words, so colour is not the only cue). Refreshed once a second; the figures are measured per frame as it
//! arrives, not here.

use crate::format::{Fixed, Num};
use crate::hooks::use_effect_dyn;
use gloo_timers::callback::Interval;
use yew::prelude::*;

use super::markup::{class_with, raw};
use crate::services::latency::{self, LatencyView, Percentiles};
use crate::services::storage;

/// Above this median a hop is shown as slow, unless the user chose another threshold.
pub(crate) const WARN_MS: f64 = 100.0;

fn hop(label: &'static str, key: &'static str, p: Option<Percentiles>, warn_ms: f64) -> Html {
    let Some(p) = p else {
        return html! { <span class="hop" data-hop={key} title="waiting for data">{format!("{label} …")}</span> };
    };
    let slow = p.p50 > warn_ms;
    html! {
        <span class={class_with("hop", slow.then_some("slow"))} data-hop={key} data-p50={Num(p.p50).to_string()}
            data-p99={Num(p.p99).to_string()} title={format!("median and 99th percentile of the last {} quotes", p.samples)}>
            {format!("{label} {} ms · p99 {} ms", Fixed(p.p50, 0), Fixed(p.p99, 0))}
            if slow { {raw(r#"<span class="sr-only"> (slow)</span>"#)}{raw(r#"<span aria-hidden="true"> ▲</span>"#)} }
        </span>
    }
}

#[component]
pub(crate) fn LatencyFigure() -> Html {
    let view = use_state(latency::view);
    let warn_ms = use_state(|| {
        storage::load_json::<f64>(storage::LATENCY_WARN_KEY).filter(|v| v.is_finite() && *v > 0.0).unwrap_or(WARN_MS)
    });
    // Not a controlled input: this figure re-renders every second, and a `value` prop would undo typing.
    let field = use_node_ref();
    // It is filled once, in the one effect that also starts the figure's clock (one copy of yew's effect code).
    {
        let (field, initial, view) = (field.clone(), *warn_ms, view.setter());
        use_effect_dyn((), move |_| {
            if let Some(input) = field.cast::<web_sys::HtmlInputElement>() {
                input.set_value(&Num(initial).to_string());
            }
            let interval = Interval::new(1_000, move || view.set(latency::view()));
            move || drop(interval)
        });
    }
    let on_warn = {
        let warn_ms = warn_ms.clone();
        Callback::from(move |e: Event| {
            let value = e.target_unchecked_into::<web_sys::HtmlInputElement>().value();
            if let Some(v) =
                crate::format::number(value.trim()).filter(|v| v.is_finite() && (1.0..=60_000.0).contains(v))
            {
                let _ = storage::save_json(storage::LATENCY_WARN_KEY, &v);
                warn_ms.set(v);
            }
        })
    };
    let LatencyView { provider_relay, relay_browser, rtt } = *view;
    let title = rtt.map_or_else(
        || "relay→you needs a ping round trip to set the clock offset".to_owned(),
        |r| format!("clock offset from the fastest ping ({} ms round trip)", Fixed(r, 0)),
    );
    html! {
        <div class="latency" data-testid="latency" {title}>
            {hop("provider→relay", "provider-relay", provider_relay, *warn_ms)}
            {hop("relay→you", "relay-browser", relay_browser, *warn_ms)}
            <label class="warn-at">{"warn over "}
                <input ref={field} type="number" min="1" max="60000" step="10"
                    data-testid="latency-threshold" aria-label="Latency warning threshold in milliseconds"
                    onchange={on_warn} />{" ms"}
            </label>
        </div>
    }
}
