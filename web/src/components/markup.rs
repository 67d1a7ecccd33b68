//! Small builders for markup that several views repeat with only its text and classes changing. The dashboard's
//! wasm is shipped to every browser, and each `html!` element compiles to its own construction code; a loop
//! over a table of strings, or one plain (non-generic) function called from many places, keeps that code once.

use yew::prelude::*;

/// The header cells of a table, `<th scope="col" class=…>label</th>` for each `(label, class)`; an empty class
/// leaves the attribute out. Without `scope`, plain `<th>label</th>`.
pub(crate) fn column_heads(cols: &[(&'static str, &'static str)], scope: bool) -> Html {
    cols.iter()
        .map(|&(label, class)| {
            html! {
                <th scope={scope.then_some("col")} class={(!class.is_empty()).then_some(class)}>{label}</th>
            }
        })
        .collect()
}

/// `<td class=…>content</td>` (or another `tag`): the leaf cell tables repeat most. An empty class leaves the
/// attribute out. Takes `Html`, not `impl Into<Html>`, so there is one copy of it.
pub(crate) fn cell(tag: &'static str, class: &'static str, content: Html) -> Html {
    html! { <@{tag} class={(!class.is_empty()).then_some(class)}>{content}</@> }
}

/// [`cell`] as `<td>` holding a text.
pub(crate) fn td(class: &'static str, text: String) -> Html {
    cell("td", class, Html::from(text))
}

/// Static markup from a string: the browser parses it, where `html!` would compile each element to its own
/// construction code and attribute table. Only for constants of this code (never text from elsewhere), without
/// listeners, references or components, and not directly inside a table (it is parsed outside one).
pub(crate) fn raw(markup: &'static str) -> Html {
    Html::from_html_unchecked(AttrValue::Static(markup))
}

/// The classes `base` and, when there is one, `extra` (a state such as "active" or a trend): one function for
/// what `classes!` would expand to at every element that has a class and one optional class.
pub(crate) fn class_with(base: &'static str, extra: Option<&'static str>) -> Classes {
    let mut classes = Classes::from(base);
    classes.push(extra);
    classes
}

/// The `<option value=…>label</option>`s of a select from `(value, label)` pairs, the one whose value is `chosen`
/// selected.
pub(crate) fn options(items: &[(&'static str, &'static str)], chosen: &str) -> Html {
    items.iter().map(|&(value, label)| html! { <option {value} selected={value == chosen}>{label}</option> }).collect()
}
