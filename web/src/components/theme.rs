//! The theme switch in the header (`data-testid="theme-toggle"`): the system's choice (`prefers-color-scheme`),
//! light or dark. The choice is saved in localStorage and applied as `data-theme` on `<html>`, where the
//! stylesheet's colour variables read it; "system" removes the attribute.

use crate::hooks::use_effect_dyn;
use yew::prelude::*;

use crate::services::storage;

/// The themes in the order the button cycles through them.
const THEMES: [&str; 3] = ["system", "light", "dark"];

fn apply(theme: &str) {
    let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) else { return };
    let _ = match theme {
        "light" | "dark" => root.set_attribute("data-theme", theme),
        _ => root.remove_attribute("data-theme"),
    };
}

#[component]
pub(crate) fn ThemeToggle() -> Html {
    let theme = use_state(|| {
        storage::load_json::<String>(storage::THEME_KEY)
            .filter(|t| THEMES.contains(&t.as_str()))
            .unwrap_or_else(|| "system".into())
    });
    use_effect_dyn((*theme).clone(), |t| apply(t));
    let onclick = {
        let theme = theme.clone();
        Callback::from(move |_: MouseEvent| {
            let at = THEMES.iter().position(|t| *t == theme.as_str()).unwrap_or(0);
            let next = THEMES[(at + 1) % THEMES.len()].to_owned();
            let _ = storage::save_json(storage::THEME_KEY, &next);
            theme.set(next);
        })
    };
    html! {
        <button type="button" class="theme-toggle" data-testid="theme-toggle" data-theme-choice={(*theme).clone()}
            title="Colour theme: system, light or dark" {onclick}>
            { format!("Theme: {}", theme.as_str()) }
        </button>
    }
}
