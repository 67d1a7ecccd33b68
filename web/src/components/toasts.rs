//! Toasts (`data-testid="toast"`) announcing fills and rejections from the account stream, newest last, each
//! gone after a few seconds (the model drops them on its clock) or when dismissed. Each new one also plays a short
//! tone through the Web Audio API (higher for a fill, lower for a rejection); the number played is in the
//! container's `data-chimes`. A browser that allows no sound before a user gesture stays silent, harmlessly.

use crate::hooks::use_effect_dyn;
use std::cell::RefCell;

use web_sys::AudioContext;
use yew::prelude::*;

use super::markup::class_with;
use crate::context::AppContext;
use crate::services::{now_ms, sound};
use crate::state::{Action, PortfolioAction, ToastKind};

/// A fill's tone is high, a rejection's low.
fn chime(audio: &RefCell<Option<AudioContext>>, kind: ToastKind) -> Option<()> {
    let hz = match kind {
        ToastKind::Fill => 880.0,
        ToastKind::Rejection => 220.0,
    };
    sound::tone(audio, hz, 0.8)
}

#[component]
pub(crate) fn Toasts() -> Html {
    let ctx = use_context::<AppContext>();
    let audio = use_mut_ref(|| None::<AudioContext>);
    let chimes = use_mut_ref(|| 0u64);
    // The newest toast's id: ids only grow, so one that is not above the last chimed one is an old toast left
    // on top after a newer one went.
    let chimed = use_mut_ref(|| 0u64);
    let newest = ctx.as_ref().and_then(|c| c.state.portfolio.toasts.last().map(|t| (t.id, t.kind)));
    {
        let (audio, chimes) = (audio.clone(), chimes.clone());
        use_effect_dyn(newest, move |newest| {
            if let Some((id, kind)) = *newest {
                if id > *chimed.borrow() {
                    *chimed.borrow_mut() = id;
                    if chime(&audio, kind).is_some() {
                        *chimes.borrow_mut() += 1;
                    }
                }
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let toasts = &ctx.state.portfolio.toasts;
    if toasts.is_empty() {
        return html! {};
    }
    html! {
        <div class="toasts" role="status" aria-live="polite" data-chimes={chimes.borrow().to_string()}>
            {for toasts.iter().map(|t| {
                let dismiss = {
                    let (state, id) = (ctx.state.clone(), t.id);
                    Callback::from(move |_: MouseEvent| {
                        state.dispatch(Action::Portfolio { action: PortfolioAction::DismissToast(id), now_ms: now_ms() })
                    })
                };
                let kind = match t.kind {
                    ToastKind::Fill => "fill",
                    ToastKind::Rejection => "rejection",
                };
                html! {
                    <div class={class_with("toast", Some(kind))} data-testid="toast" data-kind={kind} key={t.id}>
                        <span>{t.text.clone()}</span>
                        <button type="button" class="close" aria-label="Dismiss" onclick={dismiss}>{"×"}</button>
                    </div>
                }
            })}
        </div>
    }
}
