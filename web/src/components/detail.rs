//! The detail view of one symbol: a dialog over the watchlist with its chart, opened by clicking a row (or
//! Enter on a focused row) and by the deep link `#/symbol/BTC%2FUSD`, closed by Esc or its close button.
//!
//! The address is the source of truth: opening sets the hash, and the view follows `hashchange`, so links,
//! reloads and the back button all work. Row clicks are caught by one listener on the document (a row is any
//! `tr[data-symbol]` that is not a channel's), so the watchlist needs no knowledge of the dialog; clicks on a
//! row's own controls (buttons, links, inputs) are left to them.
//!
//! The panel fetches the candles of the chosen timeframe from the relay, builds the chart ([`ChartView`]) and
//! registers with the tick tap, so every live tick of the symbol moves the last candle. A chart opened on a symbol
//! the relay did not hold yet (a deep link on a fresh page, a symbol off the watchlist) gets no past from that
//! first request; the provider may hand the relay one on subscription (the simulator does), which is in place by
//! the time its first tick arrives, so that tick asks once more.

use crate::format::Num;
use crate::hooks::use_effect_dyn;
use std::cell::RefCell;
use std::rc::Rc;

use hamster_shared::api::{Candle, Timeframe};
use hamster_shared::Symbol;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::markup::{class_with, raw};
use crate::chart::candles::{Applied, Series};
use crate::chart::tap;
use crate::chart::view::{ChartView, Settings};
use crate::context::AppContext;
use crate::format;
use crate::services::api::{encode_component, Api};
use crate::services::now_ms;
use crate::state::{Action, AlertAction, Condition, Repeat};

/// Candles asked of the relay per timeframe.
const CANDLES: usize = 1_000;
const HASH_PREFIX: &str = "#/symbol/";

/// The symbol a location hash opens, if it is a detail link.
pub(crate) fn symbol_from_hash(hash: &str) -> Option<Symbol> {
    let encoded = hash.strip_prefix(HASH_PREFIX)?;
    Symbol::parse(&percent_decode(encoded)?).ok()
}

/// The hash that opens `symbol`.
pub(crate) fn hash_for(symbol: &Symbol) -> String {
    format!("{HASH_PREFIX}{}", encode_component(symbol.as_str()))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn location_hash() -> String {
    web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default()
}

fn open(symbol: &Symbol) {
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_hash(&hash_for(symbol));
    }
}

