//! The embedded store: one SQLite file (WAL mode) under the data directory, owned by this module alone — its
//! schema and migrations ([`schema`]), its one writer thread ([`writer`]), its queries ([`read`]) and the
//! broker's synchronous journal ([`journal`]).
//!
//! Recording is fed from the relay's ingest path through [`Recorder::offer`], which never blocks: records go into
//! a bounded queue, and when the writer cannot keep up they are dropped and counted (`/api/status` shows the
//! store as degraded) while live delivery carries on. Readers open their own connections; WAL lets them read
//! while the writer writes.
//!
//! Nothing here knows about transports, the hub or providers: records are plain values.

mod args;
pub(crate) mod journal;
pub(crate) mod read;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

pub(crate) use args::StoreArgs;
pub(crate) use journal::Journal;
pub(crate) use read::{StoredEvent, StoredTick};

/// Why the store cannot do something.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the data directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("the database was written by a newer relay (schema version {found}; this one knows {supported})")]
    TooNew { found: u32, supported: u32 },
    #[error("cannot start the store's writer thread: {source}")]
    Thread { source: std::io::Error },
}

/// Where the store lives and how much it keeps.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    /// The database file.
    pub(crate) path: PathBuf,
    /// Ticks and events older than this are deleted.
    pub(crate) retain_ticks: Duration,
    /// One-minute candles older than this are deleted (daily candles are kept).
    pub(crate) retain_candles: Duration,
    /// Oldest ticks and events are deleted while the database uses more than this.
    pub(crate) max_db_bytes: Option<u64>,
    /// Records waiting for the writer at most; beyond it they are dropped.
    pub(crate) queue: usize,
    /// How often retention runs.
    pub(crate) retention_every: Duration,
    /// Test hook: SQLite's `max_page_count`, to make a small database behave like a full disk.
    pub(crate) max_pages: Option<u64>,
    /// The writer runs at the lowest priority, so live delivery wins the cores (off when recording is the job).
    pub(crate) yield_to_delivery: bool,
}

/// One normalised quote as recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuoteRecord {
    pub(crate) symbol: String,
    pub(crate) provider: String,
    /// The provider's event time (ms).
    pub(crate) ts: i64,
    /// When the relay received it (ms).
    pub(crate) recv: i64,
    pub(crate) price: f64,
    pub(crate) bid: Option<f64>,
    pub(crate) ask: Option<f64>,
    pub(crate) volume: Option<f64>,
}

/// One channel event as recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRecord {
    pub(crate) channel: String,
    pub(crate) ts: i64,
    pub(crate) recv: i64,
    /// The payload as JSON text.
    pub(crate) payload: String,
}

/// What the writer takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    Quote(QuoteRecord),
    Event(EventRecord),
}

/// Counters and state shared by the recorder, the writer and status readers.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    recorded: AtomicU64,
    dropped: AtomicU64,
    degraded: Mutex<Option<String>>,
}

impl Shared {
    fn set_degraded(&self, reason: Option<String>) {
        let mut d = self.degraded.lock();
        if *d != reason {
            *d = reason;
        }
    }
}

/// A snapshot of the store's health for `/api/status` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoreStatus {
    pub(crate) path: PathBuf,
    pub(crate) recorded: u64,
    pub(crate) dropped: u64,
    pub(crate) degraded: Option<String>,
    pub(crate) used_bytes: u64,
}

/// What travels to the writer: records, and the order to finish.
#[derive(Debug)]
enum ToWriter {
    Record(Record),
    /// Commit what is queued and stop.
    Close,
}

/// The handle the ingest path records through. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    queue: SyncSender<ToWriter>,
    shared: Arc<Shared>,
}

impl Recorder {
    /// Queues a record for the writer, or drops and counts it when the queue is full.
    pub(crate) fn offer(&self, record: Record) {
        match self.queue.try_send(ToWriter::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The open store: a recorder for the ingest path and readers for queries.
#[derive(Debug)]
pub(crate) struct Store {
    config: StoreConfig,
    shared: Arc<Shared>,
    recorder: Mutex<Option<Recorder>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
}

/// Opens a connection with the store's settings.
fn connect(path: &Path, max_pages: Option<u64>) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // With WAL, NORMAL keeps every committed transaction across a process crash (only a power loss can lose the
    // last ones) and spares an fsync per batch.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if let Some(pages) = max_pages {
        conn.pragma_update(None, "max_page_count", i64::try_from(pages).unwrap_or(i64::MAX))?;
    }
    Ok(conn)
}

impl Store {
    /// Opens (creating or migrating) the database and starts its writer thread.
    pub(crate) fn open(config: StoreConfig) -> Result<Arc<Store>, StoreError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_owned(), source })?;
        }
        let mut conn = connect(&config.path, config.max_pages)?;
        let found = schema::migrate(&mut conn)?;
        if found != schema::current() {
            tracing::info!(path = %config.path.display(), from = found, to = schema::current(), "store migrated");
        }
        let shared = Arc::new(Shared::default());
        let (tx, rx) = sync_channel(config.queue.max(1));
        let writer = {
            let (writer_config, writer_shared) = (config.clone(), shared.clone());
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer::run(conn, writer_config, writer_shared, rx))
                .map_err(|source| StoreError::Thread { source })?
        };
        Ok(Arc::new(Store {
            recorder: Mutex::new(Some(Recorder { queue: tx, shared: shared.clone() })),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Vec::new()),
            shared,
            config,
        }))
    }

    /// The recorder for the ingest path (`None` once closed).
    pub(crate) fn recorder(&self) -> Option<Recorder> {
        self.recorder.lock().clone()
    }

    /// Waits until the writer has committed what is queued, then stops it; later offers are dropped and counted.
    pub(crate) fn close(&self) {
        if let Some(recorder) = self.recorder.lock().take() {
            // Blocking here is fine: this is the shutdown path, and the writer is draining the queue.
            let _ = recorder.queue.send(ToWriter::Close);
        }
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }

    /// Runs `f` on a pooled read connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.config.path, None)?,
        };
        let result = f(&conn);
        let mut readers = self.readers.lock();
        if readers.len() < 8 {
            readers.push(conn);
        }
        result
    }

    pub(crate) fn status(&self) -> StoreStatus {
        StoreStatus {
            path: self.config.path.clone(),
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            degraded: self.shared.degraded.lock().clone(),
            used_bytes: self.read(writer::used_bytes).unwrap_or(0),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
