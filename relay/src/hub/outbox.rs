//! A client's bounded outbound queue, where back-pressure turns into conflation.
//!
//! The hub pushes frames here and never waits; the client's writer task (WebSocket or SSE) drains it at whatever
//! pace the socket allows. Quote batches are queued as shared, already-serialised bytes. When a client has
//! `capacity` quote frames waiting, further updates are not queued: each symbol's **latest** serialised quote is
//! kept instead (a shared `Bytes`, replacing the previous one), and when the writer catches up it gets one frame
//! with those values after the queued frames. So a slow client costs at most `capacity` frames plus one reference
//! per subscribed symbol, and the hub (and with it the upstream reader and every other client) never waits for it.
//!
//! Queue and latest values are taken under one lock, so a client can never receive an older value after a newer
//! one, nor the same update twice (the catch-up used to be read from the hub's cache separately, which raced
//! with the next batch: the benchmark saw stale and duplicate quotes).
//!
//! A client may also ask for at most `max_hz` updates per second of some symbols: an update arriving sooner
//! than that after the symbol's last one is held (the latest replacing the one before) and goes out when the
//! interval has passed, so the client gets that rate and always the final value, within one interval. Clients
//! without such limits never reach that code.
//!
//! Control frames (replies, snapshots, status) are never conflated; a client that lets more than
//! [`MAX_CONTROL_FRAMES`] of them pile up is not reading at all and is closed as a policy violation.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hamster_shared::Symbol;
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::frame::{quotes_frame, Batch, Frame};

/// Control frames a client may have waiting before it is considered dead.
pub(crate) const MAX_CONTROL_FRAMES: usize = 1024;

/// What a writer takes from the outbox in one go.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Queued frames, then (if the client fell behind) one frame with the latest value of each conflated symbol.
    pub(crate) frames: Vec<Frame>,
    /// The outbox was closed because the client let control frames pile up: send what is here, then stop.
    pub(crate) closed: bool,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    quote_frames: usize,
    control_frames: usize,
    /// Conflated symbols and their latest serialised quote, in first-conflated order.
    dirty: IndexMap<Symbol, Bytes>,
    /// Symbols with a rate limit, and when each last went out.
    rates: HashMap<Symbol, Rate>,
    /// Rate-limited symbols' latest values waiting for their interval, in first-held order.
    held: IndexMap<Symbol, Bytes>,
    /// Set when control frames overflowed; the outbox then takes nothing more.
    closed: bool,
    delivered: u64,
    conflated: u64,
    /// When the writer last took frames, so it can let a burst collect before taking more.
    handed_out: Option<Instant>,
}

/// One symbol's `max_hz` as an interval, and when its last update went out.
#[derive(Debug, Clone, Copy)]
struct Rate {
    interval: Duration,
    last_sent: Option<Instant>,
}

impl Rate {
    fn due(&self) -> Option<Instant> {
        self.last_sent.map(|at| at + self.interval)
    }
}

