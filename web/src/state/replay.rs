//! The replay the page is watching: where the relay's private replay of a recorded range is, and the latest
//! replayed value of each symbol.
//!
//! Replayed quotes and events carry `replay:`-prefixed symbols, so they are kept here, apart from the live rows
//! of the same symbols: a replay never overwrites, flashes or caches a live price. A replay belongs to the
//! socket that started it, so it ends when that socket closes.

use hamster_shared::api::RecordedRange;
use hamster_shared::{Quote, ReplayPhase, Symbol};

/// The provider prefix the relay gives replayed symbols.
pub(crate) const REPLAY_PREFIX: &str = "replay";

/// Whether `symbol` is a replayed one.
pub(crate) fn is_replayed(symbol: &Symbol) -> bool {
    symbol.provider() == Some(REPLAY_PREFIX)
}

/// One replayed symbol's latest value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayRow {
    /// As recorded (without the prefix).
    pub(crate) symbol: String,
    pub(crate) price: f64,
    /// The first price replayed, for the change column.
    pub(crate) first: f64,
    /// The provider's event time of the latest value.
    pub(crate) ts: i64,
}

/// The relay's replay of this page's connection, as its last `replay_state` and quotes tell it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Replay {
    pub(crate) phase: ReplayPhase,
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// Receive time of what was played last.
    pub(crate) position: i64,
    pub(crate) speed: f64,
    /// Quotes and events played so far, as the relay counts them.
    pub(crate) played: u64,
    /// Replayed events seen on this page.
    pub(crate) events: u64,
    /// In order of first appearance.
    pub(crate) rows: Vec<ReplayRow>,
}

impl Replay {
    /// A replay as the relay reports it; values already replayed are kept while it is the same range.
    pub(crate) fn reported(
        previous: Option<Replay>,
        phase: ReplayPhase,
        from: i64,
        to: i64,
        position: i64,
        speed: f64,
        played: u64,
    ) -> Replay {
        let mut replay = previous.filter(|p| p.from == from && p.to == to).unwrap_or(Replay {
            phase,
            from,
            to,
            position,
            speed,
            played,
            events: 0,
            rows: Vec::new(),
        });
        replay.phase = phase;
        replay.position = position;
        replay.speed = speed;
        replay.played = played;
        replay
    }

    /// Takes a replayed quote; the position moves with it between two state reports.
    pub(crate) fn apply_quote(&mut self, quote: &Quote) {
        let symbol = quote.symbol.ticker().to_owned();
        match self.rows.iter_mut().find(|r| r.symbol == symbol) {
            Some(row) => {
                row.price = quote.price;
                row.ts = quote.ts;
            }
            None => self.rows.push(ReplayRow { symbol, price: quote.price, first: quote.price, ts: quote.ts }),
        }
        self.played += 1;
    }

    /// Whether the relay is still playing or holding this replay.
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.phase, ReplayPhase::Playing | ReplayPhase::Paused)
    }

    /// How far through its range the replay is, 0 to 1.
    pub(crate) fn progress(&self) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        ((self.position - self.from) as f64 / span).clamp(0.0, 1.0)
    }

    /// The socket that owned the replay closed: the relay has dropped it.
    pub(crate) fn connection_lost(&mut self) {
        if self.is_active() {
            self.phase = ReplayPhase::Stopped;
        }
    }
}

/// What the replay bar offers: the recorded symbols to play and the span they cover.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) symbols: Vec<String>,
    /// Receive times (ms) of the earliest and latest record of those symbols.
    pub(crate) first: i64,
    pub(crate) last: i64,
    /// Each symbol's recorded span as fractions of `first..last`, for the timeline.
    pub(crate) spans: Vec<(String, f64, f64)>,
}

