//! How numbers and times are written on screen, and how typed numbers are read ([`number`]). Pure functions,
//! shared by the components and tested natively. Decimals come from [`hamster_shared::AssetClass::decimals`] so
//! the relay and the dashboard agree on them.
//!
//! Floats are written through [`Fixed`] (a set number of decimals) and [`Num`] (shortest form), never through
//! `f64`'s own `Display`: that one carries core's exact float formatter (Grisu with a Dragon4 fallback on big
//! integers, about 12 KB of the page's wasm), while [`Fixed`] needs integer arithmetic only and [`Num`] uses the
//! shortest-form writer serde_json links anyway.

use std::fmt::{self, Write as _};

use hamster_shared::Symbol;

/// `x` with `decimals` digits after the point: what `format!("{x:.decimals$}")` writes (`{:+}` adds the sign),
/// except that a value exactly halfway rounds away from zero rather than to even, and that past 2^53 after
/// scaling (a price over 90 million at 8 decimals) the last digits are rounded rather than the binary value's
/// own. Beyond 10^18 after scaling (no price or quantity) the shortest form is written instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed(pub(crate) f64, pub(crate) usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(x, decimals) = *self;
        let decimals = decimals.min(12);
        let scale = 10u64.pow(decimals as u32);
        let scaled = (x.abs() * scale as f64).round();
        if !scaled.is_finite() || scaled >= 1e18 {
            return Num(x).fmt(f);
        }
        let sign = if x.is_sign_negative() {
            "-"
        } else if f.sign_plus() {
            "+"
        } else {
            ""
        };
        // In range by the check above: the cast cannot saturate. (u64, not u128: u128's formatter would be one
        // more piece of code in the page.)
        let scaled = scaled as u64;
        let (int, frac) = (scaled / scale, scaled % scale);
        if decimals == 0 {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{frac:0decimals$}")
        }
    }
}

/// `x` in its shortest form that reads back as the same number: `67012.35`, `0.5`, `3`; very large or small
/// magnitudes with an exponent (`1e21`), which `Number()` and `str::parse` both read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Num(pub(crate) f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            f.write_str("NaN")
        } else if x.is_infinite() {
            f.write_str(if x > 0.0 { "inf" } else { "-inf" })
        } else if x.fract() == 0.0 && x.abs() < 1e15 {
            // A whole number as an integer (`3`, not zmij's `3.0`), as `f64`'s Display writes it.
            write!(f, "{}", x as i64)
        } else {
            f.write_str(zmij::Buffer::new().format_finite(x))
        }
    }
}

/// Decimals for a price of `symbol` at this magnitude.
fn price_decimals(symbol: &Symbol, price: f64) -> usize {
    symbol.asset_class().decimals(symbol.ticker(), price) as usize
}

/// A price with the decimals that fit its asset and thousands separators: `67,012.35`, `1.08345`.
pub(crate) fn price(symbol: &Symbol, price: f64) -> String {
    if !price.is_finite() {
        return "—".into();
    }
    group_thousands(&Fixed(price, price_decimals(symbol, price)).to_string())
}

/// An absolute change, signed, with the decimals of the price it belongs to: `+12.50`, `-0.00120`.
pub(crate) fn change(symbol: &Symbol, change: f64, price: f64) -> String {
    if !change.is_finite() {
        return "—".into();
    }
    // `+ 0.0` turns -0.0 into 0.0 so an unchanged price does not read "-0.00".
    let text = format!("{:+}", Fixed(change + 0.0, price_decimals(symbol, price)));
    group_thousands(&text)
}

/// A percentage change (the protocol sends percent units, e.g. `1.25` for +1.25 %): `+1.25%`.
pub(crate) fn percent(pct: f64) -> String {
    if !pct.is_finite() {
        return "—".into();
    }
    format!("{:+}%", Fixed(round_to(pct, 2) + 0.0, 2))
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `up`, `down` or nothing for a formatted signed number, judged by what is shown: a change that rounds to
/// zero is neither green nor red.
pub(crate) fn trend(formatted: &str) -> Option<&'static str> {
    if !formatted.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        return None;
    }
    match formatted.as_bytes().first() {
        Some(b'+') => Some("up"),
        Some(b'-') => Some("down"),
        _ => None,
    }
}

/// Compact volume: `950`, `12.3K`, `4.56M`, `1.20B`.
pub(crate) fn volume(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "—".into();
    }
    match v {
        v if v >= 1e9 => format!("{}B", Fixed(v / 1e9, 2)),
        v if v >= 1e6 => format!("{}M", Fixed(v / 1e6, 2)),
        v if v >= 1e3 => format!("{}K", Fixed(v / 1e3, 1)),
        v if v.fract() == 0.0 => Fixed(v, 0).to_string(),
        v => Fixed(v, 2).to_string(),
    }
}

