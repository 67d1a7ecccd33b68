//! An inline SVG sparkline of a row's recent prices, green when the window ends higher than it started, red
//! when lower. The geometry is [`crate::format::sparkline_points`], tested natively.

use yew::prelude::*;

use crate::format::sparkline_points;

const WIDTH: f64 = 96.0;
const HEIGHT: f64 = 24.0;

#[derive(Properties, PartialEq)]
pub struct SparklineProps {
    /// Oldest first.
    pub values: Vec<f64>,
}

#[component]
pub fn Sparkline(props: &SparklineProps) -> Html {
    let points = sparkline_points(&props.values, WIDTH, HEIGHT);
    let trend = match (props.values.first(), props.values.last()) {
        (Some(a), Some(b)) if b > a => "up",
        (Some(a), Some(b)) if b < a => "down",
        _ => "flat",
    };
    html! {
        <svg class={classes!("spark", trend)} viewBox={format!("0 0 {WIDTH} {HEIGHT}")}
            width={WIDTH.to_string()} height={HEIGHT.to_string()} role="img"
            aria-label={format!("trend of the last {} ticks", props.values.len())}>
            <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5"
                stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke" />
        </svg>
    }
}
