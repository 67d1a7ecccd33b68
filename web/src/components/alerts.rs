//! The alerts panel: a form to set an alert (`data-testid="alert-form"`, prefilled by a row's bell), the alerts
//! that are armed, and the log of those that fired (`alert-log`) with the triggering price and time. A fired
//! alert is announced once: a toast in one `role="alert"` region (`alert-toast`), a short tone (mutable), and a
//! browser notification when the user allowed them (asked only from the button, merged per alert by `tag`).
//! Among several tabs of the page only the one that talks to the relay fires alerts, so that one tab announces;
//! the others list the alert in their log (`services::tabs`). `data-announced` on the toast region counts this
//! tab's announcements. Sound on/off is saved, so it holds for every tab (whichever announces).

use crate::format::Num;
use crate::hooks::use_effect_dyn;
use hamster_shared::api::Timeframe;
use hamster_shared::Symbol;
use wasm_bindgen::JsCast;
use web_sys::{AudioContext, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::markup::{options, raw};
use crate::context::AppContext;
use crate::format;
use crate::services::{now_ms, sound, storage, tz_offset_minutes};
use crate::state::{alerts, Action, AlertAction, Condition, Repeat, Signal};

/// The symbol picker's value for "every symbol of the watchlist".
const WATCHLIST_SCOPE: &str = "*";

/// Candles asked of the relay to seed an indicator alert's series.
const SEED_CANDLES: usize = 300;

/// The timeframes an indicator alert can read, as its select's (value, label) pairs: `Timeframe::ALL` (a test
/// checks it), written out so the options are constants.
const TIMEFRAMES: [(&str, &str); 5] =
    [("1m", "on 1m"), ("5m", "on 5m"), ("15m", "on 15m"), ("1h", "on 1h"), ("1d", "on 1d")];

/// The alert kinds the form offers: (value, label).
const KINDS: [(&str, &str); 10] = [
    ("above", "price above"),
    ("below", "price below"),
    ("crosses", "price crosses"),
    ("move", "moves % in 5 min"),
    ("rsi_above", "RSI(14) rises through"),
    ("rsi_below", "RSI(14) falls through"),
    ("ema_up", "EMA fast crosses above slow"),
    ("ema_down", "EMA fast crosses below slow"),
    ("stoch_up", "StochRSI %K crosses above %D"),
    ("stoch_down", "StochRSI %K crosses below %D"),
];

/// The condition the form describes, or why it cannot. `level` is the price, percent or RSI level; for EMA
/// crosses it is "fast/slow" periods.
fn condition(kind: &str, level: &str, tf: Timeframe) -> Result<Condition, String> {
    let number = || -> Result<f64, String> {
        let v = crate::format::number(level.trim()).ok_or_else(|| "the level must be a number".to_owned())?;
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err("the level must be above zero".to_owned())
        }
    };
    let rsi_level = || -> Result<f64, String> {
        let v = number()?;
        if v < 100.0 {
            Ok(v)
        } else {
            Err("an RSI level is between 0 and 100".to_owned())
        }
    };
    let periods = || -> Result<(usize, usize), String> {
        let text = if level.trim().is_empty() { "9/21" } else { level.trim() };
        let (fast, slow) = text.split_once('/').ok_or("EMA periods look like 9/21 (fast/slow)")?;
        let parse = |p: &str| p.trim().parse::<usize>().ok().filter(|n| (2..=200).contains(n));
        match (parse(fast), parse(slow)) {
            (Some(f), Some(s)) if f < s => Ok((f, s)),
            _ => Err("EMA periods look like 9/21: fast below slow, each 2-200".to_owned()),
        }
    };
    let signal = |signal: Signal| Ok(Condition::Indicator { tf, signal });
    match kind {
        "below" => Ok(Condition::Below { level: number()? }),
        "crosses" => Ok(Condition::Crosses { level: number()? }),
        "move" => Ok(Condition::MovePct { pct: number()?, window_ms: 5 * 60_000 }),
        "rsi_above" => signal(Signal::RsiAbove { level: rsi_level()? }),
        "rsi_below" => signal(Signal::RsiBelow { level: rsi_level()? }),
        "ema_up" | "ema_down" => {
            let (fast, slow) = periods()?;
            signal(Signal::EmaCross { fast, slow, up: kind == "ema_up" })
        }
        "stoch_up" => signal(Signal::StochCross { up: true }),
        "stoch_down" => signal(Signal::StochCross { up: false }),
        _ => Ok(Condition::Above { level: number()? }),
    }
}