/// The watched symbols that have recordings (or, when none has, everything recorded), and their span.
pub(crate) fn plan(recorded: &[RecordedRange], watchlist: &[Symbol]) -> Option<Plan> {
    let watched: Vec<&RecordedRange> =
        recorded.iter().filter(|r| watchlist.iter().any(|w| w.as_str() == r.symbol.as_str())).collect();
    let chosen: Vec<&RecordedRange> = if watched.is_empty() { recorded.iter().collect() } else { watched };
    let first = chosen.iter().map(|r| r.first).min()?;
    let last = chosen.iter().map(|r| r.last).max()?;
    let span = (last - first).max(1) as f64;
    Some(Plan {
        symbols: chosen.iter().map(|r| r.symbol.as_str().to_owned()).collect(),
        first,
        last,
        spans: chosen
            .iter()
            .map(|r| (r.symbol.as_str().to_owned(), (r.first - first) as f64 / span, (r.last - first) as f64 / span))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn quote(symbol: &str, price: f64, ts: i64) -> Quote {
        Quote::new(Symbol::parse(symbol).expect("valid"), price, ts, "sim")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn replayed_symbols_are_told_apart_from_live_ones() {
        assert!(is_replayed(&Symbol::parse("replay:BTC/USD").expect("valid")));
        assert!(!is_replayed(&Symbol::parse("BTC/USD").expect("valid")));
        assert!(!is_replayed(&Symbol::parse("sim:BTC/USD").expect("valid")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rows_keep_first_and_latest_values_and_a_new_range_starts_afresh() {
        let mut r = Replay::reported(None, ReplayPhase::Playing, 0, 100, 0, 10.0, 0);
        r.apply_quote(&quote("replay:AAPL", 10.0, 1));
        r.apply_quote(&quote("replay:AAPL", 11.0, 2));
        r.apply_quote(&quote("replay:MSFT", 5.0, 2));
        assert_eq!(r.rows.len(), 2);
        assert_eq!((r.rows[0].symbol.as_str(), r.rows[0].first, r.rows[0].price), ("AAPL", 10.0, 11.0));
        let same = Replay::reported(Some(r.clone()), ReplayPhase::Paused, 0, 100, 50, 10.0, 3);
        assert_eq!(same.rows.len(), 2, "the same range keeps its rows");
        assert!((same.progress() - 0.5).abs() < 1e-9);
        let other = Replay::reported(Some(same), ReplayPhase::Playing, 200, 300, 200, 1.0, 0);
        assert!(other.rows.is_empty(), "another range starts afresh");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_plan_prefers_watched_recordings_and_spans_them() {
        let range = |s: &str, first, last| RecordedRange { symbol: Symbol::parse(s).expect("valid"), first, last };
        let recorded = vec![range("AAPL", 100, 200), range("BTC/USD", 50, 300), range("NEWS", 0, 400)];
        let watched = [Symbol::parse("BTC/USD").expect("valid"), Symbol::parse("AAPL").expect("valid")];
        let p = plan(&recorded, &watched).expect("a plan");
        assert_eq!(p.symbols, ["AAPL", "BTC/USD"]);
        assert_eq!((p.first, p.last), (50, 300));
        assert_eq!(p.spans[0], ("AAPL".to_owned(), 0.2, 0.6));
        let all = plan(&recorded, &[Symbol::parse("MSFT").expect("valid")]).expect("a plan");
        assert_eq!((all.symbols.len(), all.first, all.last), (3, 0, 400), "nothing watched is recorded: offer all");
        assert_eq!(plan(&[], &watched), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_closed_socket_stops_an_active_replay_only() {
        let mut r = Replay::reported(None, ReplayPhase::Playing, 0, 100, 0, 1.0, 0);
        r.connection_lost();
        assert_eq!(r.phase, ReplayPhase::Stopped);
        let mut ended = Replay::reported(None, ReplayPhase::Ended, 0, 100, 100, 1.0, 9);
        ended.connection_lost();
        assert_eq!(ended.phase, ReplayPhase::Ended);
    }
}
