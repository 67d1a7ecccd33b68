//! One live chart on the page: the Lightweight Charts instance, its series (price as candles or a line, volume,
//! EMA fast/slow, Bollinger bands, an RSI pane and a StochRSI pane) and the [`Series`] model behind them.
//!
//! History goes in once with `setData`; after that each tick moves the model and only the last point of each
//! series is pushed with `update`, so a tick costs the same however long the chart is. Indicators are
//! recomputed in Rust over all closes (microseconds for a few thousand candles) and only their last value sent.
//! Changing what is drawn (line mode, an indicator, an EMA period) rebuilds the chart from the same model.
//!
//! For tests and tooling, the container carries the last candle as `data-last-time` (seconds), `data-last-close`
//! and `data-candles`, updated on every applied tick.

use crate::format::Num;
use std::cell::RefCell;
use std::rc::Rc;

use hamster_shared::api::Candle;
use hamster_shared::{Quote, Symbol};
use serde_json::{json, Value};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use yew::Callback;

use super::candles::{Applied, Series};
use super::indicators;
use super::lwc::{self, ChartApi, Kind, SeriesApi};

/// What the chart draws besides the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// A line of closes instead of candles.
    pub(crate) line: bool,
    /// The two EMA periods (fast, slow); `None` hides them.
    pub(crate) ema: Option<(usize, usize)>,
    pub(crate) bollinger: bool,
    pub(crate) rsi: bool,
    pub(crate) stoch_rsi: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { line: false, ema: Some((12, 26)), bollinger: true, rsi: true, stoch_rsi: true }
    }
}

const BOLLINGER_PERIOD: usize = 20;
const BOLLINGER_WIDTH: f64 = 2.0;
const RSI_PERIOD: usize = 14;
/// StochRSI's stochastic period and %K / %D smoothing (with RSI 14: the usual 14/14/3/3).
const STOCH: (usize, usize, usize) = (14, 3, 3);

fn time(c: &Candle) -> i64 {
    c.start.div_euclid(1000)
}

/// Decimals of the price scale: the asset's, at the magnitude of its latest price.
fn decimals(symbol: &Symbol, series: &Series) -> u32 {
    let price = series.candles.last().map_or(1.0, |c| c.close);
    symbol.asset_class().decimals(symbol.ticker(), price)
}

fn price_format(decimals: u32) -> Value {
    json!({ "type": "price", "precision": decimals, "minMove": 10f64.powi(-(decimals as i32)) })
}

/// The indicator lines, each as `(time, value)` points for the candles that have one.
struct Lines {
    ema_fast: Vec<Option<f64>>,
    ema_slow: Vec<Option<f64>>,
    bands: Vec<Option<indicators::Band>>,
    rsi: Vec<Option<f64>>,
    stoch: Vec<indicators::Stoch>,
}

impl Lines {
    fn compute(series: &Series, settings: &Settings) -> Lines {
        let closes = series.closes();
        let (fast, slow) = settings.ema.unwrap_or((0, 0));
        Lines {
            ema_fast: if settings.ema.is_some() { indicators::ema(&closes, fast) } else { Vec::new() },
            ema_slow: if settings.ema.is_some() { indicators::ema(&closes, slow) } else { Vec::new() },
            bands: if settings.bollinger {
                indicators::bollinger(&closes, BOLLINGER_PERIOD, BOLLINGER_WIDTH)
            } else {
                Vec::new()
            },
            rsi: if settings.rsi { indicators::rsi(&closes, RSI_PERIOD) } else { Vec::new() },
            stoch: if settings.stoch_rsi {
                indicators::stoch_rsi(&closes, RSI_PERIOD, STOCH.0, STOCH.1, STOCH.2)
            } else {
                Vec::new()
            },
        }
    }
}

fn points(candles: &[Candle], values: impl Iterator<Item = Option<f64>>) -> Value {
    Value::Array(
        candles.iter().zip(values).filter_map(|(c, v)| v.map(|v| json!({ "time": time(c), "value": v }))).collect(),
    )
}

fn last_point(candles: &[Candle], value: Option<f64>) -> Option<Value> {
    Some(json!({ "time": time(candles.last()?), "value": value? }))
}

fn price_point(c: &Candle, line: bool) -> Value {
    if line {
        json!({ "time": time(c), "value": c.close })
    } else {
        json!({ "time": time(c), "open": c.open, "high": c.high, "low": c.low, "close": c.close })
    }
}

fn volume_point(c: &Candle) -> Value {
    let color = if c.close >= c.open { "rgba(38,166,154,0.45)" } else { "rgba(239,83,80,0.45)" };
    json!({ "time": time(c), "value": c.volume, "color": color })
}

/// A series with how to read its value out of [`Lines`] for a candle index.
struct Overlay {
    api: SeriesApi,
    pick: fn(&Lines, usize) -> Option<f64>,
}