/// What the level field means for a kind.
fn level_hint(kind: &str) -> &'static str {
    match kind {
        "move" => "percent",
        "rsi_above" => "level, e.g. 70",
        "rsi_below" => "level, e.g. 30",
        "ema_up" | "ema_down" => "fast/slow, e.g. 9/21",
        "stoch_up" | "stoch_down" => "(no level)",
        _ => "level",
    }
}

/// `Notification.permission`: "granted", "denied", "default", or `None` without the API.
fn notification_permission() -> Option<String> {
    let window = web_sys::window()?;
    let api = js_sys::Reflect::get(&window, &"Notification".into()).ok().filter(|v| !v.is_undefined())?;
    js_sys::Reflect::get(&api, &"permission".into()).ok()?.as_string()
}

/// Shows `body` as a browser notification, one per `tag` (a newer one replaces the older).
fn notify(title: &str, body: &str, tag: &str) {
    if notification_permission().as_deref() != Some("granted") {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body(body);
    options.set_tag(tag);
    let _ = web_sys::Notification::new_with_options(title, &options);
}

fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|i| i.value()).unwrap_or_default()
}

fn select_value(node: &NodeRef) -> String {
    node.cast::<HtmlSelectElement>().map(|s| s.value()).unwrap_or_default()
}

#[component]
pub(crate) fn AlertsPanel() -> Html {
    let ctx = use_context::<AppContext>();
    let (symbol, kind, level, repeat, cooldown, tf_node) =
        (use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref());
    let expiry = use_node_ref();
    let tf_v = use_state(|| Timeframe::M1);
    let error = use_state(|| None::<String>);
    // The selects are controlled (`selected` from these), so a re-render never leaves them on another option.
    let kind_v = use_state(|| "above".to_owned());
    let repeat_v = use_state(|| "once".to_owned());
    let muted = use_state(storage::sound_muted);
    let announcements = use_mut_ref(|| 0u64);
    let permission = use_state(notification_permission);
    let audio = use_mut_ref(|| None::<AudioContext>);
    let announced = use_mut_ref(|| None::<u64>);

    // Announce each newly fired alert once: tone and notification. The first run only notes where the log is.
    let newest = ctx.as_ref().and_then(|c| c.state.alerts.log.back().cloned());
    {
        let (audio, announcements) = (audio.clone(), announcements.clone());
        use_effect_dyn(newest.as_ref().map(|f| f.seq), move |_| {
            let Some(fired) = newest else { return };
            let last = announced.borrow_mut().replace(fired.seq);
            let new = last.is_some_and(|seen| fired.seq > seen) || last.is_none() && now_ms() - fired.at_ms < 2_000;
            if new && !fired.remote {
                *announcements.borrow_mut() += 1;
                // Read now, not from this tab's state: another tab may have changed it.
                if !storage::sound_muted() {
                    let _ = sound::tone(&audio, 1_320.0, 1.0);
                }
                notify("Hamster Terminal alert", &fired.text, &format!("hamster-alert-{}", fired.alert_id));
            }
        });
    }
    // The cool-down field is not a controlled input: the panel re-renders with every tick, and a `value` prop
    // would put its initial minute back over what the user is typing. It is filled once.
    {
        let cooldown = cooldown.clone();
        use_effect_dyn(ctx.is_some(), move |_| {
            if let Some(input) = cooldown.cast::<HtmlInputElement>() {
                input.set_value("60");
            }
        });
    }
    // The bell on a row: prefill the form with its symbol and a level just above the price.
    let draft = ctx.as_ref().and_then(|c| c.state.alerts_draft.clone());
    {
        let (symbol, level) = (symbol.clone(), level.clone());
        use_effect_dyn(draft, move |draft| {
            if let Some((sym, price)) = draft {
                if let Some(s) = symbol.cast::<HtmlSelectElement>() {
                    s.set_value(sym.as_str());
                }
                if let Some(l) = level.cast::<HtmlInputElement>() {
                    l.set_value(&Num((price * 1.001 * 1e6).round() / 1e6).to_string());
                    let _ = l.focus();
                }
            }
        });
    }
    // A bell anywhere on the page (`data-alert="SYMBOL"`, `data-price`) prefills the form; another tab switching
    // the sound shows here too. One effect for both listeners: each effect is its own copy of yew's effect code.
    {
        let (dispatcher, muted) = (ctx.as_ref().map(|c| c.state.dispatcher()), muted.clone());
        use_effect_dyn((), move |_| {
            let storage_listener = web_sys::window().map(|window| {
                gloo_events::EventListener::new(&window, "storage", move |event| {
                    let key = event.dyn_ref::<web_sys::StorageEvent>().and_then(|e| e.key());
                    if key.as_deref() == Some(storage::SOUND_MUTED_KEY) {
                        muted.set(storage::sound_muted());
                    }
                })
            });
            let listener = web_sys::window().and_then(|w| w.document()).zip(dispatcher).map(|(doc, dispatcher)| {
                gloo_events::EventListener::new(&doc, "click", move |event| {
                    let Some(el) = event.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
                    let Some(button) = el.closest("[data-alert]").ok().flatten() else { return };
                    let symbol = button.get_attribute("data-alert").and_then(|s| Symbol::parse(&s).ok());
                    let price = button.get_attribute("data-price").and_then(|p| crate::format::number(&p));
                    if let Some(symbol) = symbol {
                        dispatcher.dispatch(Action::Alert(AlertAction::Draft { symbol, price: price.unwrap_or(0.0) }));
                    }
                })
            });
            move || drop((listener, storage_listener))
        });
    }
    // Indicator alerts read candles: seed each symbol and timeframe from the relay's history once, so a signal
    // is defined at once instead of after fifteen live candles.
    {
        let wanted = ctx.as_ref().map(|c| c.state.alerts.signal_series()).unwrap_or_default();
        let (api, dispatcher) = match &ctx {
            Some(c) => (c.state.api.clone(), Some(c.state.dispatcher())),
            None => (None, None),
        };
        let seeded = use_mut_ref(std::collections::HashSet::<(Symbol, Timeframe)>::new);
        use_effect_dyn(wanted, move |wanted| {
            if let (Some(api), Some(dispatcher)) = (api, dispatcher) {
                for (symbol, tf) in wanted.iter().cloned() {
                    if !seeded.borrow_mut().insert((symbol.clone(), tf)) {
                        continue;
                    }
                    let (api, dispatcher, seeded) = (api.clone(), dispatcher.clone(), seeded.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        match api.candles(&symbol, tf, SEED_CANDLES).await {
                            Ok(h) => {
                                dispatcher.dispatch(Action::Alert(AlertAction::Seed { symbol, tf, candles: h.candles }))
                            }
                            // Not seeded: the series builds from live ticks, and a later change retries.
                            Err(_) => {
                                seeded.borrow_mut().remove(&(symbol, tf));
                            }
                        }
                    });
                }
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let state = &ctx.state;

    let onsubmit = {
        let (state, error) = (state.clone(), error.clone());
        let nodes = (symbol.clone(), kind.clone(), level.clone(), repeat.clone(), cooldown.clone());
        let expiry = expiry.clone();
        let tf = *tf_v;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (symbol, kind, level, repeat, cooldown) = &nodes;
            let chosen = select_value(symbol);
            let sym = if chosen == WATCHLIST_SCOPE {
                None
            } else {
                match Symbol::parse(&chosen) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        error.set(Some("pick a symbol".into()));
                        return;
                    }
                }
            };
            let condition = match condition(&select_value(kind), &input_value(level), tf) {
                Ok(c) => c,
                Err(e) => {
                    error.set(Some(e));
                    return;
                }
            };
            if sym.is_none()
                && matches!(condition, Condition::Above { .. } | Condition::Below { .. } | Condition::Crosses { .. })
            {
                error.set(Some(
                    "a price level needs one symbol; for the whole watchlist use a % move or a signal".into(),
                ));
                return;
            }
            let repeat = match select_value(repeat).as_str() {
                "every" => {
                    let secs = crate::format::number(input_value(cooldown).trim()).unwrap_or(60.0).max(0.0);
                    Repeat::Every { cooldown_ms: (secs * 1000.0) as i64 }
                }
                _ => Repeat::Once,
            };
            let expires_ms = match input_value(&expiry).trim() {
                "" => None,
                text => match crate::format::number(text) {
                    Some(min) if min > 0.0 => Some(now_ms() + (min * 60_000.0) as i64),
                    _ => {
                        error.set(Some("the expiry is in minutes, above zero (or empty: never)".into()));
                        return;
                    }
                },
            };
            error.set(None);
            state.dispatch(Action::Alert(AlertAction::Add { symbol: sym, condition, repeat, expires_ms }));
        })
    };
    let ask_permission = {
        let permission = permission.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(window) = web_sys::window() else { return };
            let Ok(api) = js_sys::Reflect::get(&window, &"Notification".into()) else { return };
            let Ok(request) = js_sys::Reflect::get(&api, &"requestPermission".into()) else { return };
            let Some(request) = request.dyn_ref::<js_sys::Function>() else { return };
            if let Ok(promise) = request.call0(&api) {
                let permission = permission.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise)).await;
                    permission.set(notification_permission());
                });
            }
        })
    };
    let toggle_mute = {
        let muted = muted.clone();
        Callback::from(move |_: MouseEvent| {
            storage::set_sound_muted(!*muted);
            muted.set(!*muted);
        })
    };
    // One closure for both selects that keep their value as text (each closure is its own code).
    let keep_choice = |chosen: &UseStateHandle<String>| {
        let chosen = chosen.clone();
        Callback::from(move |e: Event| {
            if let Some(s) = e.target().and_then(|t| t.dyn_into::<HtmlSelectElement>().ok()) {
                chosen.set(s.value());
            }
        })
    };
    let (on_kind, on_repeat) = (keep_choice(&kind_v), keep_choice(&repeat_v));
    let on_tf = {
        let tf_v = tf_v.clone();
        Callback::from(move |e: Event| {
            if let Some(s) = e.target().and_then(|t| t.dyn_into::<HtmlSelectElement>().ok()) {
                if let Some(t) = Timeframe::ALL.into_iter().find(|t| t.as_str() == s.value()) {
                    tf_v.set(t);
                }
            }
        })
    };
    let indicator = !matches!(kind_v.as_str(), "above" | "below" | "crosses" | "move");
    let offset = tz_offset_minutes();
    let toast = state.alerts.toasts(state.now_ms).last().cloned();
    html! {
        <section class="panel alerts" aria-labelledby="alerts-title" data-testid="alerts">
            {raw(r#"<h2 id="alerts-title">Alerts</h2>"#)}
            <form class="alert-form" data-testid="alert-form" onsubmit={onsubmit} novalidate=true>
                <select ref={symbol} aria-label="Symbol" data-testid="alert-symbol">
                    { for state.watchlist.iter().enumerate().map(|(i, s)| {
                        // The bell's symbol, else the first: every option must say whether it is chosen.
                        let chosen = state.alerts_draft.as_ref().map_or(i == 0, |(d, _)| d == s);
                        html! { <option key={s.as_str()} value={s.as_str().to_owned()} selected={chosen}>{s.as_str()}</option> }
                    }) }
                    <option key={WATCHLIST_SCOPE} value={WATCHLIST_SCOPE} selected=false>{"whole watchlist"}</option>
                </select>
                <select ref={kind} aria-label="Condition" data-testid="alert-kind" onchange={on_kind}>
                    {options(&KINDS, &kind_v)}
                </select>
                if indicator {
                    <select ref={tf_node} aria-label="Timeframe" data-testid="alert-tf" onchange={on_tf}>
                        {options(&TIMEFRAMES, tf_v.as_str())}
                    </select>
                }
                <input ref={level} type="text" inputmode="decimal" aria-label="Level, percent or EMA periods"
                    data-testid="alert-level" placeholder={level_hint(&kind_v)} />
                <select ref={repeat} aria-label="Repeat" data-testid="alert-repeat" onchange={on_repeat}>
                    {options(&[("once", "once"), ("every", "every time")], &repeat_v)}
                </select>
                <input ref={cooldown} type="text" inputmode="numeric" aria-label="Cool-down in seconds"
                    data-testid="alert-cooldown" placeholder="cool-down s" />
                <input ref={expiry} type="text" inputmode="decimal" aria-label="Expires after minutes (empty: never)"
                    data-testid="alert-expiry" placeholder="expires in min" />
                {raw(r#"<button type="submit" data-testid="alert-create">Set alert</button>"#)}
                <p class="input-error">{ (*error).clone().unwrap_or_default() }</p>
            </form>
            <div class="alert-controls">
                <button type="button" onclick={toggle_mute} aria-pressed={(*muted).to_string()}>
                    { if *muted { "Sound off" } else { "Sound on" } }
                </button>
                if permission.as_deref() == Some("default") {
                    <button type="button" data-testid="notify-enable" onclick={ask_permission}>
                        {"Enable notifications"}
                    </button>
                }
            </div>
            <ul class="alert-list" data-testid="alert-list">
                { for state.alerts.list.iter().map(|a| {
                    let remove = {
                        let (state, id) = (state.clone(), a.id);
                        Callback::from(move |_: MouseEvent| state.dispatch(Action::Alert(AlertAction::Remove(id))))
                    };
                    let what = alerts::describe(a.scope(), a.condition, f64::NAN);
                    let what = what.rsplit_once(':').map_or(what.as_str(), |(w, _)| w).to_owned();
                    let every = matches!(a.repeat, Repeat::Every { .. });
                    html! {
                        <li key={a.id}>
                            <span>{what}{ if every { " (every time)" } else { "" } }</span>
                            if let Some(until) = a.expires_ms {
                                <time class="until">{format!(" until {}", format::clock(until, offset))}</time>
                            }
                            <button type="button" class="remove" aria-label="Remove alert" onclick={remove}>{"×"}</button>
                        </li>
                    }
                }) }
            </ul>
            <ol class="alert-log" data-testid="alert-log" aria-label="Fired alerts">
                { for state.alerts.log.iter().rev().map(|f| html! {
                    <li key={f.seq}>
                        <time>{format::clock(f.at_ms, offset)}</time>{" "}{f.text.clone()}
                    </li>
                }) }
            </ol>
            <div class="alert-toast" role="alert" data-testid="alert-toast"
                data-announced={announcements.borrow().to_string()}>
                { toast.map(|f| html! { <div class="toast alert">{f.text}</div> }).unwrap_or_default() }
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use hamster_shared::api::Timeframe;

    use super::TIMEFRAMES;

    #[test]
    fn the_timeframe_options_are_every_timeframe() {
        let values: Vec<&str> = TIMEFRAMES.iter().map(|&(value, _)| value).collect();
        assert_eq!(values, Timeframe::ALL.map(Timeframe::as_str));
        for (value, label) in TIMEFRAMES {
            assert_eq!(label, format!("on {value}"));
        }
    }
}
