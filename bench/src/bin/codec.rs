//! `hamster-codec`: what each quote costs in the two encodings a dashboard can be sent, JSON (text frames, the
//! default) and MessagePack (`hamster.msgpack`): bytes per quote on the wire, the relay's one-off cost of making a
//! frame's MessagePack form from its JSON, and the time to decode 1,000 quotes with the dashboard's own decoding
//! (`serde_json::from_str::<ServerMessage>` for text, `ServerMessage::from_msgpack` for binary, the calls in
//! `web/src/services/connection.rs`), natively.
//!
//! Quotes are shaped like the simulator's (every optional field present, prices rounded to the instrument's
//! decimals, `recv` and `seq` stamped as the relay does) across 200 symbols, batched into `quotes` frames of 1,
//! 10 and 50 quotes. Each timing is the median of `--rounds` rounds of `--quotes` quotes; no timing is asserted.

use std::time::{Duration, Instant};

use clap::Parser;
use hamster_shared::{Quote, ServerMessage, Symbol};

/// Bytes per quote and decode time per 1,000 quotes, JSON vs MessagePack.
#[derive(Debug, Parser)]
#[command(name = "hamster-codec", about)]
struct Args {
    /// Quotes decoded per round.
    #[arg(long, default_value_t = 50_000)]
    quotes: usize,
    /// Rounds per measurement (the median is reported).
    #[arg(long, default_value_t = 21)]
    rounds: usize,
}

/// Tickers like the dashboard's: equities (2 decimals), crypto pairs (2) and forex (5).
fn symbols() -> Vec<(Symbol, f64, i32)> {
    let mut out = Vec::new();
    for i in 0..200u32 {
        let (name, price, decimals) = match i % 4 {
            0 | 1 => (format!("T{i:03}"), 20.0 + f64::from(i) * 3.7, 2),
            2 => (format!("C{i:03}/USD"), 0.5 + f64::from(i) * 311.3, 2),
            _ => (format!("F{i:03}/JPY"), 1.0 + f64::from(i) / 100.0, 5),
        };
        if let Ok(symbol) = Symbol::parse(&name) {
            out.push((symbol, price, decimals));
        }
    }
    out
}

/// A deterministic stream of simulator-shaped quotes.
fn quotes(n: usize) -> Vec<Quote> {
    let symbols = symbols();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 2001) as f64 / 1000.0 - 1.0
    };
    let t0: i64 = 1_767_225_600_000;
    (0..n)
        .map(|i| {
            let (symbol, base, decimals) = &symbols[i % symbols.len()];
            let f = 10f64.powi(*decimals);
            let round = |x: f64| (x * f).round() / f;
            let price = round(base * (1.0 + noise() / 100.0));
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

fn frames(quotes: &[Quote], per_frame: usize) -> Vec<ServerMessage> {
    quotes.chunks(per_frame).map(|c| ServerMessage::Quotes { quotes: c.to_vec() }).collect()
}

/// Medians over `rounds` of the time each of `fs` takes (each handles `quotes` quotes), scaled to 1,000 quotes.
/// They take turns round by round, so that whatever else the machine does weighs on all alike.
fn per_thousand(rounds: usize, quotes: usize, fs: &mut [&mut dyn FnMut() -> usize]) -> Vec<Duration> {
    let mut times = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds.max(1) {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            std::hint::black_box(f());
            t.push(start.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2].mul_f64(1000.0 / quotes.max(1) as f64)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = quotes(args.quotes);
    println!(
        "| quotes per frame | JSON bytes/quote | MessagePack bytes/quote | MessagePack / JSON | relay: JSON → \
         MessagePack per 1,000 quotes | decode JSON per 1,000 quotes | decode MessagePack per 1,000 quotes | \
         MessagePack / JSON |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for per_frame in [1, 10, 50] {
        let messages = frames(&all, per_frame);
        let json: Vec<String> = messages.iter().map(ServerMessage::to_json).collect();
        let packed: Vec<Vec<u8>> = messages.iter().map(ServerMessage::to_msgpack).collect::<Result<_, _>>()?;
        for (j, p) in json.iter().zip(&packed).take(50) {
            let (a, b): (ServerMessage, ServerMessage) = (serde_json::from_str(j)?, ServerMessage::from_msgpack(p)?);
            anyhow::ensure!(a == b, "the two encodings disagree");
        }
        let json_bytes: usize = json.iter().map(String::len).sum();
        let packed_bytes: usize = packed.iter().map(Vec::len).sum();
        let medians = per_thousand(
            args.rounds,
            all.len(),
            &mut [
                // What the relay does once per frame for its MessagePack clients (relay/src/hub/frame.rs).
                &mut || {
                    json.iter()
                        .map(|j| {
                            let mut out = Vec::with_capacity(j.len());
                            let mut de = serde_json::Deserializer::from_str(j);
                            let mut ser = rmp_serde::Serializer::new(&mut out);
                            usize::from(serde_transcode::transcode(&mut de, &mut ser).is_ok()) + out.len()
                        })
                        .sum()
                },
                &mut || json.iter().filter(|j| serde_json::from_str::<ServerMessage>(j).is_ok()).count(),
                &mut || packed.iter().filter(|p| ServerMessage::from_msgpack(p).is_ok()).count(),
            ],
        );
        let n = all.len() as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "| {per_frame} | {:.1} | {:.1} | {:.2} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2} |",
            json_bytes as f64 / n,
            packed_bytes as f64 / n,
            packed_bytes as f64 / json_bytes as f64,
            us(medians[0]),
            us(medians[1]),
            us(medians[2]),
            medians[2].as_secs_f64() / medians[1].as_secs_f64(),
        );
    }
    Ok(())
}
