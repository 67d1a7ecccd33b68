//! The activity log: the last [`LOG_CAPACITY`] things worth telling the user, oldest first.
//!
//! A ring of its own because the reducer writes to it from almost every transition while the activity panel
//! only needs to know when it changed: the entries sit behind one `Rc` that is replaced only when an entry is
//! added, so the panel's props compare by pointer. Each entry gets an increasing id, the panel's list key.

use std::collections::VecDeque;
use std::rc::Rc;

/// Entries kept in the activity log.
pub(crate) const LOG_CAPACITY: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    /// Unique and increasing: the list key.
    pub(crate) id: u64,
    pub(crate) at_ms: i64,
    pub(crate) level: LogLevel,
    pub(crate) text: String,
}

/// The log itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Log {
    entries: Rc<VecDeque<LogEntry>>,
    next_id: u64,
}

impl Log {
    /// Oldest first, at most [`LOG_CAPACITY`].
    pub(crate) fn entries(&self) -> &Rc<VecDeque<LogEntry>> {
        &self.entries
    }

    /// Adds an entry, dropping the oldest when full.
    pub(crate) fn push(&mut self, at_ms: i64, level: LogLevel, text: String) {
        let entries = Rc::make_mut(&mut self.entries);
        if entries.len() == LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(LogEntry { id: self.next_id, at_ms, level, text });
        self.next_id += 1;
    }
}
