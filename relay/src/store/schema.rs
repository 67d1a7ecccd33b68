//! The store's schema and its migrations: the only place that knows the tables.
//!
//! Migrations are numbered steps applied in order inside one transaction each, and `PRAGMA user_version` records
//! the last one applied. A database written by any earlier version opens by applying the missing steps; one
//! written by a newer version (a higher `user_version`) is refused rather than misread.

use rusqlite::Connection;

use super::StoreError;

/// Each step's SQL, in order; step `n` (1-based) brings the database to version `n`. Never edit a released step:
/// add a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: instruments, ticks, one-minute candles, channel events.
    "CREATE TABLE instruments (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL UNIQUE
    );
    CREATE TABLE ticks (
        instrument INTEGER NOT NULL REFERENCES instruments(id),
        ts INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        price REAL NOT NULL,
        bid REAL,
        ask REAL,
        volume REAL,
        provider TEXT NOT NULL
    );
    CREATE INDEX ticks_by_time ON ticks(instrument, ts);
    CREATE INDEX ticks_by_recv ON ticks(recv);
    CREATE TABLE candles_1m (
        instrument INTEGER NOT NULL REFERENCES instruments(id),
        start INTEGER NOT NULL,
        open REAL NOT NULL,
        high REAL NOT NULL,
        low REAL NOT NULL,
        close REAL NOT NULL,
        volume REAL NOT NULL DEFAULT 0,
        ticks INTEGER NOT NULL,
        PRIMARY KEY (instrument, start)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        channel INTEGER NOT NULL REFERENCES instruments(id),
        ts INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events(channel, ts);
    CREATE INDEX events_by_recv ON events(recv);",
    // 2: daily rollups, kept much longer than minutes.
    "CREATE TABLE candles_1d (
        instrument INTEGER NOT NULL REFERENCES instruments(id),
        start INTEGER NOT NULL,
        open REAL NOT NULL,
        high REAL NOT NULL,
        low REAL NOT NULL,
        close REAL NOT NULL,
        volume REAL NOT NULL DEFAULT 0,
        ticks INTEGER NOT NULL,
        PRIMARY KEY (instrument, start)
    ) WITHOUT ROWID;",
    // 3: the paper broker's accounts, orders, positions and its append-only ledger of fills. An order's row
    // keeps the wire form (JSON) beside the columns queries filter on.
    "CREATE TABLE broker_accounts (
        id TEXT PRIMARY KEY,
        cash REAL NOT NULL,
        realized REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE broker_orders (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES broker_accounts(id),
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX broker_orders_by_account ON broker_orders(account, status);
    CREATE TABLE broker_positions (
        account TEXT NOT NULL REFERENCES broker_accounts(id),
        symbol TEXT NOT NULL,
        qty REAL NOT NULL,
        avg_cost REAL NOT NULL,
        realized REAL NOT NULL,
        PRIMARY KEY (account, symbol)
    ) WITHOUT ROWID;
    CREATE TABLE broker_fills (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL REFERENCES broker_accounts(id),
        order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty REAL NOT NULL,
        price REAL NOT NULL,
        commission REAL NOT NULL,
        ts INTEGER NOT NULL
    );
    CREATE INDEX broker_fills_by_account ON broker_fills(account, ts);",
];

/// The version this build writes.
pub(super) fn current() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings `conn` to the current version; returns the version it found.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > current() {
        return Err(StoreError::TooNew { found, supported: current() });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn every_earlier_version_migrates_to_the_current_schema_keeping_its_rows() {
        let mut fresh = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut fresh).unwrap(), 0);
        let expected = tables(&fresh);
        for from in 0..=current() {
            let mut conn = Connection::open_in_memory().unwrap();
            // Build version `from` exactly as that release did, with a row in it.
            for (i, step) in MIGRATIONS.iter().enumerate().take(from as usize) {
                conn.execute_batch(step).unwrap();
                conn.pragma_update(None, "user_version", i as u32 + 1).unwrap();
            }
            if from >= 1 {
                conn.execute("INSERT INTO instruments (symbol) VALUES ('AAPL')", []).unwrap();
            }
            assert_eq!(migrate(&mut conn).unwrap(), from);
            assert_eq!(tables(&conn), expected, "from version {from}");
            let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(version, current());
            let rows: i64 = conn.query_row("SELECT count(*) FROM instruments", [], |r| r.get(0)).unwrap();
            assert_eq!(rows, i64::from(from >= 1), "from version {from}");
        }
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", current() + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::TooNew { .. })));
    }
}
