//! A measurement, not a test (ignored unless asked for): how long the dashboard's decoding takes per 1,000 quotes
//! inside a real browser's wasm, for JSON text frames read by serde's derived reader
//! (`serde_json::from_str::<ServerMessage>`, which copies each message into a tree first) and by
//! `ServerMessage::from_json`, which the connection service calls. (MessagePack was measured here too, slower
//! than JSON; the dashboard no longer links it, docs/benchmarks.md has the figures.) Quotes are
//! shaped like the simulator's, as in `hamster-codec` (bench/src/bin/codec.rs). Run it in release (the
//! dashboard's size-optimised profile) and read the console lines; docs/benchmarks.md has the command.
#![cfg(target_arch = "wasm32")]

use hamster_shared::{Quote, ServerMessage, Symbol};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

fn quotes(n: usize) -> Vec<Quote> {
    let symbols: Vec<(Symbol, f64, i32)> = (0..200u32)
        .filter_map(|i| {
            let (name, price, decimals) = match i % 4 {
                0 | 1 => (format!("T{i:03}"), 20.0 + f64::from(i) * 3.7, 2),
                2 => (format!("C{i:03}/USD"), 0.5 + f64::from(i) * 311.3, 2),
                _ => (format!("F{i:03}/JPY"), 1.0 + f64::from(i) / 100.0, 5),
            };
            Symbol::parse(&name).ok().map(|s| (s, price, decimals))
        })
        .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let t0: i64 = 1_767_225_600_000;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 2001) as f64 / 1000.0 - 1.0;
            let (symbol, base, decimals) = &symbols[i % symbols.len()];
            let f = 10f64.powi(*decimals);
            let round = |x: f64| (x * f).round() / f;
            let price = round(base * (1.0 + noise / 100.0));
            let half = (price * 0.0002).max(1.0 / f);
            let change = round(price - base);
            Quote {
                symbol: symbol.clone(),
                price,
                ts: t0 + i as i64 * 3,
                provider: "sim".into(),
                bid: Some(round(price - half)),
                ask: Some(round(price + half)),
                volume: Some((1_000.0 + i as f64 * 13.0).round()),
                change: Some(change),
                change_pct: Some(((change / base) * 1e6).round() / 1e4),
                recv: Some(t0 + i as i64 * 3 + 1),
                seq: Some(1 + (i / symbols.len()) as u64),
            }
        })
        .collect()
}

/// Medians over `rounds` of the ms each of `fs` takes, per 1,000 of `n` quotes; they take turns round by round so
/// that whatever else the machine does weighs on all alike.
fn per_thousand(rounds: usize, n: usize, fs: &mut [&mut dyn FnMut() -> usize]) -> Vec<f64> {
    let mut times = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            let start = now_ms();
            std::hint::black_box(f());
            t.push(now_ms() - start);
        }
    }
    times
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] * 1000.0 / n as f64
        })
        .collect()
}

#[wasm_bindgen_test]
#[ignore = "a measurement: run with --include-ignored in release"]
fn decode_time_per_thousand_quotes_derived_vs_from_json() {
    let n = 10_000;
    let all = quotes(n);
    for per_frame in [1, 10, 50] {
        let messages: Vec<ServerMessage> =
            all.chunks(per_frame).map(|c| ServerMessage::Quotes { quotes: c.to_vec() }).collect();
        let json: Vec<String> = messages.iter().map(ServerMessage::to_json).collect();
        let medians = per_thousand(
            31,
            n,
            &mut [
                &mut || json.iter().filter(|j| serde_json::from_str::<ServerMessage>(j).is_ok()).count(),
                &mut || json.iter().filter(|j| ServerMessage::from_json(j).is_ok()).count(),
            ],
        );
        console_log!(
            "WASM decode per 1,000 quotes, {per_frame} per frame: derived {:.0} µs, from_json {:.0} µs (ratio {:.2})",
            medians[0] * 1000.0,
            medians[1] * 1000.0,
            medians[1] / medians[0],
        );
        assert_eq!(json.iter().filter(|j| ServerMessage::from_json(j).is_ok()).count(), messages.len());
    }
}
