//! Price alerts: what the user asked to be told about, evaluated on every quote the page applies (in the reducer,
//! so a throttled render or a background tab never skips a crossing), and the log of those that fired.
//!
//! Conditions are edge-triggered: "above 100" fires when a price at or over 100 follows one under it (or is the
//! first price seen after the alert was made), so a price hovering over the level does not fire on every tick.
//! An alert fires once and is done, or every time with a cool-down; it may expire. Pure data: the component plays
//! the sound and shows the notification, and persistence saves the definitions.
//!
//! Indicator conditions ("signals": RSI crossing a level, a fast EMA crossing a slow one, StochRSI's %K crossing
//! %D) are read on a timeframe's candles, which this module keeps per symbol and timeframe: seeded from the
//! relay's history when the page fetches it ([`Alerts::seed`]) and moved by every tick, the last candle's close
//! being the live price. A signal fires on the tick where the reading crosses, compared with the reading at the
//! previous tick, so a crossing inside a candle is seen when it happens, not when the candle closes.

use crate::format::Num;
use std::collections::{HashMap, VecDeque};

use hamster_shared::api::{Candle, Timeframe};
use hamster_shared::{Quote, Symbol};
use serde::{Deserialize, Serialize};

use crate::chart::candles::Series;
use crate::chart::indicators;
use crate::json_object::json_object;

/// Candles kept per symbol and timeframe for indicator alerts: enough for StochRSI(14,14,3,3) and a 50-period EMA
/// to settle.
const SIGNAL_CANDLES: usize = 300;
/// The RSI period signals use (the chart's).
pub(crate) const RSI_PERIOD: usize = 14;

/// Fired alerts kept in the log.
pub(crate) const LOG_CAPACITY: usize = 100;
/// How long a fired alert stays on screen as a toast.
pub(crate) const TOAST_MS: i64 = 8_000;

/// What an alert waits for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "ConditionWire")]
pub enum Condition {
    /// The price reaches `level` from below.
    Above { level: f64 },
    /// The price reaches `level` from above.
    Below { level: f64 },
    /// The price passes `level` either way.
    Crosses { level: f64 },
    /// The price moved `pct` percent (either way) within `window_ms`.
    MovePct { pct: f64, window_ms: i64 },
    /// An indicator signal on the candles of `tf`.
    Indicator { tf: Timeframe, signal: Signal },
}

/// An indicator crossing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case", try_from = "SignalWire")]
pub enum Signal {
    /// RSI(14) rises through `level` (70: overbought).
    RsiAbove { level: f64 },
    /// RSI(14) falls through `level` (30: oversold).
    RsiBelow { level: f64 },
    /// EMA(`fast`) crosses EMA(`slow`) upwards (`up`) or downwards.
    EmaCross { fast: usize, slow: usize, up: bool },
    /// StochRSI(14,14,3,3) %K crosses %D upwards or downwards.
    StochCross { up: bool },
}

impl Signal {
    /// The reading whose crossing is the signal: RSI itself, or fast − slow, or %K − %D.
    fn read(self, closes: &[f64]) -> Option<f64> {
        match self {
            Signal::RsiAbove { .. } | Signal::RsiBelow { .. } => {
                indicators::rsi(closes, RSI_PERIOD).last().copied().flatten()
            }
            Signal::EmaCross { fast, slow, .. } => {
                let f = indicators::ema(closes, fast).last().copied().flatten()?;
                let s = indicators::ema(closes, slow).last().copied().flatten()?;
                Some(f - s)
            }
            Signal::StochCross { .. } => {
                let last = indicators::stoch_rsi(closes, RSI_PERIOD, RSI_PERIOD, 3, 3).last().copied()?;
                Some(last.k? - last.d?)
            }
        }
    }

    /// Whether going from `before` to `now` is the crossing.
    fn crossed(self, before: f64, now: f64) -> bool {
        match self {
            Signal::RsiAbove { level } => before < level && now >= level,
            Signal::RsiBelow { level } => before > level && now <= level,
            Signal::EmaCross { up: true, .. } | Signal::StochCross { up: true } => before <= 0.0 && now > 0.0,
            Signal::EmaCross { up: false, .. } | Signal::StochCross { up: false } => before >= 0.0 && now < 0.0,
        }
    }