/// `HH:MM:SS` of an epoch-ms time in a zone `offset_minutes` behind UTC (JavaScript's `getTimezoneOffset`
/// convention: UTC+2 is -120).
pub(crate) fn clock(ts_ms: i64, offset_minutes: i64) -> String {
    let local_s = ts_ms.div_euclid(1000) - offset_minutes * 60;
    let day_s = local_s.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day_s / 3600, day_s % 3600 / 60, day_s % 60)
}

/// Milliseconds as a short human duration: `850 ms`, `2.4 s`.
pub(crate) fn millis(ms: f64) -> String {
    if !ms.is_finite() {
        return "—".into();
    }
    if ms < 1000.0 {
        format!("{} ms", Fixed(ms, 0))
    } else {
        format!("{} s", Fixed(ms / 1000.0, 1))
    }
}

/// Inserts `,` every three digits of the integer part of a formatted number (sign and fraction untouched).
fn group_thousands(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix(['-', '+']) {
        Some(rest) => (&number[..1], rest),
        None => ("", number),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut grouped = String::with_capacity(number.len() + int.len() / 3);
    grouped.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if let Some(frac) = frac {
        grouped.push('.');
        grouped.push_str(frac);
    }
    grouped
}

/// SVG `points` for a sparkline of `values` in a `width`×`height` box (y grows downwards, 1px padding so the
/// stroke is not clipped). Fewer than two values draw nothing; a flat series draws a line through the middle.
pub(crate) fn sparkline_points(values: &[f64], width: f64, height: f64) -> String {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.len() < 2 {
        return String::new();
    }
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let pad = 1.0;
    let span = max - min;
    let step = width / (values.len() - 1) as f64;
    let mut out = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        let y = if span > 0.0 { pad + (max - v) / span * (height - 2.0 * pad) } else { height / 2.0 };
        if i > 0 {
            out.push(' ');
        }
        // Written in place: a `format!` per point would allocate 60 strings per redraw.
        let _ = write!(out, "{},{}", Fixed(i as f64 * step, 1), Fixed(y, 1));
    }
    out
}

