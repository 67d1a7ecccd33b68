//! The statistics panel (`data-testid="stats"`): updates received and per second, symbols tracked, quote-to-
//! render lag (average and p95) and reconnects. Each value also sits in a `data-stat` attribute for tests.

use crate::format::Fixed;
use yew::prelude::*;

use super::markup::raw;
use crate::format;
use crate::state::StatsView;

#[derive(Properties, PartialEq)]
pub(crate) struct StatsPanelProps {
    pub(crate) stats: StatsView,
}

#[component]
pub(crate) fn StatsPanel(props: &StatsPanelProps) -> Html {
    let s = &props.stats;
    let lag = |v: Option<f64>| v.map(format::millis).unwrap_or_else(|| "—".into());
    let item = |key: &'static str, label: &'static str, value: String| {
        html! {
            <div class="stat">
                <dt>{label}</dt>
                <dd data-stat={key}>{value}</dd>
            </div>
        }
    };
    html! {
        <section class="panel stats" data-testid="stats" aria-labelledby="stats-title">
            {raw(r#"<h2 id="stats-title">Statistics</h2>"#)}
            <dl>
                {item("updates", "Updates", s.updates.to_string())}
                {item("rate", "Updates/s", Fixed(s.per_second, 1).to_string())}
                {item("symbols", "Symbols", s.symbols.to_string())}
                {item("lag-avg", "Lag avg", lag(s.lag_avg_ms))}
                {item("lag-p95", "Lag p95", lag(s.lag_p95_ms))}
                {item("reconnects", "Reconnects", s.reconnects.to_string())}
            </dl>
        </section>
    }
}
