//! The live event feed: every event of the watched channels (options-flow alerts, news, …) in readable columns
//! instead of raw JSON, newest first, at most [`CAPACITY`] kept, filterable, and held still while the user reads
//! it (pausing keeps new events aside and counts them until the feed resumes).
//!
//! Payloads are read in the shapes the relay documents for Unusual Whales' flow alerts and news
//! (`docs/providers/unusualwhales.md`), which the simulator publishes too; anything else is kept as a preview.

use std::collections::VecDeque;

use hamster_shared::Symbol;
use serde_json::Value;

/// Events kept.
pub(crate) const CAPACITY: usize = 500;
/// Premium from which a flow alert is highlighted (and sounded) unless the user sets another.
pub(crate) const BIG_PREMIUM: f64 = 500_000.0;

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Call,
    Put,
}

/// What an event says, in columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    Flow {
        ticker: String,
        strike: Option<f64>,
        /// `YYYY-MM-DD`.
        expiry: Option<String>,
        right: Option<Right>,
        premium: f64,
        size: u64,
        /// "ask" when most of the premium traded at the ask (buyers), "bid" when at the bid.
        side: Option<&'static str>,
        sweep: bool,
    },
    News {
        headline: String,
        tickers: Vec<String>,
    },
    Other {
        preview: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedEvent {
    pub(crate) id: u64,
    pub(crate) channel: Symbol,
    pub(crate) ts: i64,
    pub(crate) body: Body,
}

impl FeedEvent {
    pub(crate) fn premium(&self) -> Option<f64> {
        match self.body {
            Body::Flow { premium, .. } => Some(premium),
            _ => None,
        }
    }
}

/// What the user filters on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Upper-case ticker, or empty for all.
    pub(crate) ticker: String,
    /// "flow", "news" or empty for all.
    pub(crate) kind: String,
    pub(crate) right: Option<Right>,
    pub(crate) min_premium: f64,
}

impl Filter {
    pub(crate) fn accepts(&self, e: &FeedEvent) -> bool {
        let kind_ok = matches!(
            (self.kind.as_str(), &e.body),
            ("flow", Body::Flow { .. }) | ("news", Body::News { .. }) | ("", _)
        );
        let ticker_ok = self.ticker.is_empty()
            || match &e.body {
                Body::Flow { ticker, .. } => *ticker == self.ticker,
                Body::News { tickers, .. } => tickers.contains(&self.ticker),
                Body::Other { preview } => preview.contains(&self.ticker),
            };
        let right_ok = match (self.right, &e.body) {
            (None, _) => true,
            (Some(want), Body::Flow { right, .. }) => *right == Some(want),
            (Some(_), _) => false,
        };
        let premium_ok = self.min_premium <= 0.0 || e.premium().is_some_and(|p| p >= self.min_premium);
        kind_ok && ticker_ok && right_ok && premium_ok
    }
}

/// The feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Feed {
    /// Shown, newest first.
    pub(crate) events: VecDeque<FeedEvent>,
    /// Arrived while paused, newest first; shown on resume.
    pub(crate) held: VecDeque<FeedEvent>,
    pub(crate) paused: bool,
    pub(crate) filter: Filter,
    /// Flow alerts from this premium on are highlighted and sounded.
    pub(crate) big_premium: Option<f64>,
    /// The id of the newest big-premium event, for the component's sound.
    pub(crate) newest_big: Option<u64>,
    next_id: u64,
}

impl Feed {
    /// Takes one event of `channel`.
    pub(crate) fn push(&mut self, channel: Symbol, payload: &Value, ts: i64) {
        self.next_id += 1;
        let event = FeedEvent { id: self.next_id, channel, ts, body: parse(payload) };
        if event.premium().is_some_and(|p| p >= self.big_threshold()) {
            self.newest_big = Some(event.id);
        }
        let into = if self.paused { &mut self.held } else { &mut self.events };
        into.push_front(event);
        into.truncate(CAPACITY);
    }

    pub(crate) fn big_threshold(&self) -> f64 {
        self.big_premium.unwrap_or(BIG_PREMIUM)
    }

    /// Stops the list from moving (the user is reading it); new events wait in `held`.
    pub(crate) fn pause(&mut self) {
        self.paused = true;
    }

    /// Shows what arrived meanwhile and moves with the stream again.
    pub(crate) fn resume(&mut self) {
        self.paused = false;
        while let Some(e) = self.held.pop_back() {
            self.events.push_front(e);
        }
        self.events.truncate(CAPACITY);
    }

    /// Shown events that pass the filter, newest first.
    pub(crate) fn visible(&self) -> impl Iterator<Item = &FeedEvent> {
        self.events.iter().filter(|e| self.filter.accepts(e))
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(crate::format::number))
}

/// Reads an OCC option symbol (`AAPL250117C00190000`): expiry, call/put, strike.
fn occ(chain: &str) -> Option<(String, Right, f64)> {
    let tail = chain.get(chain.len().checked_sub(15)?..)?;
    // Provider text: slice only where a character starts, never panic on it.
    let (date, rest) = (tail.get(..6)?, tail.get(6..)?);
    let right = match rest.as_bytes().first()? {
        b'C' => Right::Call,
        b'P' => Right::Put,
        _ => return None,
    };
    let strike = crate::format::number(rest.get(1..)?)? / 1000.0;
    let expiry = format!("20{}-{}-{}", date.get(0..2)?, date.get(2..4)?, date.get(4..6)?);
    Some((expiry, right, strike))
}

