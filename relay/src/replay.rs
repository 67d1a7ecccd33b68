//! Replay: a recorded range played back to one connection, at a chosen speed, with pause, resume, speed changes
//! and seeks — "just another source" that reads the embedded store instead of a provider.
//!
//! A replay is private to the connection that started it: its quotes and events carry `replay:`-prefixed
//! symbols and go only into that client's queue, so other clients' live data and the upstream subscriptions are
//! never touched. Inter-arrival times are the recorded receive times divided by the speed; records due within
//! the same couple of milliseconds go out as one frame, in recorded order. A replay never outruns its reader: it
//! waits while the client's queue holds more than a few frames. The number of replays running at once is capped
//! relay-wide.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, ReplayAction, ReplayPhase, RequestId, ServerMessage, Symbol};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::hub::{ClientId, Hub};
use crate::store::{read, Store, StoredEvent, StoredTick};

/// Records read from the store per page.
const PAGE: usize = 2_000;
/// Records due within this much of each other share a frame.
const FRAME_WINDOW: Duration = Duration::from_millis(2);
/// Frames a replay lets wait in its client's queue before it pauses for the reader.
const MAX_QUEUED: usize = 8;
/// How often a playing replay reports its position.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// Why a replay command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ReplayError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl ReplayError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ReplayError {
        ReplayError { code, message: message.into() }
    }
}

/// A control order for a running replay.
#[derive(Debug, Clone, PartialEq)]
struct Control {
    id: Option<RequestId>,
    action: ReplayAction,
    speed: Option<f64>,
    to: Option<i64>,
}

/// The running replays, one per connection at most.
#[derive(Debug)]
pub(crate) struct Replays {
    store: Arc<Store>,
    hub: Arc<Hub>,
    max: usize,
    sessions: Mutex<HashMap<ClientId, mpsc::UnboundedSender<Control>>>,
}

/// What a replay plays.
#[derive(Debug, Clone)]
pub(crate) struct ReplayRequest {
    pub(crate) id: Option<RequestId>,
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// Recorded symbols and channels, as recorded.
    pub(crate) symbols: Vec<Symbol>,
    pub(crate) speed: f64,
}

impl Replays {
    pub(crate) fn new(store: Arc<Store>, hub: Arc<Hub>, max: usize) -> Arc<Replays> {
        Arc::new(Replays { store, hub, max, sessions: Mutex::new(HashMap::new()) })
    }

