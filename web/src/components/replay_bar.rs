//! The replay bar: pick a recorded range on a timeline that shows where data exists, play it at a chosen speed,
//! pause, scrub, stop — with an unmistakable REPLAY badge while it runs and the replayed values in their own
//! table, never in the live rows.
//!
//! The relay plays the range to this page's connection only (see docs/store.md); this component only sends the
//! commands through the page's one connection and renders what the reducer made of the relay's answers.

use crate::format::{Fixed, Num};
use hamster_shared::api::RecordingsResponse;
use hamster_shared::{ClientMessage, ReplayAction};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::markup::{class_with, column_heads, raw, td};
use crate::context::AppContext;
use crate::format;
use crate::services::tz_offset_minutes;
use crate::state::{replay_plan, Replay};

/// Speeds offered; 0 plays as fast as the connection reads.
const SPEEDS: [(f64, &str); 6] = [(1.0, "1×"), (2.0, "2×"), (5.0, "5×"), (10.0, "10×"), (50.0, "50×"), (0.0, "max")];

#[component]
pub(crate) fn ReplayBar() -> Html {
    let ctx = use_context::<AppContext>();
    let open = use_state(|| false);
    let recordings = use_state(|| None::<Result<RecordingsResponse, String>>);
    // The chosen range as fractions of the recorded span, so it survives a reload of the recordings.
    let range = use_state(|| (0.0f64, 1.0f64));
    let speed = use_state(|| 10.0f64);
    let Some(ctx) = ctx else {
        return html! {};
    };

    let load = {
        let (recordings, api) = (recordings.clone(), ctx.state.api.clone());
        Callback::from(move |_: ()| {
            let (recordings, api) = (recordings.clone(), api.clone());
            let Some(api) = api else {
                recordings.set(Some(Err("the relay's address is not known yet".into())));
                return;
            };
            wasm_bindgen_futures::spawn_local(async move {
                recordings.set(Some(api.recordings().await.map_err(|e| e.to_string())));
            });
        })
    };
    let toggle = {
        let (open, load) = (open.clone(), load.clone());
        Callback::from(move |_: MouseEvent| {
            if !*open {
                load.emit(());
            }
            open.set(!*open);
        })
    };

    let replay = ctx.state.replay.clone().filter(Replay::is_active);
    let badge = replay.as_ref().map(|r| {
        let speed = if r.speed == 0.0 { "max".to_owned() } else { format!("{}×", Num(r.speed)) };
        let paused = if r.phase == hamster_shared::ReplayPhase::Paused { " · paused" } else { "" };
        html! { <span class="replay-badge" data-testid="replay-badge" role="status">{format!("REPLAY {speed}{paused}")}</span> }
    });

    let body = if *open {
        panel(&ctx, &recordings, &range, &speed, &load)
    } else {
        html! {}
    };
    html! {
        <section class={class_with("replay", replay.is_some().then_some("replaying"))} aria-label="Replay">
            <div class="replay-head">
                <button type="button" class="replay-toggle" data-testid="replay-open" aria-expanded={open.to_string()} onclick={toggle}>
                    {if *open { "Hide replay" } else { "Replay a recorded session…" }}
                </button>
                {badge.unwrap_or_default()}
            </div>
            {body}
        </section>
    }
}

