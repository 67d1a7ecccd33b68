//! The broker's journal: accounts, orders, positions and the append-only ledger of fills, in the store's
//! database but on a connection of its own with `synchronous = FULL`, so a change is on disk before the broker
//! acknowledges it. Each change is one transaction: a fill and the cash, position and order it moves land
//! together or not at all, whatever kills the process.
//!
//! The records are plain values; what an order means is the broker's business (it hands over the order's wire
//! form as JSON text).

use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection};

use super::{schema, StoreError};

/// One order as journalled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderRow {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    /// The order's wire form (JSON).
    pub(crate) body: String,
}

/// One fill of the ledger.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FillRow {
    pub(crate) id: i64,
    pub(crate) order_id: String,
    pub(crate) symbol: String,
    pub(crate) side: String,
    pub(crate) qty: f64,
    pub(crate) price: f64,
    pub(crate) commission: f64,
    pub(crate) ts: i64,
}

/// One position; a zero quantity closes it (its row is deleted).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PositionRow {
    pub(crate) symbol: String,
    pub(crate) qty: f64,
    pub(crate) avg_cost: f64,
    pub(crate) realized: f64,
}

/// What one broker operation changed in one account.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AccountChange {
    pub(crate) account: String,
    /// Flushed to disk before `apply` returns (`synchronous = FULL`); otherwise committed in WAL with
    /// `NORMAL`, which survives a killed process but maybe not a power cut — for trailing-stop moves, which
    /// happen on many ticks and must not stall the ingest path on a flush each.
    pub(crate) durable: bool,
    pub(crate) cash: f64,
    pub(crate) realized: f64,
    pub(crate) orders: Vec<OrderRow>,
    pub(crate) fills: Vec<FillRow>,
    pub(crate) positions: Vec<PositionRow>,
}

/// One account as loaded at startup.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AccountState {
    pub(crate) account: String,
    pub(crate) cash: f64,
    pub(crate) realized: f64,
    pub(crate) orders: Vec<OrderRow>,
    pub(crate) positions: Vec<PositionRow>,
}

/// The broker's synchronous connection.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The connection, and whether it is in `synchronous = FULL` now.
    conn: Mutex<(Connection, bool)>,
}