/// A finite number as typed, or `None`: what `str::parse::<f64>` reads for decimals (`12`, `-0.5`, `.5`, `5.`,
/// `+2`, `007`, `1e3`), without its `inf` and `NaN`. It is read by serde_json's number parser, which the page links
/// anyway: `str::parse::<f64>` would link core's float parser and its tables (about 10 KB of the gzipped wasm).
/// Results equal `str::parse`'s for up to 15 significant digits; beyond, serde_json may differ in the last bit.
pub(crate) fn number(text: &str) -> Option<f64> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !digits(int) || !digits(frac) || int.is_empty() && frac.is_empty() {
        return None;
    }
    // JSON's spelling: no leading zeros, a digit on both sides of the point, an exponent with digits.
    let int = match int.trim_start_matches('0') {
        "" => "0",
        int => int,
    };
    let mut json = String::with_capacity(text.len() + 2);
    if negative {
        json.push('-');
    }
    json.push_str(int);
    if !frac.is_empty() {
        json.push('.');
        json.push_str(frac);
    }
    if let Some(exponent) = exponent {
        let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if unsigned.is_empty() || !digits(unsigned) {
            return None;
        }
        json.push('e');
        json.push_str(exponent);
    }
    serde_json::from_str::<f64>(&json).ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_writes_what_std_writes_for_a_given_number_of_decimals() {
        // A spread of magnitudes, signs and fractions, none exactly halfway at the chosen decimals (there std
        // rounds to even and Fixed away from zero).
        let mut x = 0.000_123_456_789_f64;
        let mut values = vec![0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 2.675_000_1, 1e-9, 123_456_789.987_654_3];
        while x < 1e13 {
            values.extend([x, -x, x * 1.7, x * 3.3]);
            x *= 7.1;
        }
        for v in values {
            for d in 0..=8 {
                let ours = Fixed(v, d).to_string();
                let std = format!("{v:.d$}");
                // Only a value that is exactly halfway after scaling may differ, in its last digit; and past 2^53
                // the scaled value has no exact integer part (std then writes the binary value's own digits,
                // which are as far from the number meant as ours).
                let scaled = v.abs() * 10f64.powi(d as i32);
                if (scaled.fract() - 0.5).abs() < 1e-6 || scaled >= 9e15 {
                    continue;
                }
                assert_eq!(ours, std, "{v} to {d} decimals");
                assert_eq!(format!("{:+}", Fixed(v, d)), format!("{v:+.d$}"), "{v} to {d} decimals, signed");
            }
        }
        assert_eq!(Fixed(f64::NAN, 2).to_string(), "NaN");
        assert_eq!(Fixed(1e40, 2).to_string(), Num(1e40).to_string());
        assert_eq!(Fixed(1e17, 2).to_string(), Num(1e17).to_string());
        assert_eq!(Fixed(0.125, 2).to_string(), "0.13", "halfway rounds away from zero");
    }

    #[test]
    fn num_is_the_shortest_text_that_reads_back_as_the_number() {
        for v in [0.0, 3.0, -3.0, 0.1, 67_012.35, 1.083_45, -0.000_12, 1e21, 1.5e-7, 123_456_789_012_345.6, 1e15] {
            let text = Num(v).to_string();
            assert_eq!(text.parse::<f64>().ok(), Some(v), "{text}");
            if v.abs() < 1e15 && v.abs() >= 1e-4 {
                assert_eq!(text, v.to_string(), "as std writes it");
            }
        }
        assert_eq!(Num(f64::INFINITY).to_string(), "inf");
    }

    #[test]
    fn typed_numbers_read_as_str_parse_reads_them() {
        for text in [
            "0",
            "12",
            "-0.5",
            ".5",
            "5.",
            "+2",
            "-.25",
            "007",
            "0.1",
            "201.5",
            "67000.25",
            "1e3",
            "1E-3",
            "2.5e+2",
            "-0",
            "1200000",
            "0.00012",
            "123456789.123456",
            "1e05",
        ] {
            assert_eq!(number(text), text.parse::<f64>().ok(), "{text}");
        }
        for text in [
            "", " 1", "1 ", "abc", "1.2.3", "--1", "+-1", "e5", ".", "-", "1e", "1e+", "inf", "NaN", "1e400", "0x10",
            "1_000",
        ] {
            assert_eq!(number(text), None, "{text:?}");
        }
    }
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid test symbol")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn prices_use_asset_decimals() {
        assert_eq!(price(&sym("BTC/USD"), 67012.345), "67,012.35");
        assert_eq!(price(&sym("EUR/USD"), 1.083456), "1.08346");
        assert_eq!(price(&sym("USD/JPY"), 151.2346), "151.235");
        assert_eq!(price(&sym("AAPL"), 189.5), "189.50");
        assert_eq!(price(&sym("DOGE/USD"), 0.1234567), "0.123457");
        assert_eq!(price(&sym("SPY"), 1234567.0), "1,234,567.00");
        assert_eq!(price(&sym("AAPL"), f64::NAN), "—");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn changes_are_signed() {
        assert_eq!(change(&sym("AAPL"), 1.5, 190.0), "+1.50");
        assert_eq!(change(&sym("AAPL"), -1234.5, 190.0), "-1,234.50");
        assert_eq!(change(&sym("AAPL"), -0.0, 190.0), "+0.00");
        assert_eq!(percent(1.2345), "+1.23%");
        assert_eq!(percent(-0.004), "+0.00%");
        assert_eq!(percent(-0.5), "-0.50%");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn trend_follows_what_is_shown() {
        assert_eq!(trend("+0.00%"), None);
        assert_eq!(trend("+0.01%"), Some("up"));
        assert_eq!(trend("-1,000.00"), Some("down"));
        assert_eq!(trend("—"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn volumes_are_compact() {
        assert_eq!(volume(950.0), "950");
        assert_eq!(volume(12_345.0), "12.3K");
        assert_eq!(volume(4_560_000.0), "4.56M");
        assert_eq!(volume(1.2e9), "1.20B");
        assert_eq!(volume(0.5), "0.50");
        assert_eq!(volume(-1.0), "—");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn clock_applies_offset() {
        // 2023-11-14T22:13:20Z
        assert_eq!(clock(1_700_000_000_000, 0), "22:13:20");
        assert_eq!(clock(1_700_000_000_000, -120), "00:13:20");
        assert_eq!(clock(1_700_000_000_999, 300), "17:13:20");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn durations() {
        assert_eq!(millis(12.4), "12 ms");
        assert_eq!(millis(2400.0), "2.4 s");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sparkline_scales_into_the_box() {
        assert_eq!(sparkline_points(&[1.0], 100.0, 20.0), "");
        assert_eq!(sparkline_points(&[1.0, 2.0, 3.0], 100.0, 20.0), "0.0,19.0 50.0,10.0 100.0,1.0");
        assert_eq!(sparkline_points(&[5.0, 5.0], 10.0, 20.0), "0.0,10.0 10.0,10.0");
    }
}