    fn describe(self) -> String {
        match self {
            Signal::RsiAbove { level } => format!("RSI({RSI_PERIOD}) rose through {}", Num(level)),
            Signal::RsiBelow { level } => format!("RSI({RSI_PERIOD}) fell through {}", Num(level)),
            Signal::EmaCross { fast, slow, up } => {
                format!("EMA({fast}) crossed {} EMA({slow})", if up { "above" } else { "below" })
            }
            Signal::StochCross { up } => format!("StochRSI %K crossed {} %D", if up { "above" } else { "below" }),
        }
    }
}

/// Whether an alert fires once or every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "RepeatWire")]
pub enum Repeat {
    Once,
    /// Every time, but not again within `cooldown_ms` of the last time.
    Every {
        cooldown_ms: i64,
    },
}

// Reading the three tagged enums above. serde's derive reads an internally tagged enum by copying the object
// into a generic tree first, which costs a second deserializer of every field type in the wasm; these flat
// structs read the same saved JSON (the tag beside the variant's fields, extra fields ignored) in one pass.

/// Every field of every [`Condition`], beside its `kind`.
struct ConditionWire {
    kind: String,
    level: Option<f64>,
    pct: Option<f64>,
    window_ms: Option<i64>,
    tf: Option<Timeframe>,
    signal: Option<Signal>,
}

json_object!(ConditionWire, "an alert condition", required { kind: String } optional {
    level: Option<f64>, pct: Option<f64>, window_ms: Option<i64>, tf: Option<Timeframe>, signal: Option<Signal>,
});

impl TryFrom<ConditionWire> for Condition {
    type Error = String;

    fn try_from(w: ConditionWire) -> Result<Condition, String> {
        let level = || w.level.ok_or("missing field `level`");
        Ok(match w.kind.as_str() {
            "above" => Condition::Above { level: level()? },
            "below" => Condition::Below { level: level()? },
            "crosses" => Condition::Crosses { level: level()? },
            "move_pct" => Condition::MovePct {
                pct: w.pct.ok_or("missing field `pct`")?,
                window_ms: w.window_ms.ok_or("missing field `window_ms`")?,
            },
            "indicator" => Condition::Indicator {
                tf: w.tf.ok_or("missing field `tf`")?,
                signal: w.signal.ok_or("missing field `signal`")?,
            },
            other => return Err(format!("unknown alert condition `{other}`")),
        })
    }
}

/// Every field of every [`Signal`], beside its `signal`.
struct SignalWire {
    signal: String,
    level: Option<f64>,
    fast: Option<usize>,
    slow: Option<usize>,
    up: Option<bool>,
}

json_object!(SignalWire, "an indicator signal", required { signal: String } optional {
    level: Option<f64>, fast: Option<usize>, slow: Option<usize>, up: Option<bool>,
});

impl TryFrom<SignalWire> for Signal {
    type Error = String;

    fn try_from(w: SignalWire) -> Result<Signal, String> {
        let level = || w.level.ok_or("missing field `level`");
        let up = || w.up.ok_or("missing field `up`");
        Ok(match w.signal.as_str() {
            "rsi_above" => Signal::RsiAbove { level: level()? },
            "rsi_below" => Signal::RsiBelow { level: level()? },
            "ema_cross" => Signal::EmaCross {
                fast: w.fast.ok_or("missing field `fast`")?,
                slow: w.slow.ok_or("missing field `slow`")?,
                up: up()?,
            },
            "stoch_cross" => Signal::StochCross { up: up()? },
            other => return Err(format!("unknown indicator signal `{other}`")),
        })
    }
}

/// [`Repeat`]'s `kind` and cool-down.
struct RepeatWire {
    kind: String,
    cooldown_ms: Option<i64>,
}

json_object!(RepeatWire, "an alert repeat", required { kind: String } optional { cooldown_ms: Option<i64> });

impl TryFrom<RepeatWire> for Repeat {
    type Error = String;

    fn try_from(w: RepeatWire) -> Result<Repeat, String> {
        match w.kind.as_str() {
            "once" => Ok(Repeat::Once),
            "every" => Ok(Repeat::Every { cooldown_ms: w.cooldown_ms.ok_or("missing field `cooldown_ms`")? }),
            other => Err(format!("unknown alert repeat `{other}`")),
        }
    }
}

/// One alert as the user made it (what is saved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub(crate) id: u64,
    /// The symbol it watches; `None` watches every symbol of the watchlist (each on its own prices, so it suits
    /// % moves and indicator signals; a once alert is done when the first symbol fires it).
    #[serde(default)]
    pub(crate) symbol: Option<Symbol>,
    pub(crate) condition: Condition,
    pub(crate) repeat: Repeat,
    /// Gone after this time (ms), if set.
    #[serde(default)]
    pub(crate) expires_ms: Option<i64>,
    #[serde(default)]
    pub(crate) last_fired_ms: Option<i64>,
}

