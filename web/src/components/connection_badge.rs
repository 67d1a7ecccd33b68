//! The connection badge (`data-testid="connection-status"`, `data-state` = live | stalled | connecting |
//! reconnecting | offline | fallback, with "prices as of" the newest value whenever it is not live), a
//! SIMULATED label while the data comes from the built-in simulator, this tab's role among the browser's tabs of
//! the page (`data-testid="tab-role"`: leader, follower or solo; see `services::tabs`), and each upstream
//! provider's state. The region is `aria-live`, so state changes are
//! announced; the once-a-second countdown is hidden from screen readers to keep that quiet.

use yew::prelude::*;

use super::markup::{class_with, raw};
use crate::context::AppContext;
use crate::events::TabRole;
use crate::format;
use crate::services::tz_offset_minutes;

fn role_title(role: TabRole) -> &'static str {
    match role {
        TabRole::Leader => "This tab holds the relay connection for every tab of the page",
        TabRole::Follower => "This tab shares another tab's relay connection",
        TabRole::Solo => "This tab has its own relay connection (the browser cannot share one)",
    }
}

#[component]
pub(crate) fn ConnectionBadge() -> Html {
    let Some(ctx) = use_context::<AppContext>() else {
        return Html::default();
    };
    let state = &ctx.state;
    let badge = state.badge();
    let kind = badge.kind.as_str();
    html! {
        <div class="conn" role="status" aria-live="polite">
            <span class={class_with("badge", Some(kind))} data-testid="connection-status" data-state={kind}>
                {raw(r#"<span class="dot" aria-hidden="true"></span>"#)}
                <span class="label">{badge.label}</span>
                if let Some(detail) = badge.detail {
                    <span class="detail" aria-hidden="true">{format!(" ({detail})")}</span>
                }
                if let Some(ts) = badge.as_of {
                    <span class="as-of" data-testid="as-of">{format!(" — prices as of {}", format::clock(ts, tz_offset_minutes()))}</span>
                }
            </span>
            if state.simulated() {
                {raw(concat!(
                    r#"<span class="simulated" data-testid="simulated" "#,
                    r#"title="Prices come from the relay's built-in simulator, not a market">SIMULATED</span>"#
                ))}
            }
            if let Some(role) = state.tab_role {
                <span class={class_with("tab-role", Some(role.as_str()))} data-testid="tab-role" data-role={role.as_str()}
                    title={role_title(role)}>{role.as_str()}</span>
            }
            <ul class="providers" aria-label="Providers">
                { for state.providers.iter().map(|(name, p)| {
                    let st = p.state.as_str();
                    html! {
                        <li key={name.clone()} class={class_with("provider", Some(st))} title={p.detail.clone()}
                            data-provider={name.clone()} data-state={st}>
                            {raw(r#"<span class="dot" aria-hidden="true"></span>"#)}
                            {format!("{name}: {st}")}
                        </li>
                    }
                }) }
            </ul>
        </div>
    }
}
