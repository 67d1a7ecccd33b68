//! An inline SVG sparkline of a row's recent prices, green when the window ends higher than it started, red
//! when lower. The geometry is [`crate::format::sparkline_points`], tested natively.
//!
//! Redrawing the line (a new `points` list the browser parses, lays out and paints) is one of a row's dearest
//! updates, and a trend drawn ten times a second reads no better than one drawn a few times a second. So the
//! line redraws at most every [`REDRAW_EVERY_MS`]: new values within that time are drawn together when it is up.
//! Symbols that tick slower than that redraw on every tick, as before.

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use super::markup::class_with;
use crate::format::sparkline_points;

const WIDTH: f64 = 96.0;
const HEIGHT: f64 = 24.0;
// The same sizes as attribute text, written out: formatting an f64 would link the float formatter for them.
const VIEW_BOX: &str = "0 0 96 24";
const WIDTH_ATTR: &str = "96";
const HEIGHT_ATTR: &str = "24";
/// Shortest time between two redraws of one sparkline.
const REDRAW_EVERY_MS: f64 = 400.0;

#[derive(Properties, PartialEq)]
pub(crate) struct SparklineProps {
    /// Oldest first.
    pub(crate) values: Vec<f64>,
}

pub(crate) struct Sparkline {
    /// Wall-clock ms of the last redraw.
    drawn_at: f64,
    /// The redraw owed for values that came too soon after the last one.
    pending: Option<Timeout>,
}

impl Component for Sparkline {
    type Message = ();
    type Properties = SparklineProps;

    fn create(_ctx: &Context<Self>) -> Self {
        Sparkline { drawn_at: f64::NEG_INFINITY, pending: None }
    }

    fn changed(&mut self, ctx: &Context<Self>, _old: &SparklineProps) -> bool {
        let wait = self.drawn_at + REDRAW_EVERY_MS - now();
        if wait <= 0.0 {
            self.pending = None;
            return true;
        }
        if self.pending.is_none() {
            let link = ctx.link().clone();
            self.pending = Some(Timeout::new(wait.ceil() as u32, move || link.send_message(())));
        }
        false
    }

    fn update(&mut self, _ctx: &Context<Self>, _msg: ()) -> bool {
        self.pending = None;
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first_render: bool) {
        self.drawn_at = now();
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let values = &ctx.props().values;
        let points = sparkline_points(values, WIDTH, HEIGHT);
        let trend = match (values.first(), values.last()) {
            (Some(a), Some(b)) if b > a => "up",
            (Some(a), Some(b)) if b < a => "down",
            _ => "flat",
        };
        html! {
            <svg class={class_with("spark", Some(trend))} viewBox={VIEW_BOX}
                width={WIDTH_ATTR} height={HEIGHT_ATTR} role="img"
                aria-label={format!("trend of the last {} ticks", values.len())}>
                <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5"
                    stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke" />
            </svg>
        }
    }
}

fn now() -> f64 {
    js_sys::Date::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_out_sizes_are_the_sizes() {
        assert_eq!(VIEW_BOX, format!("0 0 {WIDTH} {HEIGHT}"));
        assert_eq!((WIDTH_ATTR, HEIGHT_ATTR), (WIDTH.to_string().as_str(), HEIGHT.to_string().as_str()));
    }
}