/// Columns for a payload: a flow alert when it has a ticker and a premium, news when it has a headline.
pub(crate) fn parse(payload: &Value) -> Body {
    if let (Some(ticker), Some(premium)) = (payload["ticker"].as_str(), number(&payload["total_premium"])) {
        let chain = payload["option_chain"].as_str().and_then(occ);
        let ask = number(&payload["total_ask_side_prem"]).unwrap_or(0.0);
        let bid = number(&payload["total_bid_side_prem"]).unwrap_or(0.0);
        let side = if ask > bid * 1.5 {
            Some("ask")
        } else if bid > ask * 1.5 {
            Some("bid")
        } else {
            None
        };
        return Body::Flow {
            ticker: ticker.to_owned(),
            strike: chain.as_ref().map(|c| c.2).or_else(|| number(&payload["strike"])),
            expiry: chain.as_ref().map(|c| c.0.clone()).or_else(|| payload["expiry"].as_str().map(str::to_owned)),
            right: chain.as_ref().map(|c| c.1),
            premium,
            size: number(&payload["total_size"]).map_or(0, |s| s.max(0.0) as u64),
            side,
            sweep: payload["has_sweep"].as_bool().unwrap_or(false),
        };
    }
    if let Some(headline) = payload["headline"].as_str() {
        let tickers = payload["tickers"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        return Body::News { headline: headline.to_owned(), tickers };
    }
    let mut preview = payload.to_string();
    if preview.len() > 160 {
        let cut = (0..=160).rev().find(|i| preview.is_char_boundary(*i)).unwrap_or(0);
        preview.truncate(cut);
        preview.push('…');
    }
    Body::Other { preview }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn flow(ticker: &str, premium: f64, chain: &str) -> Value {
        json!({"ticker": ticker, "option_chain": chain, "total_premium": premium, "total_size": 12,
               "total_ask_side_prem": premium * 0.9, "total_bid_side_prem": premium * 0.1, "has_sweep": true})
    }

    #[test]
    fn flow_alerts_read_as_columns() {
        let body = parse(&flow("AAPL", 1_200_000.0, "AAPL250117C00190000"));
        assert_eq!(
            body,
            Body::Flow {
                ticker: "AAPL".into(),
                strike: Some(190.0),
                expiry: Some("2025-01-17".into()),
                right: Some(Right::Call),
                premium: 1_200_000.0,
                size: 12,
                side: Some("ask"),
                sweep: true,
            }
        );
        // Unusual Whales sends some numbers as strings.
        let p = parse(&json!({"ticker": "SPY", "total_premium": "640000", "option_chain": "SPY240621P00500000"}));
        assert!(
            matches!(p, Body::Flow { premium, right: Some(Right::Put), strike: Some(s), .. } if premium == 640_000.0 && s == 500.0)
        );
        assert!(matches!(parse(&json!({"headline": "x", "tickers": ["NVDA"]})), Body::News { .. }));
        assert!(matches!(parse(&json!({"a": 1})), Body::Other { .. }));
        // Odd option symbols never panic: too short, not ASCII, no C/P.
        for chain in ["", "AAPL", "ééééééééééééééé", "AAPL250117X00190000", "AAPL2501é7C00190000"] {
            let body = parse(&json!({"ticker": "AAPL", "total_premium": 1.0, "option_chain": chain}));
            assert!(matches!(body, Body::Flow { right: None, .. }), "{chain}: {body:?}");
        }
    }

    #[test]
    fn newest_first_bounded_and_filtered() {
        let mut f = Feed::default();
        for i in 0..(CAPACITY + 20) {
            f.push(
                Symbol::parse("FLOW-ALERTS").unwrap(),
                &flow("AAPL", i as f64 * 1000.0, "AAPL250117P00190000"),
                i as i64,
            );
        }
        assert_eq!(f.events.len(), CAPACITY);
        assert_eq!(f.events[0].ts, (CAPACITY + 19) as i64, "newest first");
        f.filter.min_premium = 510_000.0;
        assert_eq!(f.visible().count(), 10);
        f.filter.right = Some(Right::Call);
        assert_eq!(f.visible().count(), 0);
        assert_eq!(f.newest_big, Some((CAPACITY + 20) as u64), "from $500K on");
    }

    #[test]
    fn a_paused_feed_holds_new_events_until_it_resumes() {
        let mut f = Feed::default();
        let chan = || Symbol::parse("FLOW-ALERTS").unwrap();
        f.push(chan(), &flow("AAPL", 1.0, ""), 1);
        f.pause();
        f.push(chan(), &flow("MSFT", 2.0, ""), 2);
        f.push(chan(), &flow("NVDA", 3.0, ""), 3);
        assert_eq!((f.events.len(), f.held.len()), (1, 2), "the list stands still while read");
        f.resume();
        let order: Vec<i64> = f.events.iter().map(|e| e.ts).collect();
        assert_eq!(order, [3, 2, 1]);
        assert!(f.held.is_empty());
    }
}
