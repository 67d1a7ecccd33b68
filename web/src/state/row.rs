//! One watchlist row: the last quote of a symbol, which way it last moved, its sparkline, whether the value is
//! cached or refused, and the events of a channel row.
//!
//! Owns the rules of a single row (which quote is newer, when a flash is due, how the sparkline is bounded) so
//! the reducer only decides which rows an event touches. Rows sit behind `Rc` in the model: the reducer copies
//! a row only when it changes it, and the row components compare props by pointer.

use crate::format::Fixed;
use std::collections::VecDeque;

use hamster_shared::api::Tick;
use hamster_shared::{ErrorCode, Quote, Symbol};

/// Points kept per sparkline.
pub(crate) const SPARK_POINTS: usize = 60;
/// A row with no fresh value for this long is dimmed as stale.
pub(crate) const STALE_AFTER_MS: i64 = 15_000;
/// The shortest time without a newer value after which a row counts as stale, however fast it usually ticks.
pub(crate) const MIN_STALE_MS: i64 = 3_000;
/// Usual intervals without a newer value before a row counts as stale.
const STALE_INTERVALS: f64 = 5.0;
/// Shortest time between two flashes of one row. A flash lights the price for under half a second; a row ticking
/// faster would otherwise stay lit, which reads as a constant tint, and restyle its cell with every tick.
pub(crate) const FLASH_GAP_MS: i64 = 1_000;
/// Characters of an event payload shown in its row.
pub(crate) const EVENT_PREVIEW_CHARS: usize = 160;

/// Which way the last price change went; drives the green/red flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Direction {
    Up,
    Down,
    #[default]
    Flat,
}

/// A relay's refusal of a symbol, shown in its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// The relay's closest matches ("did you mean"), best first, as symbols to subscribe; the row offers each as
    /// a replacement.
    pub(crate) suggestions: Vec<Symbol>,
}

/// The latest message on a channel row (a non-price feed such as an options-flow alert stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelEvent {
    pub(crate) ts: i64,
    /// The payload as compact JSON, cut to [`EVENT_PREVIEW_CHARS`].
    pub(crate) preview: String,
}

/// One point of a sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SparkPoint {
    pub(crate) ts: i64,
    pub(crate) price: f64,
}

/// Everything one watchlist row shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub(crate) symbol: Symbol,
    pub quote: Option<Quote>,
    /// The direction of the latest flash.
    pub(crate) direction: Direction,
    /// Bumped on every flash (a price change at least [`FLASH_GAP_MS`] after the last flash) so the row can
    /// restart its flash animation.
    pub(crate) flash_seq: u64,
    /// Local time of the latest flash.
    flashed_ms: Option<i64>,
    /// Local time the last fresh value arrived (`None` for values restored from the cache).
    received_ms: Option<i64>,
    /// This symbol's usual time between values (ms, a moving average of the gaps between their `ts`).
    pub(crate) interval_ms: Option<f64>,
    /// The value was restored from localStorage and nothing fresh has arrived since.
    pub cached: bool,
    pub(crate) refusal: Option<Refusal>,
    /// The relay reported that the provider has sent nothing for this many ms (`no_data`); cleared by data.
    pub(crate) no_data_ms: Option<u64>,
    /// Oldest first, at most [`SPARK_POINTS`].
    pub(crate) spark: VecDeque<SparkPoint>,
    /// Events received when the symbol is a channel rather than an instrument.
    pub(crate) events: u64,
    pub(crate) last_event: Option<ChannelEvent>,
}

impl Row {
    pub(crate) fn new(symbol: Symbol) -> Row {
        Row {
            symbol,
            quote: None,
            direction: Direction::Flat,
            flash_seq: 0,
            flashed_ms: None,
            received_ms: None,
            interval_ms: None,
            cached: false,
            refusal: None,
            no_data_ms: None,
            spark: VecDeque::new(),
            events: 0,
            last_event: None,
        }
    }

    /// How long a value stays fresh: [`STALE_INTERVALS`] of the symbol's usual intervals, between
    /// [`MIN_STALE_MS`] and [`STALE_AFTER_MS`] (the latter until the interval is known).
    pub(crate) fn stale_after_ms(&self) -> i64 {
        self.interval_ms.map_or(STALE_AFTER_MS, |i| ((i * STALE_INTERVALS) as i64).clamp(MIN_STALE_MS, STALE_AFTER_MS))
    }

