//! The activity log (`data-testid="activity-log"`): the last 100 events, newest first. Its prop is the
//! reducer's `Rc` of the log, which only changes when an entry is added, so ticks alone never re-render it.

use std::collections::VecDeque;
use std::rc::Rc;

use yew::prelude::*;

use super::markup::{class_with, raw};
use crate::format;
use crate::services::tz_offset_minutes;
use crate::state::LogEntry;

#[derive(Properties)]
pub(crate) struct ActivityLogProps {
    pub(crate) log: Rc<VecDeque<LogEntry>>,
}

impl PartialEq for ActivityLogProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.log, &other.log)
    }
}

#[component]
pub(crate) fn ActivityLog(props: &ActivityLogProps) -> Html {
    let offset = tz_offset_minutes();
    html! {
        <section class="panel log" aria-labelledby="log-title">
            {raw(r#"<h2 id="log-title">Activity</h2>"#)}
            <ol data-testid="activity-log" role="log" aria-live="polite" aria-relevant="additions">
                { for props.log.iter().rev().map(|e| html! {
                    <li key={e.id} class={class_with("entry", Some(e.level.as_str()))}>
                        <time>{format::clock(e.at_ms, offset)}</time>
                        <span class="text">{e.text.clone()}</span>
                    </li>
                }) }
            </ol>
        </section>
    }
}
