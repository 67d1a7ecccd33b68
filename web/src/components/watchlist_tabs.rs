//! The named watchlists as tabs above the table (`data-testid="watchlist-tabs"`): pick one, make a new one
//! (`+`), rename the active one (double-click or ✎), delete it (×, asked twice). The lists themselves are
//! [`crate::state::lists`]; switching shows another list's symbols, and the connection service subscribes to
//! whatever the active list holds.

use crate::hooks::use_effect_dyn;
use yew::prelude::*;

use super::markup::class_with;
use crate::context::AppContext;
use crate::state::lists::{check_name, MAX_NAME};
use crate::state::{Action, ListAction};

/// What the name field is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Editing {
    New,
    Rename(usize),
}

#[component]
pub(crate) fn WatchlistTabs() -> Html {
    let ctx = use_context::<AppContext>();
    let editing = use_state(|| None::<Editing>);
    let error = use_state(|| None::<String>);
    let confirm_delete = use_state(|| false);
    let field = use_node_ref();
    // The name field is not controlled: the page re-renders with every tick, and a `value` prop would put back
    // what it says over what the user is typing. It is filled once, when editing starts.
    {
        let (field, current) = (field.clone(), ctx.as_ref().map(|c| c.state.lists.clone()));
        use_effect_dyn(*editing, move |editing| {
            if let Some(input) = field.cast::<web_sys::HtmlInputElement>() {
                let text = match (editing, &current) {
                    (Some(Editing::Rename(at)), Some(lists)) => lists.names.get(*at).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                input.set_value(&text);
                let _ = input.focus();
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let lists = ctx.state.lists.clone();
    let dispatch = {
        let state = ctx.state.clone();
        move |action: ListAction| state.dispatch(Action::Lists(action))
    };
    let tabs = lists.names.iter().enumerate().map(|(i, name)| {
        let active = i == lists.active;
        let onclick = {
            let (dispatch, confirm_delete) = (dispatch.clone(), confirm_delete.clone());
            Callback::from(move |_: MouseEvent| {
                confirm_delete.set(false);
                dispatch(ListAction::Switch(i));
            })
        };
        let ondblclick = {
            let editing = editing.clone();
            Callback::from(move |_: MouseEvent| editing.set(Some(Editing::Rename(i))))
        };
        html! {
            <button type="button" role="tab" class={class_with("list-tab", active.then_some("active"))}
                aria-selected={active.to_string()} data-testid="watchlist-tab" data-name={name.clone()}
                {onclick} {ondblclick}>
                {name.clone()}
            </button>
        }
    });
    let start = |mode: Editing| {
        let (editing, error) = (editing.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            editing.set(Some(mode));
        })
    };
    let onkeydown = {
        let (editing, error, lists, dispatch) = (editing.clone(), error.clone(), lists.clone(), dispatch.clone());
        Callback::from(move |e: KeyboardEvent| match e.key().as_str() {
            "Enter" => {
                e.prevent_default();
                let value = e.target_unchecked_into::<web_sys::HtmlInputElement>().value();
                let except = match *editing {
                    Some(Editing::Rename(at)) => Some(at),
                    _ => None,
                };
                match check_name(&lists, &value, except) {
                    Ok(name) => {
                        match *editing {
                            Some(Editing::Rename(at)) => dispatch(ListAction::Rename(at, name)),
                            _ => dispatch(ListAction::Create(name)),
                        }
                        error.set(None);
                        editing.set(None);
                    }
                    Err(why) => error.set(Some(why)),
                }
            }
            "Escape" => {
                error.set(None);
                editing.set(None);
            }
            _ => {}
        })
    };
    let delete = {
        let (confirm_delete, dispatch, at) = (confirm_delete.clone(), dispatch.clone(), lists.active);
        Callback::from(move |_: MouseEvent| {
            if *confirm_delete {
                confirm_delete.set(false);
                dispatch(ListAction::Delete(at));
            } else {
                confirm_delete.set(true);
            }
        })
    };
    let current = lists.names.get(lists.active).cloned().unwrap_or_default();
    html! {
        <div class="list-tabs">
            <div role="tablist" aria-label="Watchlists" data-testid="watchlist-tabs">{ for tabs }</div>
            <button type="button" class="list-action" aria-label="New watchlist" title="New watchlist"
                data-testid="new-list" onclick={start(Editing::New)}>{"+"}</button>
            <button type="button" class="list-action" aria-label={format!("Rename {current}")} title="Rename"
                data-testid="rename-list" onclick={start(Editing::Rename(lists.active))}>{"✎"}</button>
            if lists.names.len() > 1 {
                <button type="button" class="list-action" data-testid="delete-list" onclick={delete}
                    aria-label={format!("Delete {current}")} title="Delete this list">
                    { if *confirm_delete { format!("Delete {current}?") } else { "×".to_owned() } }
                </button>
            }
            if let Some(mode) = *editing {
                <input ref={field} type="text" class="list-name" data-testid="list-name" maxlength={MAX_NAME.to_string()}
                    aria-label={ if mode == Editing::New { "New list name (Enter to create)" } else { "List name (Enter to rename)" } }
                    placeholder={ if mode == Editing::New { "new list name" } else { "rename to" } }
                    {onkeydown} />
            }
            if let Some(why) = &*error {
                <span class="input-error" role="alert">{why.clone()}</span>
            }
        </div>
    }
}