    /// Starts playing `request` to `client`, replacing its running replay.
    pub(crate) fn start(self: &Arc<Self>, client: ClientId, request: ReplayRequest) -> Result<(), ReplayError> {
        check_speed(request.speed)?;
        if request.to <= request.from {
            return Err(ReplayError::new(ErrorCode::BadMessage, "replay needs from < to (receive times in ms)"));
        }
        if request.symbols.is_empty() {
            return Err(ReplayError::new(
                ErrorCode::BadMessage,
                "replay needs at least one recorded symbol or channel",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut sessions = self.sessions.lock();
            sessions.retain(|_, control| !control.is_closed());
            if !sessions.contains_key(&client) && sessions.len() >= self.max {
                return Err(ReplayError::new(
                    ErrorCode::Unavailable,
                    format!("{} replays are running on this relay, its limit; try again later", self.max),
                ));
            }
            // Replacing the sender ends the previous replay: its control channel closes.
            sessions.insert(client, tx);
        }
        let replays = self.clone();
        tokio::spawn(async move {
            replays.play(client, request, rx).await;
        });
        Ok(())
    }

    /// Applies a control order to `client`'s replay.
    pub(crate) fn control(
        &self,
        client: ClientId,
        id: Option<RequestId>,
        action: ReplayAction,
        speed: Option<f64>,
        to: Option<i64>,
    ) -> Result<(), ReplayError> {
        match (action, speed, to) {
            (ReplayAction::Speed, None, _) => {
                return Err(ReplayError::new(ErrorCode::BadMessage, "replay_control speed needs a `speed`"))
            }
            (ReplayAction::Speed, Some(speed), _) => check_speed(speed)?,
            (ReplayAction::Seek, _, None) => {
                return Err(ReplayError::new(ErrorCode::BadMessage, "replay_control seek needs `to` (a receive time)"))
            }
            _ => {}
        }
        let sessions = self.sessions.lock();
        let sent = sessions.get(&client).is_some_and(|tx| tx.send(Control { id, action, speed, to }).is_ok());
        if sent {
            Ok(())
        } else {
            Err(ReplayError::new(ErrorCode::NotFound, "this connection has no replay running"))
        }
    }

    async fn play(&self, client: ClientId, request: ReplayRequest, mut control: mpsc::UnboundedReceiver<Control>) {
        let recorded: Vec<String> = request.symbols.iter().map(|s| s.as_str().to_owned()).collect();
        let mut player = Player::new(request.from, request.to, request.speed);
        let mut source = Source::new(request.from, request.to);
        self.state(client, request.id.clone(), &player, ReplayPhase::Playing);
        let mut next_state = Instant::now() + STATE_EVERY;
        loop {
            if self.hub.queued(client).is_none() {
                break;
            }
            let head = if player.paused { None } else { source.head(&self.store, &recorded).await };
            if head.is_none() && !player.paused && !player.ended {
                player.ended = true;
                self.state(client, None, &player, ReplayPhase::Ended);
            }
            let due = head.map(|recv| player.due(recv));
            tokio::select! {
                order = control.recv() => {
                    let Some(order) = order else { break };
                    match order.action {
                        ReplayAction::Pause => player.pause(),
                        ReplayAction::Resume => player.resume(),
                        ReplayAction::Speed => player.set_speed(order.speed.unwrap_or(player.speed)),
                        ReplayAction::Seek => {
                            let at = order.to.unwrap_or(player.position).clamp(request.from, request.to);
                            player.seek(at);
                            source = Source::new(at, request.to);
                        }
                        ReplayAction::Stop => {
                            self.state(client, order.id, &player, ReplayPhase::Stopped);
                            break;
                        }
                    }
                    self.state(client, order.id, &player, player.phase());
                }
                _ = sleep_until_opt(due) => {
                    let Some(first) = head else { continue };
                    let (quotes, events) = source.take_due(first, player.speed);
                    player.played += (quotes.len() + events.len()) as u64;
                    player.position = quotes.iter().map(|q| q.recv).chain(events.iter().map(|e| e.recv)).max().unwrap_or(first);
                    if !self.emit(client, quotes, events).await {
                        break;
                    }
                    if Instant::now() >= next_state {
                        self.state(client, None, &player, ReplayPhase::Playing);
                        next_state = Instant::now() + STATE_EVERY;
                    }
                }
            }
        }
        let mut sessions = self.sessions.lock();
        if sessions.get(&client).is_some_and(|tx| tx.is_closed()) {
            sessions.remove(&client);
        }
    }

    /// Sends one frame of quotes and the events, after waiting for the reader; false once the client is gone.
    async fn emit(&self, client: ClientId, quotes: Vec<StoredTick>, events: Vec<StoredEvent>) -> bool {
        loop {
            match self.hub.queued(client) {
                None => return false,
                Some(n) if n > MAX_QUEUED => tokio::time::sleep(Duration::from_millis(2)).await,
                Some(_) => break,
            }
        }
        let quotes: Vec<Quote> = quotes.into_iter().filter_map(replayed_quote).collect();
        if !quotes.is_empty() {
            self.hub.send(client, &ServerMessage::Quotes { quotes });
        }
        for e in events {
            let (Some(channel), Ok(payload)) = (replayed(&e.channel), serde_json::from_str(&e.payload)) else {
                continue;
            };
            self.hub.send(client, &ServerMessage::Event { seq: None, channel, payload, ts: e.ts });
        }
        true
    }

    fn state(&self, client: ClientId, id: Option<RequestId>, player: &Player, phase: ReplayPhase) {
        self.hub.send(
            client,
            &ServerMessage::ReplayState {
                id,
                phase,
                from: player.from,
                to: player.to,
                position: player.position,
                speed: player.speed,
                played: player.played,
            },
        );
    }
}

fn check_speed(speed: f64) -> Result<(), ReplayError> {
    if speed.is_finite() && (speed == 0.0 || (0.01..=1000.0).contains(&speed)) {
        Ok(())
    } else {
        Err(ReplayError::new(ErrorCode::BadMessage, "replay speed must be 0 (as fast as possible) or 0.01 to 1000"))
    }
}

/// The replay clock: maps recorded receive times to wall-clock instants at the current speed.
#[derive(Debug)]
struct Player {
    from: i64,
    to: i64,
    speed: f64,
    /// Recorded time played last.
    position: i64,
    /// Wall instant at which recorded time `anchor_at` is (was) due.
    anchor_wall: Instant,
    anchor_at: i64,
    paused: bool,
    ended: bool,
    played: u64,
}

impl Player {
    fn new(from: i64, to: i64, speed: f64) -> Player {
        Player {
            from,
            to,
            speed,
            position: from,
            anchor_wall: Instant::now(),
            anchor_at: from,
            paused: false,
            ended: false,
            played: 0,
        }
    }

    fn phase(&self) -> ReplayPhase {
        if self.paused {
            ReplayPhase::Paused
        } else if self.ended {
            ReplayPhase::Ended
        } else {
            ReplayPhase::Playing
        }
    }

    /// When a record received at `recv` is due.
    fn due(&self, recv: i64) -> Instant {
        if self.speed == 0.0 {
            return Instant::now();
        }
        let ms = (recv - self.anchor_at).max(0) as f64 / self.speed;
        self.anchor_wall + Duration::from_secs_f64(ms / 1000.0)
    }

    /// Restarts the clock at `at`, now.
    fn anchor(&mut self, at: i64) {
        self.anchor_wall = Instant::now();
        self.anchor_at = at;
    }

    fn pause(&mut self) {
        self.paused = true;
    }

    fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.anchor(self.position);
        }
    }