/// The per-client queue. Shared between the hub (producer) and one writer task (consumer).
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl Outbox {
    /// An outbox holding at most `capacity` quote frames (at least 1).
    pub(crate) fn new(capacity: usize) -> Outbox {
        Outbox { state: Mutex::new(State::default()), notify: Notify::new(), capacity: capacity.max(1) }
    }

    /// Queues a frame that must arrive exactly once and in order (reply, snapshot, status).
    pub(crate) fn push_control(&self, frame: Frame) {
        let mut s = self.state.lock();
        if s.closed {
            return;
        }
        if s.control_frames >= MAX_CONTROL_FRAMES {
            s.closed = true;
            s.queue.clear();
            s.dirty.clear();
        } else {
            s.control_frames += 1;
            s.queue.push_back(frame);
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Queues a quote batch, or, if the client is behind, keeps each quote's latest value for conflated delivery.
    /// `quotes` are the symbols and serialised quotes inside `frame`, in order. Returns how many pending updates
    /// this one superseded (conflations).
    pub(crate) fn push_quotes<'a>(
        &self,
        frame: &Frame,
        quotes: impl IntoIterator<Item = (&'a Symbol, &'a Bytes)>,
    ) -> u64 {
        let mut s = self.state.lock();
        if s.closed {
            return 0;
        }
        let before = s.conflated;
        if s.rates.is_empty() {
            self.enqueue(&mut s, frame, quotes);
        } else {
            let now = Instant::now();
            let mut admitted = Vec::new();
            let mut all = true;
            for (symbol, json) in quotes {
                let s = &mut *s;
                if let Some(rate) = s.rates.get_mut(symbol) {
                    if rate.due().is_some_and(|due| now < due) {
                        if s.held.insert(symbol.clone(), json.clone()).is_some() {
                            s.conflated += 1;
                        }
                        all = false;
                        continue;
                    }
                    rate.last_sent = Some(now);
                    // A held value older than this one is superseded, never sent after it.
                    if s.held.shift_remove(symbol).is_some() {
                        s.conflated += 1;
                    }
                }
                admitted.push((symbol, json));
            }
            if all {
                self.enqueue(&mut s, frame, admitted);
            } else if !admitted.is_empty() {
                let own = quotes_frame(Batch::Quotes, admitted.iter().map(|(_, json)| *json));
                self.enqueue(&mut s, &own, admitted);
            }
        }
        let superseded = s.conflated - before;
        drop(s);
        self.notify.notify_one();
        superseded
    }

    /// Queues `frame`, or keeps its quotes' latest values once the client is `capacity` frames behind.
    fn enqueue<'a>(&self, s: &mut State, frame: &Frame, quotes: impl IntoIterator<Item = (&'a Symbol, &'a Bytes)>) {
        if s.quote_frames < self.capacity && s.dirty.is_empty() {
            s.quote_frames += 1;
            s.queue.push_back(frame.clone());
        } else {
            for (symbol, json) in quotes {
                // A symbol already dirty has an undelivered update that this one replaces.
                if s.dirty.insert(symbol.clone(), json.clone()).is_some() {
                    s.conflated += 1;
                }
            }
        }
    }

    /// Limits `symbols` to one update per `interval` (`None`: every update), without touching what is queued.
    pub(crate) fn set_rate<'a>(&self, symbols: impl IntoIterator<Item = &'a Symbol>, interval: Option<Duration>) {
        let mut s = self.state.lock();
        for symbol in symbols {
            match interval {
                Some(interval) => {
                    let last_sent = s.rates.get(symbol).and_then(|r| r.last_sent);
                    s.rates.insert(symbol.clone(), Rate { interval, last_sent });
                }
                // A value held under the old limit is now due and goes out with the next drain.
                None => {
                    s.rates.remove(symbol);
                }
            }
        }
        drop(s);
        self.notify.notify_one();
    }

    /// When the next held value is due, if any is held: the writer wakes then even if nothing else arrives.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let s = self.state.lock();
        let now = Instant::now();
        s.held.keys().map(|symbol| s.rates.get(symbol).and_then(Rate::due).unwrap_or(now)).min()
    }

    /// Drops pending conflated values of `symbols` (the client unsubscribed from them).
    pub(crate) fn forget<'a>(&self, symbols: impl IntoIterator<Item = &'a Symbol>) {
        let mut s = self.state.lock();
        if s.dirty.is_empty() && s.rates.is_empty() {
            return;
        }
        for symbol in symbols {
            s.dirty.shift_remove(symbol);
            s.held.shift_remove(symbol);
            s.rates.remove(symbol);
        }
    }

    /// When the writer may take what is queued if it is to take frames at most once per `gap`: `None` if it may
    /// now, or if nothing is queued (then it waits for [`Outbox::ready`] first, and no timer is set for nothing).
    pub(crate) fn not_before(&self, gap: Duration) -> Option<Instant> {
        let s = self.state.lock();
        if s.queue.is_empty() && s.dirty.is_empty() {
            return None;
        }
        let due = s.handed_out? + gap;
        (Instant::now() < due).then_some(due)
    }

    /// Takes everything queued. The writer calls this after [`Outbox::ready`] wakes it.
    pub(crate) fn drain(&self) -> Drained {
        let mut s = self.state.lock();
        s.quote_frames = 0;
        s.control_frames = 0;
        let mut frames: Vec<Frame> = s.queue.drain(..).collect();
        if !s.dirty.is_empty() {
            frames.push(quotes_frame(Batch::Quotes, s.dirty.values()));
            s.dirty.clear();
        }
        if !s.held.is_empty() {
            let s = &mut *s;
            let now = Instant::now();
            let mut due = Vec::new();
            s.held.retain(|symbol, json| match s.rates.get_mut(symbol) {
                Some(rate) if rate.due().is_some_and(|at| now < at) => true,
                rate => {
                    if let Some(rate) = rate {
                        rate.last_sent = Some(now);
                    }
                    due.push(json.clone());
                    false
                }
            });
            if !due.is_empty() {
                frames.push(quotes_frame(Batch::Quotes, due.iter()));
            }
        }
        if !frames.is_empty() {
            s.handed_out = Some(Instant::now());
        }
        Drained { frames, closed: s.closed }
    }

    /// Waits until something was pushed (or the outbox closed) since the last drain.
    pub(crate) async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Counts quotes that reached the socket.
    pub(crate) fn record_delivered(&self, quotes: u64) {
        self.state.lock().delivered += quotes;
    }

    /// Counters for `/api/clients`: (delivered, conflated, queued frames).
    pub(crate) fn counters(&self) -> (u64, u64, usize) {
        let s = self.state.lock();
        (s.delivered, s.conflated, s.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u32) -> Frame {
        Frame::new("quotes", Bytes::from(format!("{n}")), 1)
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    /// `(symbol, its serialised quote)` for `push_quotes`.
    fn q(symbol: &Symbol, json: &'static str) -> (Symbol, Bytes) {
        (symbol.clone(), Bytes::from_static(json.as_bytes()))
    }

    fn push(out: &Outbox, n: u32, quotes: &[(Symbol, Bytes)]) -> u64 {
        out.push_quotes(&frame(n), quotes.iter().map(|(s, j)| (s, j)))
    }

    #[test]
    fn queues_in_order_until_capacity_then_conflates() {
        let out = Outbox::new(2);
        let (a, b) = (sym("AAPL"), sym("MSFT"));
        push(&out, 1, &[q(&a, "a1")]);
        out.push_control(Frame::new("pong", Bytes::from_static(b"p"), 0));
        push(&out, 2, &[q(&b, "b1")]);
        // Full: these are kept as latest values; a second update for AAPL replaces the first.
        push(&out, 3, &[q(&a, "a2")]);
        push(&out, 4, &[q(&b, "b2"), q(&a, "a3")]);
        let d = out.drain();
        let bodies: Vec<_> = d.frames.iter().map(|f| f.json.clone()).collect();
        let catch_up = Bytes::from_static(br#"{"type":"quotes","quotes":[a3,b2]}"#);
        assert_eq!(bodies, [Bytes::from("1"), Bytes::from("p"), Bytes::from("2"), catch_up]);
        assert_eq!(d.frames[3].quotes, 2);
        let (_, conflated, queued) = out.counters();
        assert_eq!(conflated, 1, "one AAPL update was superseded");
        assert_eq!(queued, 0);
    }

    #[test]
    fn stays_conflated_until_the_writer_catches_up() {
        let out = Outbox::new(1);
        let a = sym("AAPL");
        push(&out, 1, &[q(&a, "a1")]);
        push(&out, 2, &[q(&a, "a2")]);
        // Capacity is free again? No: nothing was drained. Still conflating, and ordering is kept.
        push(&out, 3, &[q(&a, "a3")]);
        let d = out.drain();
        assert_eq!(d.frames.len(), 2);
        assert_eq!(d.frames[1].json, Bytes::from_static(br#"{"type":"quotes","quotes":[a3]}"#));
        // After a drain the client is back on the shared-frame path, and nothing is sent twice.
        push(&out, 4, &[q(&a, "a4")]);
        let d = out.drain();
        assert_eq!(d.frames.len(), 1);
        assert_eq!(d.frames[0].json, Bytes::from("4"));
    }

    #[test]
    fn forgotten_symbols_are_not_delivered() {
        let out = Outbox::new(1);
        let (a, b) = (sym("AAPL"), sym("MSFT"));
        push(&out, 1, &[q(&a, "a1")]);
        push(&out, 2, &[q(&a, "a2"), q(&b, "b2")]);
        out.forget([&a]);
        let d = out.drain();
        assert_eq!(d.frames[1].json, Bytes::from_static(br#"{"type":"quotes","quotes":[b2]}"#));
    }

    #[test]
    fn memory_is_bounded_whatever_the_rate() {
        let out = Outbox::new(8);
        let quotes: Vec<_> = ["A", "B", "C"].iter().map(|s| q(&sym(s), "x")).collect();
        for i in 0..100_000u32 {
            push(&out, i, std::slice::from_ref(&quotes[i as usize % 3]));
        }
        let d = out.drain();
        assert_eq!(d.frames.len(), 9, "8 queued frames and one catch-up");
        assert_eq!(d.frames[8].quotes, 3);
        let (_, conflated, _) = out.counters();
        assert_eq!(conflated, 100_000 - 8 - 3);
    }

    #[test]
    fn a_rate_limited_symbol_gets_its_rate_and_always_its_final_value() {
        let out = Outbox::new(64);
        let (a, b) = (sym("AAPL"), sym("MSFT"));
        out.set_rate([&a], Some(Duration::from_millis(200)));
        push(&out, 1, &[q(&a, "a1"), q(&b, "b1")]);
        // Within the interval: AAPL is held (the latest replacing the one before), MSFT is unlimited.
        push(&out, 2, &[q(&a, "a2"), q(&b, "b2")]);
        push(&out, 3, &[q(&a, "a3")]);
        let d = out.drain();
        let bodies: Vec<_> = d.frames.iter().map(|f| f.json.clone()).collect();
        assert_eq!(bodies, [Bytes::from("1"), Bytes::from_static(br#"{"type":"quotes","quotes":[b2]}"#)]);
        let due = out.next_due().expect("a3 is held");
        assert!(due > Instant::now() && due <= Instant::now() + Duration::from_millis(200));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let d = out.drain();
        assert_eq!(d.frames.len(), 1);
        assert_eq!(d.frames[0].json, Bytes::from_static(br#"{"type":"quotes","quotes":[a3]}"#), "the final value");
        assert_eq!(out.next_due(), None);
        let (_, conflated, _) = out.counters();
        assert_eq!(conflated, 1, "a2 was superseded by a3");
        // Lifting the limit lets the next update straight through.
        out.set_rate([&a], None);
        push(&out, 4, &[q(&a, "a4")]);
        assert_eq!(out.drain().frames[0].json, Bytes::from("4"));
    }

    #[test]
    fn a_held_value_is_never_sent_after_a_newer_one() {
        let out = Outbox::new(64);
        let a = sym("AAPL");
        out.set_rate([&a], Some(Duration::from_millis(30)));
        push(&out, 1, &[q(&a, "a1")]);
        push(&out, 2, &[q(&a, "a2")]);
        std::thread::sleep(Duration::from_millis(40));
        // Due again: a3 goes straight out and the held a2 is dropped, not delivered behind it.
        push(&out, 3, &[q(&a, "a3")]);
        let bodies: Vec<_> = out.drain().frames.iter().map(|f| f.json.clone()).collect();
        assert_eq!(bodies, [Bytes::from("1"), Bytes::from("3")]);
        out.forget([&a]);
        push(&out, 4, &[q(&a, "a4")]);
        assert_eq!(out.drain().frames[0].json, Bytes::from("4"), "unsubscribing dropped the limit");
    }

    #[test]
    fn the_writer_waits_out_the_gap_only_when_something_is_queued() {
        let out = Outbox::new(8);
        let a = sym("AAPL");
        let gap = Duration::from_secs(60);
        assert_eq!(out.not_before(gap), None, "nothing queued, nothing handed out yet");
        push(&out, 1, &[q(&a, "a1")]);
        assert_eq!(out.not_before(gap), None, "the first frames go out at once");
        assert_eq!(out.drain().frames.len(), 1);
        // Just handed out and nothing queued: no timer for nothing (a broadcast would set one per client).
        assert_eq!(out.not_before(gap), None);
        push(&out, 2, &[q(&a, "a2")]);
        let due = out.not_before(gap).expect("queued within the gap of the last hand-out");
        assert!(due > Instant::now() + gap / 2 && due <= Instant::now() + gap);
        assert_eq!(out.not_before(Duration::ZERO), None, "without a gap it may take them now");
    }

    #[test]
    fn control_flood_closes_the_outbox() {
        let out = Outbox::new(1);
        for _ in 0..=MAX_CONTROL_FRAMES {
            out.push_control(Frame::new("pong", Bytes::new(), 0));
        }
        let d = out.drain();
        assert!(d.closed && d.frames.is_empty(), "queued frames are dropped with the client");
        out.push_control(Frame::new("pong", Bytes::new(), 0));
        assert!(out.drain().frames.is_empty(), "a closed outbox takes nothing more");
    }
}
