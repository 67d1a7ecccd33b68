//! wasm-bindgen bindings to TradingView's Lightweight Charts, which `index.html` loads as the global
//! `LightweightCharts`: a bundle of only the exports named in `tools/lightweight-charts.entry.js`, which must list
//! every one looked up here. Only what the detail chart calls is bound. Options and data points cross as plain JS
//! objects made from `serde_json` values, so the Rust side stays typed where it matters (the numbers)
//! and the library's many optional fields need no Rust mirror.
//!
//! Every entry point that can throw is bound with `catch`, and the library's absence (the script failed to
//! load) is an error, not a panic.

use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// `IChartApi`.
    pub(crate) type ChartApi;

    #[wasm_bindgen(method, catch, js_name = addSeries)]
    fn add_series_raw(
        this: &ChartApi,
        definition: &JsValue,
        options: &JsValue,
        pane: u32,
    ) -> Result<SeriesApi, JsValue>;

    #[wasm_bindgen(method, js_name = subscribeCrosshairMove)]
    pub(crate) fn subscribe_crosshair_move(this: &ChartApi, handler: &js_sys::Function);

    #[wasm_bindgen(method, js_name = unsubscribeCrosshairMove)]
    pub(crate) fn unsubscribe_crosshair_move(this: &ChartApi, handler: &js_sys::Function);

    #[wasm_bindgen(method, js_name = subscribeClick)]
    pub(crate) fn subscribe_click(this: &ChartApi, handler: &js_sys::Function);

    #[wasm_bindgen(method, js_name = unsubscribeClick)]
    pub(crate) fn unsubscribe_click(this: &ChartApi, handler: &js_sys::Function);

    #[wasm_bindgen(method, js_name = timeScale)]
    fn time_scale(this: &ChartApi) -> TimeScaleApi;

    #[wasm_bindgen(method, catch, js_name = priceScale)]
    fn price_scale(this: &ChartApi, id: &str, pane: u32) -> Result<PriceScaleApi, JsValue>;

    #[wasm_bindgen(method)]
    fn panes(this: &ChartApi) -> js_sys::Array;

    #[wasm_bindgen(method)]
    pub(crate) fn remove(this: &ChartApi);

    /// `ISeriesApi`.
    pub(crate) type SeriesApi;

    #[wasm_bindgen(method, catch, js_name = setData)]
    fn set_data_raw(this: &SeriesApi, data: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = update)]
    fn update_raw(this: &SeriesApi, point: &JsValue) -> Result<(), JsValue>;

    /// The price at a vertical pixel coordinate of the series' pane (`null` outside it).
    #[wasm_bindgen(method, js_name = coordinateToPrice)]
    pub(crate) fn coordinate_to_price(this: &SeriesApi, y: f64) -> JsValue;

    #[wasm_bindgen(method, catch, js_name = createPriceLine)]
    fn create_price_line(this: &SeriesApi, options: &JsValue) -> Result<JsValue, JsValue>;

    /// `ITimeScaleApi`.
    type TimeScaleApi;

    #[wasm_bindgen(method, js_name = fitContent)]
    fn fit_content(this: &TimeScaleApi);

    /// `IPriceScaleApi`.
    type PriceScaleApi;

    #[wasm_bindgen(method, js_name = applyOptions)]
    fn apply_options(this: &PriceScaleApi, options: &JsValue);

    /// `IPaneApi`.
    type PaneApi;

    #[wasm_bindgen(method, js_name = setStretchFactor)]
    fn set_stretch_factor(this: &PaneApi, factor: f64);
}

/// A JS value from JSON (objects, arrays and numbers only ever come from our own `serde_json` values).
pub(crate) fn js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::UNDEFINED)
}

fn message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

/// The `LightweightCharts` global, if the library loaded.
fn library() -> Result<JsValue, String> {
    let lib = js_sys::Reflect::get(&js_sys::global(), &"LightweightCharts".into()).unwrap_or(JsValue::UNDEFINED);
    if lib.is_undefined() || lib.is_null() {
        return Err("the chart library did not load".into());
    }
    Ok(lib)
}

/// The series kinds the chart uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Candlestick,
    Line,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Candlestick => "CandlestickSeries",
            Kind::Line => "LineSeries",
            Kind::Histogram => "HistogramSeries",
        }
    }
}

/// `LightweightCharts.createChart(container, options)`.
pub(crate) fn create_chart(container: &web_sys::HtmlElement, options: &Value) -> Result<ChartApi, String> {
    let lib = library()?;
    let create = js_sys::Reflect::get(&lib, &"createChart".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("the chart library has no createChart")?;
    create.call2(&lib, container, &js(options)).map(JsCast::unchecked_into).map_err(message)
}

impl ChartApi {
    /// Adds a series of `kind` to pane `pane` (0 is the main one; a new index makes a new pane).
    pub(crate) fn add(&self, kind: Kind, options: &Value, pane: u32) -> Result<SeriesApi, String> {
        let definition = js_sys::Reflect::get(&library()?, &kind.name().into()).map_err(message)?;
        self.add_series_raw(&definition, &js(options), pane).map_err(message)
    }

    pub(crate) fn fit(&self) {
        self.time_scale().fit_content();
    }

    /// Applies options to a price scale (e.g. the volume overlay's margins).
    pub(crate) fn style_price_scale(&self, id: &str, pane: u32, options: &Value) {
        if let Ok(scale) = self.price_scale(id, pane) {
            scale.apply_options(&js(options));
        }
    }

    /// Sets the relative heights of the panes, main first.
    pub(crate) fn stretch(&self, factors: &[f64]) {
        for (pane, factor) in self.panes().iter().zip(factors) {
            pane.unchecked_into::<PaneApi>().set_stretch_factor(*factor);
        }
    }
}

impl SeriesApi {
    pub(crate) fn set(&self, points: &Value) -> Result<(), String> {
        self.set_data_raw(&js(points)).map_err(message)
    }

    /// A horizontal guide at `price` (an oscillator's overbought/oversold level).
    pub(crate) fn guide(&self, price: f64) -> Result<(), String> {
        let options = serde_json::json!({
            "price": price, "color": "#6e7681", "lineWidth": 1, "lineStyle": 2, "axisLabelVisible": false,
        });
        self.create_price_line(&js(&options)).map(drop).map_err(message)
    }

    /// Updates the last point or appends one (the library refuses an older time, which callers never send).
    pub(crate) fn push(&self, point: &Value) -> Result<(), String> {
        self.update_raw(&js(point)).map_err(message)
    }
}