    fn set_speed(&mut self, speed: f64) {
        self.speed = speed;
        self.anchor(self.position);
    }

    fn seek(&mut self, at: i64) {
        self.position = at;
        self.ended = false;
        self.anchor(at);
    }
}

/// The recorded ticks and events of a range, read a page at a time and merged in receive order.
#[derive(Debug)]
struct Source {
    from: i64,
    to: i64,
    ticks: VecDeque<StoredTick>,
    events: VecDeque<StoredEvent>,
    tick_cursor: Option<(i64, i64)>,
    event_cursor: Option<(i64, i64)>,
    ticks_done: bool,
    events_done: bool,
}

impl Source {
    fn new(from: i64, to: i64) -> Source {
        Source {
            from,
            to,
            ticks: VecDeque::new(),
            events: VecDeque::new(),
            tick_cursor: None,
            event_cursor: None,
            ticks_done: false,
            events_done: false,
        }
    }

    /// Refills whichever side ran dry, then the receive time of the next record, if any is left.
    async fn head(&mut self, store: &Arc<Store>, symbols: &[String]) -> Option<i64> {
        if self.ticks.is_empty() && !self.ticks_done {
            let (store, symbols, (from, to, after)) =
                (store.clone(), symbols.to_vec(), (self.from, self.to, self.tick_cursor));
            let page = tokio::task::spawn_blocking(move || {
                store.read(|c| read::scan_ticks(c, &symbols, from, to, after, PAGE))
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            self.ticks_done = page.len() < PAGE;
            self.tick_cursor = page.last().map(|t| (t.recv, t.id)).or(self.tick_cursor);
            self.ticks.extend(page);
        }
        if self.events.is_empty() && !self.events_done {
            let (store, symbols, (from, to, after)) =
                (store.clone(), symbols.to_vec(), (self.from, self.to, self.event_cursor));
            let page = tokio::task::spawn_blocking(move || {
                store.read(|c| read::scan_events(c, &symbols, from, to, after, PAGE))
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            self.events_done = page.len() < PAGE;
            self.event_cursor = page.last().map(|e| (e.recv, e.id)).or(self.event_cursor);
            self.events.extend(page);
        }
        match (self.ticks.front(), self.events.front()) {
            (Some(t), Some(e)) => Some(t.recv.min(e.recv)),
            (Some(t), None) => Some(t.recv),
            (None, Some(e)) => Some(e.recv),
            (None, None) => None,
        }
    }

    /// Everything buffered that is due together with the record at `first` (within [`FRAME_WINDOW`] of replay
    /// time), in receive order.
    fn take_due(&mut self, first: i64, speed: f64) -> (Vec<StoredTick>, Vec<StoredEvent>) {
        let window = if speed == 0.0 { 0 } else { (FRAME_WINDOW.as_millis() as f64 * speed) as i64 };
        let limit = first + window;
        let mut quotes = Vec::new();
        while self.ticks.front().is_some_and(|t| t.recv <= limit) && quotes.len() < PAGE {
            quotes.extend(self.ticks.pop_front());
        }
        let mut events = Vec::new();
        while self.events.front().is_some_and(|e| e.recv <= limit) {
            events.extend(self.events.pop_front());
        }
        (quotes, events)
    }
}

/// `AAPL` → `replay:AAPL`; a recorded `binance:BTC/USD` → `replay:BTC/USD`.
fn replayed(symbol: &str) -> Option<Symbol> {
    let ticker = symbol.rsplit_once(':').map_or(symbol, |(_, t)| t);
    Symbol::parse(&format!("replay:{ticker}")).ok()
}

fn replayed_quote(t: StoredTick) -> Option<Quote> {
    Some(Quote {
        seq: None,
        recv: None,
        symbol: replayed(&t.symbol)?,
        price: t.price,
        ts: t.ts,
        provider: t.provider,
        bid: t.bid,
        ask: t.ask,
        volume: t.volume,
        change: None,
        change_pct: None,
    })
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_follows_speed_pause_and_seek() {
        let mut p = Player::new(1_000, 100_000, 10.0);
        let start = p.anchor_wall;
        assert_eq!(p.due(11_000) - start, Duration::from_secs(1), "10 s recorded at 10× is 1 s");
        p.position = 11_000;
        p.pause();
        assert_eq!(p.phase(), ReplayPhase::Paused);
        p.resume();
        assert!(p.due(11_000) <= Instant::now() + Duration::from_millis(5), "resumes where it paused");
        p.set_speed(50.0);
        assert_eq!(p.due(16_000) - p.anchor_wall, Duration::from_millis(100));
        p.seek(90_000);
        assert_eq!((p.position, p.phase()), (90_000, ReplayPhase::Playing));
        p.speed = 0.0;
        assert!(p.due(99_000) <= Instant::now());
    }

    #[test]
    fn replayed_symbols_are_namespaced() {
        assert_eq!(replayed("AAPL").map(|s| s.as_str().to_owned()).as_deref(), Some("replay:AAPL"));
        assert_eq!(replayed("binance:BTC/USD").map(|s| s.as_str().to_owned()).as_deref(), Some("replay:BTC/USD"));
        assert_eq!(replayed("FLOW-ALERTS").map(|s| s.as_str().to_owned()).as_deref(), Some("replay:FLOW-ALERTS"));
        assert!(check_speed(10.0).is_ok() && check_speed(0.0).is_ok());
        assert!(check_speed(-1.0).is_err() && check_speed(f64::NAN).is_err() && check_speed(5000.0).is_err());
    }
}