/// Drops the hash without a reload or a `hashchange` (the caller updates the view itself).
fn clear_hash() {
    let Some(w) = web_sys::window() else { return };
    let location = w.location();
    let path = format!("{}{}", location.pathname().unwrap_or_default(), location.search().unwrap_or_default());
    if let Ok(h) = w.history() {
        let _ = h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
}

/// The symbol of the watchlist row `target` is in, unless it is one of the row's own controls.
fn row_symbol(target: Option<web_sys::EventTarget>) -> Option<Symbol> {
    let el = target?.dyn_into::<web_sys::Element>().ok()?;
    if el.closest("button, a, input, select, textarea, [role=button]").ok().flatten().is_some() {
        return None;
    }
    // A channel's row (a feed of events) has no prices to chart.
    let row = el.closest("tr[data-symbol]:not([data-kind=channel])").ok().flatten()?;
    Symbol::parse(&row.get_attribute("data-symbol")?).ok()
}

type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// Adds `f` for `kind` on `target`; the closure must be kept alive and removed again.
fn on(
    target: &web_sys::EventTarget,
    kind: &'static str,
    f: impl FnMut(web_sys::Event) + 'static,
) -> (web_sys::EventTarget, &'static str, Listener) {
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(f);
    let _ = target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
    (target.clone(), kind, closure)
}

/// Routes the page to and from the detail view; renders it when a symbol is open.
#[component]
pub(crate) fn DetailView() -> Html {
    let ctx = use_context::<AppContext>();
    let current = use_state(|| symbol_from_hash(&location_hash()));
    {
        let current = current.setter();
        use_effect_dyn((), move |_| {
            let mut listeners = Vec::new();
            if let Some(window) = web_sys::window() {
                let setter = current.clone();
                listeners.push(on(&window, "hashchange", move |_| setter.set(symbol_from_hash(&location_hash()))));
                if let Some(doc) = window.document() {
                    listeners.push(on(&doc, "click", |e| {
                        if let Some(symbol) = row_symbol(e.target()) {
                            open(&symbol);
                        }
                    }));
                    let setter = current.clone();
                    listeners.push(on(&doc, "keydown", move |e| {
                        let Some(key) = e.dyn_ref::<KeyboardEvent>().map(KeyboardEvent::key) else { return };
                        match key.as_str() {
                            "Escape" if symbol_from_hash(&location_hash()).is_some() => {
                                e.prevent_default();
                                clear_hash();
                                setter.set(None);
                            }
                            "Enter" => {
                                if let Some(symbol) = row_symbol(e.target()) {
                                    e.prevent_default();
                                    open(&symbol);
                                }
                            }
                            _ => {}
                        }
                    }));
                }
            }
            move || {
                for (target, kind, closure) in listeners {
                    let _ = target.remove_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
                }
            }
        });
    }
    // Memoised, so the panel's props stay equal while the rest of the page re-renders every frame.
    let on_close = use_callback(current.setter(), |_: (), current| {
        clear_hash();
        current.set(None);
    });
    let dispatcher = ctx.as_ref().map(|c| c.state.dispatcher());
    let on_add = use_callback((*current).clone(), move |_: MouseEvent, symbol| {
        if let (Some(d), Some(symbol)) = (&dispatcher, symbol) {
            d.dispatch(Action::AddSymbol { symbol: symbol.clone(), now_ms: now_ms() });
        }
    });
    let dispatcher = ctx.as_ref().map(|c| c.state.dispatcher());
    let on_alert = use_callback((*current).clone(), move |condition: Condition, symbol| {
        if let (Some(d), Some(symbol)) = (&dispatcher, symbol) {
            let action =
                AlertAction::Add { symbol: Some(symbol.clone()), condition, repeat: Repeat::Once, expires_ms: None };
            d.dispatch(Action::Alert(action));
        }
    });
    let Some(symbol) = (*current).clone() else { return html! {} };
    let (api, watched) = match &ctx {
        Some(ctx) => (ctx.state.api.clone(), ctx.state.watchlist.contains(&symbol)),
        None => (None, false),
    };
    html! {
        <DetailPanel key={symbol.to_string()} symbol={symbol.clone()} {api} {watched} {on_close} {on_add} {on_alert} />
    }
}

#[derive(Properties, PartialEq)]
struct PanelProps {
    symbol: Symbol,
    api: Option<Api>,
    /// Whether the symbol is on the watchlist (and so gets live ticks).
    watched: bool,
    on_close: Callback<()>,
    on_add: Callback<MouseEvent>,
    /// Sets a price alert on the symbol (picked on the chart).
    on_alert: Callback<Condition>,
}

/// Where loading the candles stands.
#[derive(Debug, Clone, PartialEq)]
enum Load {
    Waiting,
    Ready,
    Failed(String),
}

#[component]
fn DetailPanel(props: &PanelProps) -> Html {
    let tf = use_state(|| Timeframe::M1);
    let settings = use_state(Settings::default);
    let hover = use_state(|| None::<Candle>);
    // A price clicked on the chart, offered as an alert level, with the price it was picked against.
    let pick = use_state(|| None::<(f64, f64)>);
    let load = use_state(|| Load::Waiting);
    let container = use_node_ref();
    let close_button = use_node_ref();
    let chart: Rc<RefCell<Option<ChartView>>> = use_mut_ref(|| None);
    // Bumped by the first tick after a fetch that brought no past; each bump fetches again.
    let refetch = use_state(|| 0u32);
    let refetched = use_mut_ref(|| 0u32);
    let thin_history = use_mut_ref(|| false);
    // The EMA period fields are not controlled inputs: the view re-renders with every tick, and a `value` prop
    // would put back the current period over what the user is typing (committed on `change` only). They are
    // filled when the view opens and when EMA is switched on or off (which resets the periods).
    let ema_fields = [use_node_ref(), use_node_ref()];
    {
        let (fields, (fast, slow)) = (ema_fields.clone(), settings.ema.unwrap_or((12, 26)));
        use_effect_dyn(settings.ema.is_some(), move |_| {
            for (field, period) in fields.iter().zip([fast, slow]) {
                if let Some(input) = field.cast::<HtmlInputElement>() {
                    input.set_value(&period.to_string());
                }
            }
        });
    }

    // Focus moves into the dialog when it opens, and the chart dies with the panel (one effect: each is its own
    // copy of yew's effect code).
    {
        let (close_button, chart) = (close_button.clone(), chart.clone());
        use_effect_dyn((), move |_| {
            if let Some(b) = close_button.cast::<web_sys::HtmlElement>() {
                let _ = b.focus();
            }
            move || drop(chart.borrow_mut().take())
        });
    }
    // Live ticks go straight to the chart.
    {
        let (chart, thin_history) = (chart.clone(), thin_history.clone());
        let (refetch, refetched) = (refetch.setter(), refetched.clone());
        use_effect_dyn(props.symbol.clone(), move |_| {
            let listening = tap::listen(move |q| {
                let applied = chart.borrow().as_ref().is_some_and(|view| view.tick(q) != Applied::Dropped);
                if applied && std::mem::take(&mut *thin_history.borrow_mut()) {
                    refetch.set(*refetched.borrow() + 1);
                }
            });
            move || drop(listening)
        });
    }
    // Candles for the symbol and timeframe, then the chart; again whenever what is drawn changes.
    {
        let (chart, container, load, hover_set) = (chart.clone(), container.clone(), load.clone(), hover.setter());
        let pick_set = pick.setter();
        let (thin_history, refetched) = (thin_history.clone(), refetched.clone());
        let deps = (props.symbol.clone(), *tf, props.api.clone(), *settings, *refetch);
        use_effect_dyn(deps, move |(symbol, tf, api, settings, refetch)| {
            let again = std::mem::replace(&mut *refetched.borrow_mut(), *refetch) != *refetch;
            let cancelled = Rc::new(RefCell::new(false));
            let on_hover = Callback::from(move |c| hover_set.set(c));
            let on_pick = {
                let chart = chart.clone();
                Callback::from(move |at: f64| {
                    let last = chart.borrow().as_ref().and_then(|v| v.model().candles.last().map(|c| c.close));
                    pick_set.set(Some((at, last.unwrap_or(at))));
                })
            };
            let build = {
                let (chart, container, symbol, settings, load) =
                    (chart.clone(), container.clone(), symbol.clone(), *settings, load.clone());
                move |model: Series| {
                    let Some(el) = container.cast::<web_sys::HtmlElement>() else { return };
                    // The old chart goes first: one canvas set in the container at a time.
                    chart.borrow_mut().take();
                    match ChartView::new(el, symbol, model, settings, on_hover, on_pick.clone()) {
                        Ok(view) => {
                            *chart.borrow_mut() = Some(view);
                            load.set(Load::Ready);
                        }
                        Err(e) => load.set(Load::Failed(e)),
                    }
                }
            };
            // Same symbol and timeframe: redraw the model already held.
            let held = chart.borrow().as_ref().map(ChartView::model).filter(|m| m.tf == *tf && !again);
            if let Some(model) = held {
                build(model);
            } else if let Some(api) = api.clone() {
                load.set(Load::Waiting);
                let (symbol, tf, cancelled) = (symbol.clone(), *tf, cancelled.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let result = api.candles(&symbol, tf, CANDLES).await;
                    if *cancelled.borrow() {
                        return;
                    }
                    match result {
                        Ok(h) => {
                            // Nothing before the current period: only a first request gets a second chance.
                            *thin_history.borrow_mut() = !again && h.candles.len() < 2;
                            build(Series::new(tf, h.candles, CANDLES * 2))
                        }
                        Err(e) => load.set(Load::Failed(e.to_string())),
                    }
                });
            }
            move || *cancelled.borrow_mut() = true
        });
    }

    let symbol = &props.symbol;
    let timeframes = Timeframe::ALL.iter().map(|&t| {
        let tf = tf.clone();
        let label = if t == Timeframe::D1 { "1D".to_owned() } else { t.to_string() };
        let active = *tf == t;
        html! {
            <button type="button" class={class_with("tf", active.then_some("active"))} aria-pressed={active.to_string()}
                data-testid={format!("timeframe-{}", t.as_str())} onclick={Callback::from(move |_| tf.set(t))}>
                {label}
            </button>
        }
    });
    let toggle = |label: &'static str, testid: &'static str, on: bool, change: fn(&mut Settings, bool)| {
        let settings = settings.clone();
        let onchange = Callback::from(move |e: Event| {
            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
            let mut s = *settings;
            change(&mut s, checked);
            settings.set(s);
        });
        html! {
            <label class="toggle"><input type="checkbox" checked={on} data-testid={testid} {onchange} />{label}</label>
        }
    };
    let ema_input = |label: &'static str, which: usize| {
        let disabled = settings.ema.is_none();
        let settings = settings.clone();
        let onchange = Callback::from(move |e: Event| {
            let input = e.target_unchecked_into::<HtmlInputElement>();
            let mut s = *settings;
            let (f, sl) = s.ema.unwrap_or((12, 26));
            // Not a number yet (an emptied field): the chart keeps its period until one is typed.
            let Ok(n) = input.value().parse::<usize>() else { return };
            // The field shows the period the chart uses.
            let n = n.clamp(2, 500);
            input.set_value(&n.to_string());
            s.ema = Some(if which == 0 { (n, sl) } else { (f, n) });
            settings.set(s);
        });
        html! {
            <label class="period">{label}
                <input ref={ema_fields[which].clone()} type="number" min="2" max="500" {disabled}
                    data-testid={format!("ema-{}", if which == 0 { "fast" } else { "slow" })} {onchange} />
            </label>
        }
    };
    let readout = match &*hover {
        Some(c) => {
            let p = |v: f64| format::price(symbol, v);
            html! {
                <dl class="readout" data-testid="readout">
                    { for [("O", c.open), ("H", c.high), ("L", c.low), ("C", c.close)]
                        .into_iter().map(|(k, v)| html! { <><dt>{k}</dt><dd>{p(v)}</dd></> }) }
                    if c.volume > 0.0 { <dt>{"V"}</dt><dd>{format::volume(c.volume)}</dd> }
                </dl>
            }
        }
        None => {
            let hint = "Move over the chart for open, high, low, close and volume.";
            html! { <p class="readout hint" data-testid="readout">{hint}</p> }
        }
    };
    let status = match &*load {
        Load::Waiting => raw(r#"<p class="chart-status">Loading candles…</p>"#),
        Load::Ready => html! {},
        Load::Failed(e) => html! { <p class="chart-status error" role="alert">{format!("Chart unavailable: {e}")}</p> },
    };
    let chart_alert = match *pick {
        Some((at, last)) => {
            let above = at >= last;
            let condition = if above { Condition::Above { level: at } } else { Condition::Below { level: at } };
            let set = {
                let (on_alert, pick) = (props.on_alert.clone(), pick.clone());
                Callback::from(move |_: MouseEvent| {
                    on_alert.emit(condition);
                    pick.set(None);
                })
            };
            let cancel = {
                let pick = pick.clone();
                Callback::from(move |_: MouseEvent| pick.set(None))
            };
            let what = format!(
                "Alert when {symbol} goes {} {}",
                if above { "above" } else { "below" },
                format::price(symbol, at)
            );
            html! {
                <div class="chart-alert" data-testid="chart-alert" data-level={Num(at).to_string()}>
                    <span>{what}</span>
                    <button type="button" data-testid="chart-alert-set" onclick={set}>{"Set alert"}</button>
                    <button type="button" aria-label="Cancel" onclick={cancel}>{"×"}</button>
                </div>
            }
        }
        None => raw(r#"<p class="chart-alert hint">Click the chart to set a price alert at that level.</p>"#),
    };
    let on_close = props.on_close.reform(|_: MouseEvent| ());
    html! {
        <div class="detail-backdrop">
            <section class="detail" role="dialog" aria-modal="true" aria-label={format!("{symbol} chart")}
                data-testid="detail-view" data-symbol={symbol.to_string()}>
                <header class="detail-head">
                    <h2>{symbol.as_str()}</h2>
                    <button type="button" class="trade" data-testid="detail-trade" data-trade={symbol.to_string()}>
                        {"Trade"}
                    </button>
                    <div class="timeframes" role="group" aria-label="Timeframe">{for timeframes}</div>
                    {toggle("Line", "line-mode", settings.line, |s, on| s.line = on)}
                    <button type="button" class="close" ref={close_button} aria-label="Close (Esc)" title="Close (Esc)"
                        data-testid="detail-close" onclick={on_close}>{"×"}</button>
                </header>
                <div class="indicators">
                    {toggle("EMA", "toggle-ema", settings.ema.is_some(), |s, on| {
                        s.ema = on.then_some(s.ema.unwrap_or((12, 26)))
                    })}
                    {ema_input("fast", 0)}
                    {ema_input("slow", 1)}
                    {toggle("Bollinger 20, 2", "toggle-bollinger", settings.bollinger, |s, on| s.bollinger = on)}
                    {toggle("RSI 14", "toggle-rsi", settings.rsi, |s, on| s.rsi = on)}
                    {toggle("StochRSI 14 14 3 3", "toggle-stoch", settings.stoch_rsi, |s, on| s.stoch_rsi = on)}
                </div>
                if !props.watched {
                    <p class="chart-status">
                        {"Not on the watchlist: the chart shows history only. "}
                        <button type="button" onclick={props.on_add.clone()}>{"Add for live updates"}</button>
                    </p>
                }
                {readout}
                {status}
                <div class="chart" ref={container} data-testid="detail-chart" data-tf={tf.as_str()}></div>
                {chart_alert}
                {raw(concat!(
                    r#"<p class="attribution">Charts by <a href="https://www.tradingview.com/" target="_blank" "#,
                    r#"rel="noopener">TradingView</a> Lightweight Charts™ (Apache-2.0).</p>"#
                ))}
            </section>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_links_round_trip() {
        let btc = Symbol::parse("BTC/USD").unwrap();
        assert_eq!(hash_for(&btc), "#/symbol/BTC%2FUSD");
        assert_eq!(symbol_from_hash("#/symbol/BTC%2FUSD"), Some(btc.clone()));
        assert_eq!(symbol_from_hash("#/symbol/btc%2fusd"), Some(btc));
        assert_eq!(symbol_from_hash("#/symbol/AAPL").map(|s| s.to_string()), Some("AAPL".into()));
        for bad in ["", "#/", "#/symbol/", "#/symbol/%zz", "#/symbol/%E2%82", "#/symbol/A%20B", "#/other/AAPL"] {
            assert_eq!(symbol_from_hash(bad), None, "{bad:?}");
        }
    }
}
