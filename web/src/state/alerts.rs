//! Price alerts: what the user asked to be told about, evaluated on every quote the page applies (in the reducer,
//! so a throttled render or a background tab never skips a crossing), and the log of those that fired.
//!
//! Conditions are edge-triggered: "above 100" fires when a price at or over 100 follows one under it (or is the
//! first price seen after the alert was made), so a price hovering over the level does not fire on every tick.
//! An alert fires once and is done, or every time with a cool-down; it may expire. Pure data: the component plays
//! the sound and shows the notification, and persistence saves the definitions.

use std::collections::{HashMap, VecDeque};

use hamster_shared::{Quote, Symbol};
use serde::{Deserialize, Serialize};

/// Fired alerts kept in the log.
pub(crate) const LOG_CAPACITY: usize = 100;
/// How long a fired alert stays on screen as a toast.
pub(crate) const TOAST_MS: i64 = 8_000;

/// What an alert waits for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// The price reaches `level` from below.
    Above { level: f64 },
    /// The price reaches `level` from above.
    Below { level: f64 },
    /// The price passes `level` either way.
    Crosses { level: f64 },
    /// The price moved `pct` percent (either way) within `window_ms`.
    MovePct { pct: f64, window_ms: i64 },
}

/// Whether an alert fires once or every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Repeat {
    Once,
    /// Every time, but not again within `cooldown_ms` of the last time.
    Every {
        cooldown_ms: i64,
    },
}

/// One alert as the user made it (what is saved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub(crate) id: u64,
    pub(crate) symbol: Symbol,
    pub(crate) condition: Condition,
    pub(crate) repeat: Repeat,
    /// Gone after this time (ms), if set.
    #[serde(default)]
    pub(crate) expires_ms: Option<i64>,
    #[serde(default)]
    pub(crate) last_fired_ms: Option<i64>,
}

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
    /// Another tab of the browser evaluates the alerts and delivers them (this one is a follower): quotes still
    /// keep the previous price and the windows current, so this tab judges crossings right once it leads, but
    /// nothing fires here.
    pub(crate) evaluated_elsewhere: bool,
}

/// A fired alert as one tab tells the others (over the tabs' channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// Adds an alert; returns its id.
    pub(crate) fn add(&mut self, symbol: Symbol, condition: Condition, repeat: Repeat, expires_ms: Option<i64>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.list.push(Alert { id, symbol, condition, repeat, expires_ms, last_fired_ms: None });
        id
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.list.retain(|a| a.id != id);
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
        self.list.iter().any(|a| a.symbol == *symbol)
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
        let window = self.list.iter().filter(|a| a.symbol == quote.symbol).find_map(|a| match a.condition {
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
        if self.evaluated_elsewhere {
            return 0;
        }
        let mut fired = Vec::new();
        let mut done = Vec::new();
        for alert in self.list.iter_mut().filter(|a| a.symbol == quote.symbol) {
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
            fired.push((alert.id, describe(&alert.symbol, alert.condition, price)));
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
pub(crate) fn describe(symbol: &Symbol, condition: Condition, price: f64) -> String {
    let what = match condition {
        Condition::Above { level } => format!("above {level}"),
        Condition::Below { level } => format!("below {level}"),
        Condition::Crosses { level } => format!("crossed {level}"),
        Condition::MovePct { pct, window_ms } => format!("moved {pct}% within {} s", window_ms / 1000),
    };
    format!("{symbol} {what}: {price}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn q(price: f64, ts: i64) -> Quote {
        Quote {
            symbol: sym("AAPL"),
            price,
            ts,
            provider: "sim".into(),
            bid: None,
            ask: None,
            volume: None,
            change: None,
            change_pct: None,
            recv: None,
            seq: None,
        }
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
            symbol: sym("MSFT"),
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
}
