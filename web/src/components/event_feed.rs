//! The live event feed (`data-testid="event-feed"`): the watched channels' events newest first, in columns
//! (ticker, call/put, strike, expiry, premium, size, side) instead of raw JSON, with filters. It holds still while
//! the pointer or the keyboard focus is on it, and says how many arrived meanwhile ("N new", which resumes).
//! Flow alerts from a user-set premium on are highlighted and play a tone. With no channel watched it offers to
//! watch the options flow and the news.

use crate::format::{Fixed, Num};
use crate::hooks::use_effect_dyn;
use hamster_shared::Symbol;
use wasm_bindgen::JsCast;
use web_sys::{AudioContext, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::markup::{cell, class_with, options, raw, td};
use crate::context::AppContext;
use crate::format;
use crate::services::{sound, tz_offset_minutes};
use crate::state::feed::{Body, FeedEvent, Right};
use crate::state::{Action, FeedAction, FeedFilter};

/// Rows rendered at most (the feed keeps more; a filter reaches them).
const SHOWN: usize = 100;
/// The channels the button watches.
const CHANNELS: [&str; 2] = ["FLOW-ALERTS", "NEWS"];

/// `$1.2M`, `$640K`, `$950`.
fn money(v: f64) -> String {
    if v >= 1e6 {
        format!("${}M", Fixed(v / 1e6, 1))
    } else if v >= 1e3 {
        format!("${}K", Fixed(v / 1e3, 0))
    } else {
        format!("${}", Fixed(v, 0))
    }
}

fn row(e: &FeedEvent, big: f64, offset: i64) -> Html {
    let time = format::clock(e.ts, offset);
    match &e.body {
        Body::Flow { ticker, strike, expiry, right, premium, size, side, sweep } => {
            let cp = match right {
                Some(Right::Call) => "C",
                Some(Right::Put) => "P",
                None => "",
            };
            let mut class = class_with("flow", (*premium >= big).then_some("big"));
            class.push(right.map(|r| match r {
                Right::Call => "call",
                Right::Put => "put",
            }));
            html! {
                <tr key={e.id} class={class} data-kind="flow" data-ticker={ticker.clone()}>
                    {td("time", time)}
                    {td("sym", ticker.clone())}
                    {cell("td", "cp", cp.into())}
                    {td("num", strike.map(|s| Num(s).to_string()).unwrap_or_default())}
                    {td("", expiry.clone().unwrap_or_default())}
                    {td("num premium", money(*premium))}
                    {td("num", size.to_string())}
                    <td>{side.unwrap_or("")}{ if *sweep { " sweep" } else { "" } }</td>
                </tr>
            }
        }
        Body::News { headline, tickers } => html! {
            <tr key={e.id} class="news" data-kind="news">
                {td("time", time)}
                {td("sym", tickers.join(" "))}
                <td colspan="6">{headline}</td>
            </tr>
        },
        Body::Other { preview } => html! {
            <tr key={e.id} class="other" data-kind="other">
                {td("time", time)}
                {cell("td", "sym", e.channel.as_str().into())}
                <td colspan="6"><code>{preview}</code></td>
            </tr>
        },
    }
}

#[component]
pub(crate) fn EventFeed() -> Html {
    let ctx = use_context::<AppContext>();
    let audio = use_mut_ref(|| None::<AudioContext>);
    let sounded = use_mut_ref(|| None::<u64>);
    let newest_big = ctx.as_ref().and_then(|c| c.state.feed.newest_big);
    use_effect_dyn(newest_big, move |newest| {
        let last = sounded.borrow_mut().replace(newest.unwrap_or(0));
        if newest.is_some() && last.is_some() && last != *newest {
            let _ = sound::tone(&audio, 660.0, 1.0);
        }
    });
    // The ticker filter is not a controlled input: the page re-renders with every tick, and a `value` prop would
    // put the applied filter back over what the user is typing (applied on `change`). It shows the applied
    // filter when the feed appears and whenever that changes (upper-cased, trimmed).
    let ticker_field = use_node_ref();
    {
        let (field, ticker) = (ticker_field.clone(), ctx.as_ref().map(|c| c.state.feed.filter.ticker.clone()));
        use_effect_dyn(ticker, move |ticker| {
            if let (Some(input), Some(ticker)) = (field.cast::<HtmlInputElement>(), ticker) {
                input.set_value(ticker);
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let state = &ctx.state;
    let feed = &state.feed;
    let watching = state.watchlist.iter().any(|s| CHANNELS.iter().any(|c| s.as_str().ends_with(c)));

    let dispatch = |action: FeedAction| {
        let state = state.clone();
        move || state.dispatch(Action::Feed(action.clone()))
    };
    // One closure per event type, not per callback: each closure is its own code.
    let on_mouse = |action: FeedAction| {
        let go = dispatch(action);
        Callback::from(move |_: MouseEvent| go())
    };
    let on_focus = |action: FeedAction| {
        let go = dispatch(action);
        Callback::from(move |_: FocusEvent| go())
    };
    let (pause, resume) = (on_mouse(FeedAction::Pause), on_mouse(FeedAction::Resume));
    let (focus_in, focus_out) = (on_focus(FeedAction::Pause), on_focus(FeedAction::Resume));
    let filter = feed.filter.clone();
    let set_filter = |change: fn(&mut FeedFilter, String)| {
        let (state, filter) = (state.clone(), filter.clone());
        Callback::from(move |e: Event| {
            let target = e.target();
            let value = target
                .as_ref()
                .and_then(|t| t.dyn_ref::<HtmlInputElement>().map(|i| i.value()))
                .or_else(|| target.as_ref().and_then(|t| t.dyn_ref::<HtmlSelectElement>().map(|s| s.value())))
                .unwrap_or_default();
            let mut next = filter.clone();
            change(&mut next, value);
            state.dispatch(Action::Feed(FeedAction::Filter(next)));
        })
    };
    let on_ticker = set_filter(|f, v| f.ticker = v.trim().to_ascii_uppercase());
    let on_kind = set_filter(|f, v| f.kind = v);
    let on_right = set_filter(|f, v| {
        f.right = match v.as_str() {
            "call" => Some(Right::Call),
            "put" => Some(Right::Put),
            _ => None,
        }
    });
    let on_min = set_filter(|f, v| f.min_premium = crate::format::number(v.trim()).unwrap_or(0.0));
    let on_big = {
        let state = state.clone();
        Callback::from(move |e: Event| {
            let v = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()).map(|i| i.value());
            let p = v.and_then(|v| crate::format::number(v.trim())).filter(|p| *p > 0.0);
            state.dispatch(Action::Feed(FeedAction::BigPremium(p)));
        })
    };
    let watch = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| {
            for c in CHANNELS {
                if let Ok(symbol) = Symbol::parse(c) {
                    if !ctx.state.rows.contains_key(&symbol) {
                        ctx.add(symbol);
                    }
                }
            }
        })
    };
    let big = feed.big_threshold();
    let offset = tz_offset_minutes();
    let held = feed.held.len();
    html! {
        <section class="panel feed" aria-labelledby="feed-title">
            {raw(r#"<h2 id="feed-title">Event feed</h2>"#)}
            if !watching {
                <button type="button" data-testid="feed-watch" onclick={watch}>
                    {"Watch options flow and news"}
                </button>
            }
            <div class="feed-filters">
                <input type="text" aria-label="Ticker" placeholder="ticker" onchange={on_ticker} ref={ticker_field} />
                <select aria-label="Kind" onchange={on_kind}>
                    {options(&[("", "all"), ("flow", "options flow"), ("news", "news")], &filter.kind)}
                </select>
                <select aria-label="Call or put" onchange={on_right}>
                    {options(&[("", "C/P"), ("call", "calls"), ("put", "puts")], match filter.right {
                        Some(Right::Call) => "call",
                        Some(Right::Put) => "put",
                        None => "",
                    })}
                </select>
                <input type="text" inputmode="numeric" aria-label="Minimum premium" placeholder="min premium"
                    onchange={on_min} />
                <input type="text" inputmode="numeric" aria-label="Highlight from premium"
                    placeholder={format!("highlight ≥ {}", money(big))} onchange={on_big} />
            </div>
            if feed.paused && held > 0 {
                <button type="button" class="feed-new" data-testid="feed-new" onclick={resume.clone()}>
                    {format!("{held} new")}
                </button>
            }
            <div class="feed-list" data-testid="event-feed" data-paused={feed.paused.to_string()} tabindex="0"
                onmouseenter={pause} onmouseleave={resume} onfocusin={focus_in} onfocusout={focus_out}>
                <table>
                    <tbody>
                        { for feed.visible().take(SHOWN).map(|e| row(e, big, offset)) }
                    </tbody>
                </table>
            </div>
        </section>
    }
}
