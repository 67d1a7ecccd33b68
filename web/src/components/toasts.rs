//! Toasts (`data-testid="toast"`) announcing fills and rejections from the account stream, newest last, each
//! gone after a few seconds (the model drops them on its clock) or when dismissed.

use yew::prelude::*;

use crate::context::AppContext;
use crate::services::now_ms;
use crate::state::{Action, PortfolioAction, ToastKind};

#[component]
pub(crate) fn Toasts() -> Html {
    let Some(ctx) = use_context::<AppContext>() else { return html! {} };
    let toasts = &ctx.state.portfolio.toasts;
    if toasts.is_empty() {
        return html! {};
    }
    html! {
        <div class="toasts" role="status" aria-live="polite">
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
                    <div class={classes!("toast", kind)} data-testid="toast" data-kind={kind} key={t.id}>
                        <span>{t.text.clone()}</span>
                        <button type="button" class="close" aria-label="Dismiss" onclick={dismiss}>{"×"}</button>
                    </div>
                }
            })}
        </div>
    }
}