/// A chart on the page. Dropping it removes the chart.
pub(crate) struct ChartView {
    chart: ChartApi,
    container: web_sys::HtmlElement,
    symbol: Symbol,
    settings: Settings,
    model: Rc<RefCell<Series>>,
    price: SeriesApi,
    volume: Option<SeriesApi>,
    overlays: Vec<Overlay>,
    crosshair: Closure<dyn FnMut(JsValue)>,
    click: Closure<dyn FnMut(JsValue)>,
    decimals: u32,
}

impl ChartView {
    /// Builds the chart in `container` and draws `model`. `on_hover` gets the candle under the crosshair,
    /// `on_pick` the price at a click in the price pane (to set an alert there).
    pub(crate) fn new(
        container: web_sys::HtmlElement,
        symbol: Symbol,
        model: Series,
        settings: Settings,
        on_hover: Callback<Option<Candle>>,
        on_pick: Callback<f64>,
    ) -> Result<ChartView, String> {
        let decimals = decimals(&symbol, &model);
        let chart = lwc::create_chart(
            &container,
            &json!({
                "autoSize": true,
                "layout": {
                    "background": { "type": "solid", "color": "#0d1117" },
                    "textColor": "#c9d1d9",
                    "attributionLogo": true,
                    "panes": { "separatorColor": "#30363d" },
                },
                "grid": { "vertLines": { "color": "#161b22" }, "horzLines": { "color": "#161b22" } },
                "timeScale": { "timeVisible": true, "secondsVisible": false, "borderColor": "#30363d" },
                "rightPriceScale": { "borderColor": "#30363d" },
            }),
        )?;
        let price = if settings.line {
            chart.add(
                Kind::Line,
                &json!({ "color": "#58a6ff", "lineWidth": 2, "priceFormat": price_format(decimals) }),
                0,
            )?
        } else {
            chart.add(
                Kind::Candlestick,
                &json!({
                    "upColor": "#26a69a", "downColor": "#ef5350", "wickUpColor": "#26a69a",
                    "wickDownColor": "#ef5350", "borderVisible": false, "priceFormat": price_format(decimals),
                }),
                0,
            )?
        };
        let model_ref = model;
        let volume = if model_ref.has_volume() {
            let v = chart.add(
                Kind::Histogram,
                &json!({
                    "priceScaleId": "volume", "priceFormat": { "type": "volume" },
                    "lastValueVisible": false, "priceLineVisible": false,
                }),
                0,
            )?;
            chart.style_price_scale("volume", 0, &json!({ "scaleMargins": { "top": 0.8, "bottom": 0.0 } }));
            Some(v)
        } else {
            None
        };
        let line = |color: &str, width: u32, style: u32, pane: u32, precision: Option<u32>| {
            let format = precision.map_or_else(
                || price_format(decimals),
                |p| json!({ "type": "price", "precision": p, "minMove": 0.01 }),
            );
            chart.add(
                Kind::Line,
                &json!({
                    "color": color, "lineWidth": width, "lineStyle": style, "priceFormat": format,
                    "lastValueVisible": false, "priceLineVisible": false, "crosshairMarkerVisible": false,
                }),
                pane,
            )
        };
        let mut overlays = Vec::new();
        if settings.ema.is_some() {
            overlays.push(Overlay {
                api: line("#f0b429", 1, 0, 0, None)?,
                pick: |l, i| l.ema_fast.get(i).copied().flatten(),
            });
            overlays.push(Overlay {
                api: line("#d2a8ff", 1, 0, 0, None)?,
                pick: |l, i| l.ema_slow.get(i).copied().flatten(),
            });
        }
        if settings.bollinger {
            overlays.push(Overlay {
                api: line("#8b949e", 1, 2, 0, None)?,
                pick: |l, i| l.bands.get(i).copied().flatten().map(|b| b.upper),
            });
            overlays.push(Overlay {
                api: line("#6e7681", 1, 1, 0, None)?,
                pick: |l, i| l.bands.get(i).copied().flatten().map(|b| b.middle),
            });
            overlays.push(Overlay {
                api: line("#8b949e", 1, 2, 0, None)?,
                pick: |l, i| l.bands.get(i).copied().flatten().map(|b| b.lower),
            });
        }
        let mut pane = 0;
        let mut stretch = vec![3.0];
        if settings.rsi {
            pane += 1;
            stretch.push(1.0);
            let rsi = line("#d2a8ff", 2, 0, pane, Some(2))?;
            rsi.guide(70.0)?;
            rsi.guide(30.0)?;
            overlays.push(Overlay { api: rsi, pick: |l, i| l.rsi.get(i).copied().flatten() });
        }
        if settings.stoch_rsi {
            pane += 1;
            stretch.push(1.0);
            let k = line("#58a6ff", 1, 0, pane, Some(2))?;
            k.guide(80.0)?;
            k.guide(20.0)?;
            overlays.push(Overlay { api: k, pick: |l, i| l.stoch.get(i).and_then(|s| s.k) });
            overlays.push(Overlay {
                api: line("#f0883e", 1, 0, pane, Some(2))?,
                pick: |l, i| l.stoch.get(i).and_then(|s| s.d),
            });
        }
        chart.stretch(&stretch);

        let model = Rc::new(RefCell::new(model_ref));
        let crosshair = {
            let model = model.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |param: JsValue| {
                let t = js_sys::Reflect::get(&param, &"time".into()).ok().and_then(|t| t.as_f64());
                let candle = t.and_then(|t| model.borrow().at(t as i64 * 1000).copied());
                on_hover.emit(candle);
            })
        };
        chart.subscribe_crosshair_move(crosshair.as_ref().unchecked_ref());
        let click = {
            let price: lwc::SeriesApi = price.clone().unchecked_into();
            Closure::<dyn FnMut(JsValue)>::new(move |param: JsValue| {
                // Clicks in the indicator panes have no price of this series: `coordinateToPrice` answers null.
                let point = js_sys::Reflect::get(&param, &"point".into()).ok().filter(|p| p.is_object());
                let pane = js_sys::Reflect::get(&param, &"paneIndex".into()).ok().and_then(|p| p.as_f64());
                let y = point.and_then(|p| js_sys::Reflect::get(&p, &"y".into()).ok()).and_then(|y| y.as_f64());
                if let (Some(y), None | Some(0.0)) = (y, pane) {
                    if let Some(at) = price.coordinate_to_price(y).as_f64().filter(|p| p.is_finite() && *p > 0.0) {
                        // To the decimals the price scale shows: a level the user can read back.
                        let scale = 10f64.powi(decimals as i32);
                        on_pick.emit((at * scale).round() / scale);
                    }
                }
            })
        };
        chart.subscribe_click(click.as_ref().unchecked_ref());
        let view = ChartView {
            chart,
            container,
            symbol,
            settings,
            model,
            price,
            volume,
            overlays,
            crosshair,
            click,
            decimals,
        };
        view.draw_all()?;
        Ok(view)
    }

    fn draw_all(&self) -> Result<(), String> {
        let model = self.model.borrow();
        let candles = &model.candles;
        self.price.set(&Value::Array(candles.iter().map(|c| price_point(c, self.settings.line)).collect()))?;
        if let Some(v) = &self.volume {
            v.set(&Value::Array(candles.iter().map(volume_point).collect()))?;
        }
        let lines = Lines::compute(&model, &self.settings);
        for o in &self.overlays {
            o.api.set(&points(candles, (0..candles.len()).map(|i| (o.pick)(&lines, i))))?;
        }
        self.chart.fit();
        self.mark(&model);
        Ok(())
    }

    /// Applies a live quote of this chart's symbol; returns what it did.
    pub(crate) fn tick(&self, quote: &Quote) -> Applied {
        if quote.symbol != self.symbol {
            return Applied::Dropped;
        }
        let mut model = self.model.borrow_mut();
        let applied = model.apply(quote.ts, quote.price, quote.volume);
        if applied == Applied::Dropped {
            return applied;
        }
        let candles = &model.candles;
        let Some(last) = candles.last() else { return applied };
        let mut result = self.price.push(&price_point(last, self.settings.line));
        if let Some(v) = &self.volume {
            result = result.and(v.push(&volume_point(last)));
        }
        let lines = Lines::compute(&model, &self.settings);
        let i = candles.len() - 1;
        for o in &self.overlays {
            if let Some(p) = last_point(candles, (o.pick)(&lines, i)) {
                result = result.and(o.api.push(&p));
            }
        }
        if let Err(e) = result {
            web_sys::console::warn_1(&format!("chart update: {e}").into());
        }
        self.mark(&model);
        applied
    }

    fn mark(&self, model: &Series) {
        let set = |k: &str, v: String| {
            let _ = self.container.set_attribute(k, &v);
        };
        set("data-candles", model.candles.len().to_string());
        set("data-decimals", self.decimals.to_string());
        if let Some(c) = model.candles.last() {
            set("data-last-time", time(c).to_string());
            set("data-last-close", Num(c.close).to_string());
        }
    }

    /// The model, to rebuild the chart with other settings.
    pub(crate) fn model(&self) -> Series {
        self.model.borrow().clone()
    }
}

impl Drop for ChartView {
    fn drop(&mut self) {
        self.chart.unsubscribe_crosshair_move(self.crosshair.as_ref().unchecked_ref());
        self.chart.unsubscribe_click(self.click.as_ref().unchecked_ref());
        self.chart.remove();
    }
}