impl Journal {
    /// Opens the journal on the database at `path` (creating or migrating it).
    pub(crate) fn open(path: &Path) -> Result<Journal, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_owned(), source })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed fill survives a power loss too, not only a killed process.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Journal { conn: Mutex::new((conn, true)) })
    }

    /// Writes one change in one transaction.
    pub(crate) fn apply(&self, change: &AccountChange) -> Result<(), StoreError> {
        let mut guard = self.conn.lock();
        let (conn, full) = &mut *guard;
        if *full != change.durable {
            conn.pragma_update(None, "synchronous", if change.durable { "FULL" } else { "NORMAL" })?;
            *full = change.durable;
        }
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO broker_accounts (id, cash, realized) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET cash = excluded.cash, realized = excluded.realized",
            params![change.account, change.cash, change.realized],
        )?;
        for o in &change.orders {
            tx.execute(
                "INSERT INTO broker_orders (id, account, status, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body",
                params![o.id, change.account, o.status, o.created_at, o.body],
            )?;
        }
        for f in &change.fills {
            tx.execute(
                "INSERT INTO broker_fills (id, account, order_id, symbol, side, qty, price, commission, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![f.id, change.account, f.order_id, f.symbol, f.side, f.qty, f.price, f.commission, f.ts],
            )?;
        }
        for p in &change.positions {
            if p.qty == 0.0 {
                tx.execute(
                    "DELETE FROM broker_positions WHERE account = ?1 AND symbol = ?2",
                    params![change.account, p.symbol],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO broker_positions (account, symbol, qty, avg_cost, realized) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(account, symbol) DO UPDATE SET qty = excluded.qty, avg_cost = excluded.avg_cost,
                     realized = excluded.realized",
                    params![change.account, p.symbol, p.qty, p.avg_cost, p.realized],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every account with its orders and positions, and the next free fill id.
    pub(crate) fn load(&self) -> Result<(Vec<AccountState>, i64), StoreError> {
        let guard = self.conn.lock();
        let conn = &guard.0;
        let mut accounts: Vec<AccountState> = conn
            .prepare("SELECT id, cash, realized FROM broker_accounts ORDER BY id")?
            .query_map([], |r| {
                Ok(AccountState { account: r.get(0)?, cash: r.get(1)?, realized: r.get(2)?, ..Default::default() })
            })?
            .collect::<Result<_, _>>()?;
        let mut orders = conn.prepare("SELECT id, status, created_at, body FROM broker_orders WHERE account = ?1")?;
        let mut positions =
            conn.prepare("SELECT symbol, qty, avg_cost, realized FROM broker_positions WHERE account = ?1")?;
        for a in &mut accounts {
            a.orders = orders
                .query_map([&a.account], |r| {
                    Ok(OrderRow { id: r.get(0)?, status: r.get(1)?, created_at: r.get(2)?, body: r.get(3)? })
                })?
                .collect::<Result<_, _>>()?;
            a.positions = positions
                .query_map([&a.account], |r| {
                    Ok(PositionRow { symbol: r.get(0)?, qty: r.get(1)?, avg_cost: r.get(2)?, realized: r.get(3)? })
                })?
                .collect::<Result<_, _>>()?;
        }
        let next: i64 = conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM broker_fills", [], |r| r.get(0))?;
        Ok((accounts, next))
    }

    /// An account's fills, newest first.
    pub(crate) fn fills(&self, account: &str, limit: usize) -> Result<Vec<FillRow>, StoreError> {
        let guard = self.conn.lock();
        let conn = &guard.0;
        let mut stmt = conn.prepare(
            "SELECT id, order_id, symbol, side, qty, price, commission, ts FROM broker_fills
             WHERE account = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![account, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(FillRow {
                    id: r.get(0)?,
                    order_id: r.get(1)?,
                    symbol: r.get(2)?,
                    side: r.get(3)?,
                    qty: r.get(4)?,
                    price: r.get(5)?,
                    commission: r.get(6)?,
                    ts: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_lands_whole_and_loads_back_exactly() {
        let dir = std::env::temp_dir().join(format!("hamster-journal-{}", std::process::id()));
        let path = dir.join("j.db");
        let _ = std::fs::remove_file(&path);
        let cash = 100_000.0 - 3.0 * 187.123_456_789 - 0.35;
        {
            let j = Journal::open(&path).unwrap();
            j.apply(&AccountChange {
                account: "alice".into(),
                durable: true,
                cash,
                realized: -0.35,
                orders: vec![OrderRow { id: "o1".into(), status: "filled".into(), created_at: 5, body: "{}".into() }],
                fills: vec![FillRow {
                    id: 1,
                    order_id: "o1".into(),
                    symbol: "AAPL".into(),
                    side: "buy".into(),
                    qty: 3.0,
                    price: 187.123_456_789,
                    commission: 0.35,
                    ts: 5,
                }],
                positions: vec![PositionRow {
                    symbol: "AAPL".into(),
                    qty: 3.0,
                    avg_cost: 187.123_456_789,
                    realized: 0.0,
                }],
            })
            .unwrap();
            // A fill id used twice breaks the ledger's append-only rule: the whole change is refused.
            let dup = AccountChange {
                account: "alice".into(),
                cash: 0.0,
                fills: vec![FillRow { id: 1, ..Default::default() }],
                ..Default::default()
            };
            assert!(j.apply(&dup).is_err());
        }
        let j = Journal::open(&path).unwrap();
        let (accounts, next) = j.load().unwrap();
        assert_eq!(next, 2);
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].cash.to_bits(), cash.to_bits());
        assert_eq!(accounts[0].positions[0].qty, 3.0);
        assert_eq!(j.fills("alice", 10).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
