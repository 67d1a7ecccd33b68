//! The latency figure in the header (`data-testid="latency"`): provider→relay and relay→browser, each as p50 and
//! p99 over the last few hundred live quotes, from [`crate::services::latency`]. A hop whose median passes
//! [`WARN_MS`] turns amber (and says so in words, so colour is not the only cue). Refreshed once a second; the
//! figures are measured per frame as it arrives, not here.

use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::services::latency::{self, LatencyView, Percentiles};

/// Above this median a hop is shown as slow.
pub(crate) const WARN_MS: f64 = 100.0;

fn hop(label: &'static str, key: &'static str, p: Option<Percentiles>) -> Html {
    let Some(p) = p else {
        return html! { <span class="hop" data-hop={key} title="waiting for data">{format!("{label} …")}</span> };
    };
    let slow = p.p50 > WARN_MS;
    html! {
        <span class={classes!("hop", slow.then_some("slow"))} data-hop={key} data-p50={p.p50.to_string()}
            data-p99={p.p99.to_string()} title={format!("median and 99th percentile of the last {} quotes", p.samples)}>
            {format!("{label} {:.0} ms · p99 {:.0} ms", p.p50, p.p99)}
            if slow { <span class="sr-only">{" (slow)"}</span><span aria-hidden="true">{" ▲"}</span> }
        </span>
    }
}

#[component]
pub(crate) fn LatencyFigure() -> Html {
    let view = use_state(latency::view);
    {
        let view = view.setter();
        use_effect_with((), move |_| {
            let interval = Interval::new(1_000, move || view.set(latency::view()));
            move || drop(interval)
        });
    }
    let LatencyView { provider_relay, relay_browser, rtt } = *view;
    let title = rtt.map_or_else(
        || "relay→you needs a ping round trip to set the clock offset".to_owned(),
        |r| format!("clock offset from the fastest ping ({r:.0} ms round trip)"),
    );
    html! {
        <div class="latency" data-testid="latency" {title}>
            {hop("provider→relay", "provider-relay", provider_relay)}
            {hop("relay→you", "relay-browser", relay_browser)}
        </div>
    }
}