json_object!(Alert, "an alert", required { id: u64, condition: Condition, repeat: Repeat } optional {
    symbol: Option<Symbol>, expires_ms: Option<i64>, last_fired_ms: Option<i64>,
});

/// One time an alert fired.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fired {
    /// Fired in another tab of the browser (the one that evaluates alerts): logged here, but the toast, sound
    /// and notification were that tab's.
    pub(crate) remote: bool,
    pub(crate) seq: u64,
    pub(crate) alert_id: u64,
    pub(crate) symbol: Symbol,
    /// What happened, e.g. "BTC/USD above 67,500: 67,512.3".
    pub(crate) text: String,
    /// The triggering tick.
    pub(crate) price: f64,
    pub(crate) ts: i64,
    /// When the page saw it.
    pub(crate) at_ms: i64,
}

impl Alert {
    /// Whether it watches `symbol`.
    pub(crate) fn applies(&self, symbol: &Symbol) -> bool {
        self.symbol.as_ref().is_none_or(|s| s == symbol)
    }

    /// What it watches, in words.
    pub(crate) fn scope(&self) -> &str {
        self.symbol.as_ref().map_or(WHOLE_WATCHLIST, Symbol::as_str)
    }
}

/// How an alert on every watchlist symbol names what it watches.
pub(crate) const WHOLE_WATCHLIST: &str = "Any watchlist symbol";

/// Every alert, the log, and what evaluation needs to remember between ticks.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Alerts {
    pub(crate) list: Vec<Alert>,
    pub(crate) log: VecDeque<Fired>,
    /// Numbers fired alerts; the newest one's is what the component compares to play its sound once.
    pub(crate) fired_seq: u64,
    next_id: u64,
    /// The previous price per alerted symbol, for crossings.
    previous: HashMap<Symbol, f64>,
    /// Recent (ts, price) per symbol with a % move alert, oldest first.
    window: HashMap<Symbol, VecDeque<(i64, f64)>>,
    /// Candles per symbol and timeframe with an indicator alert.
    series: HashMap<(Symbol, Timeframe), Series>,
    /// Each indicator alert's reading at the previous tick.
    readings: HashMap<u64, f64>,
    /// Another tab of the browser evaluates the alerts and delivers them (this one is a follower): quotes still
    /// keep the previous price and the windows current, so this tab judges crossings right once it leads, but
    /// nothing fires here.
    pub(crate) evaluated_elsewhere: bool,
}

/// A fired alert as one tab tells the others (over the tabs' channel).
#[derive(Debug, Clone, PartialEq)]
pub struct FiredElsewhere {
    pub(crate) alert_id: u64,
    pub(crate) symbol: Symbol,
    pub(crate) text: String,
    pub(crate) price: f64,
    pub(crate) ts: i64,
    pub(crate) at_ms: i64,
}

impl Alerts {
    /// Alerts as saved.
    pub(crate) fn restored(list: Vec<Alert>) -> Alerts {
        let next_id = list.iter().map(|a| a.id).max().unwrap_or(0);
        Alerts { list, next_id, ..Alerts::default() }
    }

    /// Adds an alert on one symbol, or on the whole watchlist with `None`; returns its id.
    pub(crate) fn add(
        &mut self,
        symbol: impl Into<Option<Symbol>>,
        condition: Condition,
        repeat: Repeat,
        expires_ms: Option<i64>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.list.push(Alert { id, symbol: symbol.into(), condition, repeat, expires_ms, last_fired_ms: None });
        id
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.list.retain(|a| a.id != id);
    }

    /// The symbols and timeframes indicator alerts read, for the page to seed from history.
    pub(crate) fn signal_series(&self) -> Vec<(Symbol, Timeframe)> {
        let mut keys: Vec<(Symbol, Timeframe)> = self
            .list
            .iter()
            .filter_map(|a| match a.condition {
                Condition::Indicator { tf, .. } => Some((a.symbol.clone()?, tf)),
                _ => None,
            })
            .collect();
        crate::sort::sort_by(&mut keys, |a, b| (a.0.as_str(), a.1.ms()).cmp(&(b.0.as_str(), b.1.ms())));
        keys.dedup();
        keys
    }