fn panel(
    ctx: &AppContext,
    recordings: &UseStateHandle<Option<Result<RecordingsResponse, String>>>,
    range: &UseStateHandle<(f64, f64)>,
    speed: &UseStateHandle<f64>,
    load: &Callback<()>,
) -> Html {
    let recorded = match &**recordings {
        None => return raw(r#"<p class="replay-note">Loading recordings…</p>"#),
        Some(Err(e)) => {
            return html! { <p class="replay-note error" role="alert">{format!("Recordings unavailable: {e}")}</p> }
        }
        Some(Ok(r)) => r,
    };
    let Some(plan) = replay_plan(&recorded.recorded, &ctx.state.watchlist) else {
        let reload = load.clone();
        return html! {
            <p class="replay-note">
                {"Nothing recorded yet — the relay records every tick it receives. "}
                <button type="button" onclick={Callback::from(move |_: MouseEvent| reload.emit(()))}>{"Check again"}</button>
            </p>
        };
    };
    let tz = tz_offset_minutes();
    let at = |fraction: f64| plan.first + ((plan.last - plan.first) as f64 * fraction) as i64;
    let (lo, hi) = **range;
    let (from, to) = (at(lo), at(hi).max(at(lo) + 1));
    let replay = ctx.state.replay.clone();
    let active = replay.as_ref().is_some_and(Replay::is_active);
    let playing = replay.as_ref().is_some_and(|r| r.phase == hamster_shared::ReplayPhase::Playing);

    let slider = |which: usize| {
        let range = range.clone();
        Callback::from(move |e: InputEvent| {
            let Some(input) = e.target_dyn_into::<HtmlInputElement>() else { return };
            let v = input.value_as_number() / 1000.0;
            let (lo, hi) = *range;
            range.set(if which == 0 { (v.min(hi), hi) } else { (lo, v.max(lo)) });
        })
    };
    let send = |msg: ClientMessage| {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.send(msg.clone()))
    };
    let control = |action: ReplayAction| send(ClientMessage::ReplayControl { id: None, action, speed: None, to: None });
    let play = if active {
        if playing {
            control(ReplayAction::Pause)
        } else {
            control(ReplayAction::Resume)
        }
    } else {
        send(ClientMessage::Replay { id: None, from, to: to + 1, symbols: plan.symbols.clone(), speed: **speed })
    };
    let speeds = SPEEDS.iter().map(|&(value, label)| {
        let (ctx, speed_state) = (ctx.clone(), speed.clone());
        let onclick = Callback::from(move |_: MouseEvent| {
            speed_state.set(value);
            if active {
                ctx.send(ClientMessage::ReplayControl { id: None, action: ReplayAction::Speed, speed: Some(value), to: None });
            }
        });
        let current = (**speed - value).abs() < f64::EPSILON;
        html! {
            <button type="button" class={class_with("speed", current.then_some("current"))} aria-pressed={current.to_string()}
                data-testid={format!("replay-speed-{label}")} {onclick}>{label}</button>
        }
    });
    let scrub = {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            let Some(input) = e.target_dyn_into::<HtmlInputElement>() else { return };
            let to = input.value_as_number() as i64;
            ctx.send(ClientMessage::ReplayControl { id: None, action: ReplayAction::Seek, speed: None, to: Some(to) });
        })
    };
    let spans = plan.spans.iter().map(|(symbol, a, b)| {
        let style = format!("--a:{};--w:{}", Fixed(*a, 4), Fixed((b - a).max(0.005), 4));
        html! { <div class="span-row" title={symbol.clone()}><span class="span-label">{symbol}</span><span class="span" style={style}></span></div> }
    });
    let window = format!("--a:{};--w:{}", Fixed(lo, 4), Fixed((hi - lo).max(0.002), 4));

    html! {
        <div class="replay-panel">
            <div class="timeline" aria-label="Where data is recorded">
                {for spans}
                <div class="window" style={window}></div>
            </div>
            <div class="replay-range">
                <label>{"From "}<input type="range" min="0" max="1000" value={Fixed(lo * 1000.0, 0).to_string()} data-testid="replay-from" oninput={slider(0)} /></label>
                <span>{format!("{} → {}", format::clock(from, tz), format::clock(to, tz))}</span>
                <label>{"To "}<input type="range" min="0" max="1000" value={Fixed(hi * 1000.0, 0).to_string()} data-testid="replay-to" oninput={slider(1)} /></label>
            </div>
            <div class="replay-controls">
                <button type="button" class="play" data-testid="replay-play" onclick={play}>
                    {if playing { "Pause" } else if active { "Resume" } else { "Play" }}
                </button>
                {for speeds}
                <button type="button" data-testid="replay-stop" disabled={!active} onclick={control(ReplayAction::Stop)}>{"Stop"}</button>
            </div>
            {replay.map(|r| progress(&r, scrub, tz)).unwrap_or_default()}
        </div>
    }
}

fn progress(replay: &Replay, scrub: Callback<Event>, tz: i64) -> Html {
    let rows = replay.rows.iter().map(|row| {
        let change = if row.first != 0.0 { (row.price / row.first - 1.0) * 100.0 } else { 0.0 };
        html! {
            <tr data-testid="replay-row">
                {td("", row.symbol.to_string())}
                {td("num", Fixed(row.price, 4).to_string().trim_end_matches('0').trim_end_matches('.').to_owned())}
                {td("num", format::percent(change))}
                {td("num", format::clock(row.ts, tz))}
            </tr>
        }
    });
    html! {
        <div class="replay-progress">
            <input type="range" class="scrubber" aria-label="Replay position" data-testid="replay-scrub"
                min={replay.from.to_string()} max={replay.to.to_string()} value={replay.position.to_string()}
                disabled={!replay.is_active()} onchange={scrub} />
            <p class="replay-note" data-testid="replay-played" data-played={replay.played.to_string()}>
                {format!("{} · {} of the range · {} quotes and events played{}", format::clock(replay.position, tz),
                    format!("{}%", Fixed(replay.progress() * 100.0, 0)), replay.played,
                    match replay.phase { hamster_shared::ReplayPhase::Ended => " · ended", hamster_shared::ReplayPhase::Stopped => " · stopped", _ => "" })}
            </p>
            <table class="replay-rows"><thead><tr>{column_heads(&[("Symbol", ""), ("Price", ""), ("Change", ""), ("Time", "")], false)}</tr></thead>
                <tbody>{for rows}</tbody></table>
        </div>
    }
}