    /// The row's hover text: which provider the value came from, the value's own time (so its age can be read
    /// off the clock), and how often this symbol usually updates, against which it is judged stale.
    pub(crate) fn provenance(&self, offset_minutes: i64) -> Option<String> {
        let quote = self.quote.as_ref()?;
        let rate = match self.interval_ms {
            Some(ms) => format!(
                "usually every {} s, stale after {} s",
                Fixed(ms / 1000.0, 1),
                Fixed(self.stale_after_ms() as f64 / 1000.0, 1)
            ),
            None => {
                format!(
                    "usual update rate not yet known, stale after {} s",
                    Fixed(self.stale_after_ms() as f64 / 1000.0, 1)
                )
            }
        };
        let cached = if self.cached { " (restored from this browser's cache)" } else { "" };
        Some(format!(
            "{} from {} as of {}{cached}; {rate}",
            self.symbol,
            quote.provider,
            crate::format::clock(quote.ts, offset_minutes)
        ))
    }

    /// The value is older than [`Row::stale_after_ms`] (or only a cached one). Judged by the value's own time,
    /// so a value that was already old when it arrived (a relay's cache of a symbol that stopped trading) is
    /// shown as old at once, and by its arrival, so a provider clock ahead of ours cannot keep a silent row fresh.
    pub(crate) fn is_stale(&self, now_ms: i64) -> bool {
        let Some(quote) = &self.quote else {
            return false;
        };
        let limit = self.stale_after_ms();
        self.cached || now_ms - quote.ts > limit || self.received_ms.is_none_or(|t| now_ms - t > limit)
    }

    /// Shows a value restored from the cache, marked as such until a fresh one arrives.
    pub(crate) fn restore(&mut self, quote: Quote) {
        self.push_spark(SparkPoint { ts: quote.ts, price: quote.price });
        self.quote = Some(quote);
        self.cached = true;
    }

    /// Whether `quote` would change the row. Asked before the row is copied, so a repeat costs nothing.
    pub(crate) fn takes(&self, quote: &Quote) -> bool {
        match (&self.quote, self.cached) {
            // Out-of-order or repeated values (a REST poll racing the stream) must not move the price back. A
            // cached value gives way to any fresh one: a relay that restarted may hold an older value than our
            // cache, and it is still the live truth.
            (Some(old), false) => !(quote.ts < old.ts || (quote.ts == old.ts && quote == old)),
            _ => true,
        }
    }

    /// Shows a fresh value received at `now_ms`, flashing its direction if a flash is due.
    pub(crate) fn apply_quote(&mut self, quote: Quote, now_ms: i64) {
        self.no_data_ms = None;
        let moved = match &self.quote {
            Some(old) if quote.price > old.price => Direction::Up,
            Some(old) if quote.price < old.price => Direction::Down,
            _ => Direction::Flat,
        };
        let flash_due = self.flashed_ms.is_none_or(|t| now_ms - t >= FLASH_GAP_MS);
        if moved != Direction::Flat && flash_due {
            self.direction = moved;
            self.flash_seq += 1;
            self.flashed_ms = Some(now_ms);
        }
        if let Some(old) = self.quote.as_ref().filter(|_| !self.cached) {
            let gap = (quote.ts - old.ts) as f64;
            if gap > 0.0 {
                // A moving average over about ten values: steady enough to ignore one late tick, quick enough to
                // follow a symbol that speeds up.
                self.interval_ms = Some(self.interval_ms.map_or(gap, |i| i + (gap - i) / 10.0));
            }
        }
        self.push_spark(SparkPoint { ts: quote.ts, price: quote.price });
        self.quote = Some(quote);
        self.cached = false;
        self.received_ms = Some(now_ms);
    }

    /// Counts an event on a channel row and keeps a preview of it. Returns whether it was the first one.
    pub(crate) fn apply_event(&mut self, payload: &serde_json::Value, ts: i64, now_ms: i64) -> bool {
        self.events += 1;
        self.received_ms = Some(now_ms);
        self.last_event = Some(ChannelEvent { ts, preview: preview(payload) });
        self.events == 1
    }

    /// Seeds the sparkline with recorded ticks (oldest first), keeping live points newer than them.
    pub(crate) fn seed_history(&mut self, ticks: &[Tick]) {
        let Some(last_hist) = ticks.last().map(|t| t.ts) else {
            return;
        };
        let live: Vec<SparkPoint> = self.spark.iter().copied().filter(|p| p.ts > last_hist).collect();
        let skip = ticks.len().saturating_sub(SPARK_POINTS);
        self.spark = ticks[skip..].iter().map(|t| SparkPoint { ts: t.ts, price: t.price }).collect();
        for p in live {
            self.push_spark(p);
        }
    }

    fn push_spark(&mut self, point: SparkPoint) {
        match self.spark.back_mut() {
            Some(last) if last.ts > point.ts => return,
            Some(last) if last.ts == point.ts => *last = point,
            _ => self.spark.push_back(point),
        }
        while self.spark.len() > SPARK_POINTS {
            self.spark.pop_front();
        }
    }
}

/// Compact JSON of an event payload, cut at a character boundary.
fn preview(payload: &serde_json::Value) -> String {
    let text = payload.to_string();
    match text.char_indices().nth(EVENT_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