    /// Takes the relay's candles of `symbol` on `tf` (oldest first) as the start of that series. The readings of
    /// its alerts start over: the jump from a few live candles to a full history is not a crossing.
    pub(crate) fn seed(&mut self, symbol: Symbol, tf: Timeframe, candles: Vec<Candle>) {
        let seeded = Series::new(tf, candles, SIGNAL_CANDLES);
        let key = (symbol.clone(), tf);
        match self.series.get(&key) {
            // Live ticks already beyond the history's end are newer: keep them on top of the seed.
            Some(live) if live.candles.len() >= seeded.candles.len() => return,
            _ => {}
        }
        let mut series = seeded;
        if let Some(live) = self.series.get(&key) {
            for c in &live.candles {
                if series.candles.last().is_none_or(|last| c.start > last.start) {
                    series.candles.push(*c);
                }
            }
        }
        self.series.insert(key, series);
        let ids: Vec<u64> = self
            .list
            .iter()
            .filter(|a| a.applies(&symbol) && matches!(a.condition, Condition::Indicator { tf: t, .. } if t == tf))
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.readings.remove(&id);
        }
    }

    /// Takes the definitions another tab saved, keeping this tab's log and what evaluation remembers.
    pub(crate) fn adopt(&mut self, list: Vec<Alert>) {
        self.next_id = self.next_id.max(list.iter().map(|a| a.id).max().unwrap_or(0));
        self.list = list;
    }

    /// Logs an alert another tab fired (and announced).
    pub(crate) fn fired_elsewhere(&mut self, fired: FiredElsewhere) {
        let FiredElsewhere { alert_id, symbol, text, price, ts, at_ms } = fired;
        self.push_log(Fired { seq: 0, remote: true, alert_id, symbol, text, price, ts, at_ms });
    }

    fn push_log(&mut self, mut fired: Fired) {
        self.fired_seq += 1;
        fired.seq = self.fired_seq;
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(fired);
    }

    /// The fired alerts this tab evaluated itself with `seq` above `after`, as the other tabs are told of them.
    pub(crate) fn fired_here_after(&self, after: u64) -> Vec<FiredElsewhere> {
        self.log
            .iter()
            .filter(|f| f.seq > after && !f.remote)
            .map(|f| FiredElsewhere {
                alert_id: f.alert_id,
                symbol: f.symbol.clone(),
                text: f.text.clone(),
                price: f.price,
                ts: f.ts,
                at_ms: f.at_ms,
            })
            .collect()
    }

    /// Whether any alert watches `symbol` (it then needs every tick, not a rate-limited view).
    pub(crate) fn watches(&self, symbol: &Symbol) -> bool {
        self.list.iter().any(|a| a.applies(symbol))
    }

    /// Fired alerts still shown as toasts at `now_ms`, newest last; those another tab fired were toasted there.
    pub(crate) fn toasts(&self, now_ms: i64) -> impl Iterator<Item = &Fired> {
        self.log.iter().filter(move |f| !f.remote && now_ms - f.at_ms < TOAST_MS)
    }

    /// Evaluates every alert of the quote's symbol against it; returns how many fired.
    pub(crate) fn on_quote(&mut self, quote: &Quote, now_ms: i64) -> usize {
        if !self.watches(&quote.symbol) {
            return 0;
        }
        let price = quote.price;
        let previous = self.previous.insert(quote.symbol.clone(), price);
        let window = self.list.iter().filter(|a| a.applies(&quote.symbol)).find_map(|a| match a.condition {
            Condition::MovePct { window_ms, .. } => Some(window_ms),
            _ => None,
        });
        let oldest = window.and_then(|window_ms| {
            let w = self.window.entry(quote.symbol.clone()).or_default();
            w.push_back((quote.ts, price));
            while w.front().is_some_and(|(ts, _)| quote.ts - ts > window_ms) {
                w.pop_front();
            }
            w.front().map(|(_, p)| *p)
        });
        // Move every series an indicator alert of this symbol reads, then read each alert's signal.
        let mut now_readings: HashMap<u64, f64> = HashMap::new();
        for alert in self.list.iter().filter(|a| a.applies(&quote.symbol)) {
            let Condition::Indicator { tf, signal } = alert.condition else { continue };
            let series = self
                .series
                .entry((quote.symbol.clone(), tf))
                .or_insert_with(|| Series::new(tf, Vec::new(), SIGNAL_CANDLES));
            // Two alerts on one series apply the tick twice; the series drops the exact repeat.
            series.apply(quote.ts, price, quote.volume);
            if let Some(reading) = signal.read(&series.closes()) {
                now_readings.insert(alert.id, reading);
            }
        }
        let before_readings: HashMap<u64, f64> =
            now_readings.keys().filter_map(|id| Some((*id, *self.readings.get(id)?))).collect();
        self.readings.extend(now_readings.iter().map(|(id, r)| (*id, *r)));
        if self.evaluated_elsewhere {
            return 0;
        }
        let mut fired = Vec::new();
        let mut done = Vec::new();
        for alert in self.list.iter_mut().filter(|a| a.applies(&quote.symbol)) {
            if alert.expires_ms.is_some_and(|t| now_ms >= t) {
                done.push(alert.id);
                continue;
            }
            let hit = match alert.condition {
                Condition::Above { level } => price >= level && previous.is_none_or(|p| p < level),
                Condition::Below { level } => price <= level && previous.is_none_or(|p| p > level),
                Condition::Crosses { level } => previous.is_some_and(|p| (p < level) != (price < level)),
                Condition::MovePct { pct, .. } => {
                    oldest.is_some_and(|o| o > 0.0 && ((price / o - 1.0) * 100.0).abs() >= pct)
                }
                Condition::Indicator { signal, .. } => {
                    match (before_readings.get(&alert.id), now_readings.get(&alert.id)) {
                        (Some(before), Some(now)) => signal.crossed(*before, *now),
                        _ => false,
                    }
                }
            };
            if !hit {
                continue;
            }
            let cooling = match alert.repeat {
                Repeat::Every { cooldown_ms } => alert.last_fired_ms.is_some_and(|t| now_ms - t < cooldown_ms),
                Repeat::Once => false,
            };
            if cooling {
                continue;
            }
            alert.last_fired_ms = Some(now_ms);
            if alert.repeat == Repeat::Once {
                done.push(alert.id);
            }
            fired.push((alert.id, describe(quote.symbol.as_str(), alert.condition, price)));
        }
        if fired
            .iter()
            .any(|(id, _)| self.list.iter().any(|a| a.id == *id && matches!(a.condition, Condition::MovePct { .. })))
        {
            // A move that fired starts a new window, or it would fire again on the next tick.
            self.window.remove(&quote.symbol);
        }
        self.list.retain(|a| !done.contains(&a.id));
        let n = fired.len();
        for (alert_id, text) in fired {
            self.push_log(Fired {
                seq: 0,
                remote: false,
                alert_id,
                symbol: quote.symbol.clone(),
                text,
                price,
                ts: quote.ts,
                at_ms: now_ms,
            });
        }
        n
    }
}

/// "BTC/USD above 67500: 67512.3".
pub(crate) fn describe(symbol: &str, condition: Condition, price: f64) -> String {
    let what = match condition {
        Condition::Above { level } => format!("above {}", Num(level)),
        Condition::Below { level } => format!("below {}", Num(level)),
        Condition::Crosses { level } => format!("crossed {}", Num(level)),
        Condition::MovePct { pct, window_ms } => format!("moved {}% within {} s", Num(pct), window_ms / 1000),
        Condition::Indicator { tf, signal } => format!("{} on {tf}", signal.describe()),
    };
    format!("{symbol} {what}: {}", Num(price))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn q(price: f64, ts: i64) -> Quote {
        Quote::new(sym("AAPL"), price, ts, "sim")
    }

    fn run(alerts: &mut Alerts, prices: &[f64]) -> Vec<usize> {
        prices.iter().enumerate().map(|(i, p)| alerts.on_quote(&q(*p, i as i64 * 1000), i as i64 * 1000)).collect()
    }

    #[test]
    fn a_once_alert_just_above_the_price_fires_exactly_once_and_is_done() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Above { level: 101.0 }, Repeat::Once, None);
        assert_eq!(run(&mut a, &[100.0, 100.5, 101.2, 100.0, 102.0]), [0, 0, 1, 0, 0]);
        assert!(a.list.is_empty(), "done after firing");
        assert_eq!(a.log.len(), 1);
        assert_eq!(a.log[0].price, 101.2);
        assert_eq!(a.log[0].text, "AAPL above 101: 101.2");
    }

    #[test]
    fn an_every_time_alert_respects_its_cool_down() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Crosses { level: 100.0 }, Repeat::Every { cooldown_ms: 2_500 }, None);
        // Crossings at t=1 s, 2 s (cooling), 3 s (cooling), 4 s (fires: 3 s after the first), 5 s (cooling).
        assert_eq!(run(&mut a, &[99.0, 101.0, 99.0, 101.0, 99.0, 101.0]), [0, 1, 0, 0, 1, 0]);
        assert_eq!(a.list.len(), 1, "still armed");
    }

    #[test]
    fn level_alerts_are_edge_triggered_and_expire() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Below { level: 50.0 }, Repeat::Every { cooldown_ms: 0 }, None);
        assert_eq!(run(&mut a, &[60.0, 49.0, 48.0, 51.0, 49.0]), [0, 1, 0, 0, 1], "not on every tick under the level");
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Above { level: 10.0 }, Repeat::Once, Some(1_500));
        assert_eq!(run(&mut a, &[5.0, 6.0, 11.0]), [0, 0, 0], "expired at 1.5 s");
        assert!(a.list.is_empty());
    }

    #[test]
    fn a_percent_move_within_its_window_fires_and_starts_a_new_window() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::MovePct { pct: 2.0, window_ms: 3_000 }, Repeat::Every { cooldown_ms: 0 }, None);
        // 100 → 101.5 within the window: 1.5 %; 102.1 at 2 s: 2.1 % → fires; the next tick starts afresh.
        assert_eq!(run(&mut a, &[100.0, 101.5, 102.1, 102.2]), [0, 0, 1, 0]);
        // Slow drift: 2 % over 6 s, never within 3 s.
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::MovePct { pct: 2.0, window_ms: 3_000 }, Repeat::Once, None);
        assert_eq!(run(&mut a, &[100.0, 100.4, 100.8, 101.2, 101.6, 102.0]), [0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_follower_tab_keeps_the_previous_price_but_fires_nothing_and_logs_what_the_leader_fired() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Above { level: 101.0 }, Repeat::Once, None);
        a.evaluated_elsewhere = true;
        assert_eq!(run(&mut a, &[100.0, 102.0]), [0, 0], "the leader fires, not this tab");
        assert_eq!(a.list.len(), 1, "still armed here until the leader's save arrives");
        // Leading now: the price is already above, so nothing crosses (no second firing after a takeover).
        a.evaluated_elsewhere = false;
        assert_eq!(a.on_quote(&q(102.5, 3_000), 3_000), 0);
        a.fired_elsewhere(FiredElsewhere {
            alert_id: 7,
            symbol: sym("AAPL"),
            text: "AAPL above 101: 102".into(),
            price: 102.0,
            ts: 1_000,
            at_ms: 1_000,
        });
        assert_eq!(a.log.len(), 1);
        assert!(a.log[0].remote);
        assert_eq!(a.toasts(1_500).count(), 0, "toasted in the tab that fired it");
        assert!(a.fired_here_after(0).is_empty(), "not sent back to the other tabs");
    }

    #[test]
    fn adopting_another_tabs_alerts_keeps_ids_unique() {
        let mut a = Alerts::default();
        a.add(sym("AAPL"), Condition::Above { level: 1.0 }, Repeat::Once, None);
        let theirs = Alert {
            id: 5,
            symbol: Some(sym("MSFT")),
            condition: Condition::Below { level: 2.0 },
            repeat: Repeat::Once,
            expires_ms: None,
            last_fired_ms: None,
        };
        a.adopt(vec![theirs]);
        assert_eq!(a.list.len(), 1);
        assert_eq!(a.add(sym("AAPL"), Condition::Above { level: 1.0 }, Repeat::Once, None), 6);
    }

    #[test]
    fn alerts_round_trip_through_their_saved_form() {
        let mut a = Alerts::default();
        a.add(
            sym("BTC/USD"),
            Condition::MovePct { pct: 2.0, window_ms: 300_000 },
            Repeat::Every { cooldown_ms: 60_000 },
            None,
        );
        let text = serde_json::to_string(&a.list).unwrap();
        let back: Vec<Alert> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a.list);
        assert_eq!(Alerts::restored(back).add(sym("AAPL"), Condition::Above { level: 1.0 }, Repeat::Once, None), 2);
    }

    const MIN: i64 = 60_000;

    /// One-minute candles closing at `closes`, the last one ending just before `until`.
    fn history(closes: &[f64], until: i64) -> Vec<Candle> {
        let first = until - closes.len() as i64 * MIN;
        closes
            .iter()
            .enumerate()
            .map(|(i, c)| Candle {
                start: first + i as i64 * MIN,
                open: *c,
                high: *c,
                low: *c,
                close: *c,
                ticks: 1,
                volume: 0.0,
            })
            .collect()
    }

    fn tick(a: &mut Alerts, price: f64, ts: i64) -> usize {
        a.on_quote(&q(price, ts), ts)
    }

    #[test]
    fn rsi_rising_through_70_fires_on_the_crossing_tick_once() {
        let mut a = Alerts::default();
        let t0 = 100 * MIN;
        a.add(
            sym("AAPL"),
            Condition::Indicator { tf: Timeframe::M1, signal: Signal::RsiAbove { level: 70.0 } },
            Repeat::Once,
            None,
        );
        // A choppy, flat history: RSI near 50.
        let closes: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 100.0 } else { 101.0 }).collect();
        a.seed(sym("AAPL"), Timeframe::M1, history(&closes, t0));
        // Then a run of rising minutes: RSI climbs through 70 at some tick, and only that tick fires.
        let fired: Vec<usize> = (0..12).map(|i| tick(&mut a, 101.0 + (i + 1) as f64, t0 + i * MIN + 1_000)).collect();
        assert_eq!(fired.iter().sum::<usize>(), 1, "{fired:?}");
        assert!(fired[0] == 0, "the first tick only gives the starting reading: {fired:?}");
        assert!(a.list.is_empty(), "a once alert is done");
        assert!(a.log[0].text.contains("RSI(14) rose through 70 on 1m"), "{}", a.log[0].text);
    }

    #[test]
    fn an_ema_cross_fires_when_fast_overtakes_slow_and_not_before() {
        let mut a = Alerts::default();
        let t0 = 100 * MIN;
        let up = Signal::EmaCross { fast: 3, slow: 8, up: true };
        let down = Signal::EmaCross { fast: 3, slow: 8, up: false };
        a.add(
            sym("AAPL"),
            Condition::Indicator { tf: Timeframe::M1, signal: up },
            Repeat::Every { cooldown_ms: 0 },
            None,
        );
        a.add(
            sym("AAPL"),
            Condition::Indicator { tf: Timeframe::M1, signal: down },
            Repeat::Every { cooldown_ms: 0 },
            None,
        );
        let falling: Vec<f64> = (0..30).map(|i| 130.0 - i as f64).collect();
        a.seed(sym("AAPL"), Timeframe::M1, history(&falling, t0));
        // Still falling: fast stays under slow.
        assert_eq!(tick(&mut a, 100.0, t0 + 1_000), 0);
        assert_eq!(tick(&mut a, 99.0, t0 + MIN + 1_000), 0);
        // A sharp rise: fast crosses above slow once; then a sharp fall crosses back below once.
        let rises: usize = (0..6).map(|i| tick(&mut a, 105.0 + 5.0 * i as f64, t0 + (2 + i) * MIN + 1_000)).sum();
        assert_eq!(rises, 1);
        assert!(a.log.back().is_some_and(|f| f.text.contains("EMA(3) crossed above EMA(8)")));
        let falls: usize = (0..8).map(|i| tick(&mut a, 120.0 - 8.0 * i as f64, t0 + (8 + i) * MIN + 1_000)).sum();
        assert_eq!(falls, 1);
        assert!(a.log.back().is_some_and(|f| f.text.contains("crossed below")));
    }

    #[test]
    fn seeding_is_not_a_crossing_and_signals_are_quiet_without_enough_candles() {
        let mut a = Alerts::default();
        let t0 = 100 * MIN;
        a.add(
            sym("AAPL"),
            Condition::Indicator { tf: Timeframe::M1, signal: Signal::RsiBelow { level: 30.0 } },
            Repeat::Once,
            None,
        );
        // Three live minutes are not enough for RSI(14): nothing can fire.
        for i in 0..3 {
            assert_eq!(tick(&mut a, 100.0 - i as f64, t0 + i * MIN), 0);
        }
        // A falling history arrives (RSI far below 30): the jump is not a crossing.
        let falling: Vec<f64> = (0..40).map(|i| 200.0 - 2.0 * i as f64).collect();
        a.seed(sym("AAPL"), Timeframe::M1, history(&falling, t0));
        assert_eq!(tick(&mut a, 119.0, t0 + 3 * MIN), 0);
        assert_eq!(tick(&mut a, 118.0, t0 + 4 * MIN), 0, "already below: no crossing");
        assert_eq!(a.signal_series(), [(sym("AAPL"), Timeframe::M1)]);
    }

    #[test]
    fn indicator_alerts_are_saved_and_restored() {
        let mut a = Alerts::default();
        let signal = Signal::StochCross { up: false };
        a.add(sym("binance:BTC/USDT"), Condition::Indicator { tf: Timeframe::H1, signal }, Repeat::Once, None);
        let text = serde_json::to_string(&a.list).unwrap();
        assert!(text.contains(r#""tf":"1h""#) && text.contains(r#""signal":"stoch_cross""#), "{text}");
        let back: Vec<Alert> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a.list);
        let what = describe(back[0].scope(), back[0].condition, f64::NAN);
        assert_eq!(what, "binance:BTC/USDT StochRSI %K crossed below %D on 1h: NaN");
    }

    #[test]
    fn a_whole_watchlist_alert_watches_each_symbol_on_its_own_prices() {
        let mut a = Alerts::default();
        a.add(None, Condition::MovePct { pct: 2.0, window_ms: 60_000 }, Repeat::Every { cooldown_ms: 0 }, None);
        let on = |a: &mut Alerts, symbol: &str, price: f64, ts: i64| {
            a.on_quote(&Quote { symbol: sym(symbol), ..q(price, ts) }, ts)
        };
        assert!(a.watches(&sym("MSFT")) && a.watches(&sym("BTC/USD")));
        // Interleaved symbols do not share a window: 100 → 101 on AAPL and 50 → 50.5 on MSFT are 1 % each.
        assert_eq!(on(&mut a, "AAPL", 100.0, 0), 0);
        assert_eq!(on(&mut a, "MSFT", 50.0, 1_000), 0);
        assert_eq!(on(&mut a, "AAPL", 101.0, 2_000), 0);
        assert_eq!(on(&mut a, "MSFT", 50.5, 3_000), 0);
        // MSFT moves 3 %: it fires, named by the symbol that moved.
        assert_eq!(on(&mut a, "MSFT", 51.5, 4_000), 1);
        assert!(a.log.back().is_some_and(|f| f.symbol == sym("MSFT") && f.text.starts_with("MSFT moved 2%")));
        assert_eq!(a.list[0].scope(), WHOLE_WATCHLIST);
    }

    #[test]
    fn alerts_saved_before_the_watchlist_scope_still_load() {
        let old = r#"[{"id":3,"symbol":"AAPL","condition":{"kind":"above","level":200.0},"repeat":{"kind":"once"}}]"#;
        let list: Vec<Alert> = serde_json::from_str(old).unwrap();
        assert_eq!(list[0].symbol, Some(sym("AAPL")));
        let whole = r#"[{"id":4,"symbol":null,"condition":{"kind":"move_pct","pct":2.0,"window_ms":300000},"repeat":{"kind":"once"}}]"#;
        let list: Vec<Alert> = serde_json::from_str(whole).unwrap();
        assert_eq!(list[0].symbol, None);
    }

    #[test]
    fn every_condition_signal_and_repeat_reads_back_from_its_saved_json_and_bad_ones_are_errors() {
        let signals = [
            Signal::RsiAbove { level: 70.0 },
            Signal::RsiBelow { level: 30.0 },
            Signal::EmaCross { fast: 9, slow: 21, up: true },
            Signal::StochCross { up: false },
        ];
        let mut conditions = vec![
            Condition::Above { level: 1.5 },
            Condition::Below { level: 2.5 },
            Condition::Crosses { level: 3.5 },
            Condition::MovePct { pct: 2.0, window_ms: 300_000 },
        ];
        conditions.extend(signals.map(|signal| Condition::Indicator { tf: Timeframe::M5, signal }));
        for c in conditions {
            let text = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Condition>(&text).unwrap(), c, "{text}");
        }
        for r in [Repeat::Once, Repeat::Every { cooldown_ms: 60_000 }] {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Repeat>(&text).unwrap(), r, "{text}");
        }
        // The saved shape, tag first or last, with a field it does not know.
        let saved =
            r#"{"signal":{"up":true,"slow":21,"fast":9,"signal":"ema_cross"},"tf":"5m","kind":"indicator","x":1}"#;
        let signal = Signal::EmaCross { fast: 9, slow: 21, up: true };
        assert_eq!(
            serde_json::from_str::<Condition>(saved).unwrap(),
            Condition::Indicator { tf: Timeframe::M5, signal }
        );
        for bad in [r#"{"kind":"sideways","level":1}"#, r#"{"kind":"above"}"#, r#"{"level":1}"#, "[]"] {
            assert!(serde_json::from_str::<Condition>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Repeat>(r#"{"kind":"every"}"#).is_err());
        assert!(serde_json::from_str::<Signal>(r#"{"signal":"macd","up":true}"#).is_err());
    }
}
