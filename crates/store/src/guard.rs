//! Connections that serve other people's queries (`pcapidx serve`): on top
//! of read-only opening, an authorizer lets a statement only read tables
//! and call functions (no ATTACH, no PRAGMA, no write of any kind, whatever
//! SQLite would otherwise allow a read-only connection), and a deadline
//! interrupts any statement that runs too long.
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::{Result, Store};

impl Store {
    /// From now on statements on this connection may only read, and each
    /// is interrupted once `budget` has passed since this call (SQLite
    /// then reports `interrupted`).
    pub fn guard(&mut self, budget: Duration) -> Result<()> {
        self.conn
            .authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
                AuthAction::Select
                | AuthAction::Read { .. }
                | AuthAction::Function { .. }
                | AuthAction::Recursive => Authorization::Allow,
                _ => Authorization::Deny,
            }))?;
        let deadline = Instant::now() + budget;
        // Every 10k virtual-machine steps: well under a millisecond.
        self.conn
            .progress_handler(10_000, Some(move || Instant::now() > deadline))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_connection_only_reads_and_stops_on_time() {
        let dir = std::env::temp_dir().join(format!("pcapidx-guard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("i.db");
        drop(Store::open(&db).unwrap());
        let mut store = Store::open_read_only(&db).unwrap();
        store.guard(Duration::from_millis(200)).unwrap();
        let run = |sql: &str| store.query::<crate::StoreError>(sql, &[], |_| Ok(()));
        assert!(run("SELECT count(*) FROM flows").is_ok());
        for refused in [
            "ATTACH DATABASE '/etc/passwd' AS p",
            "PRAGMA table_info(flows)",
            "SELECT * FROM pragma_table_info('flows')",
            "VACUUM INTO '/tmp/x.db'",
            "DELETE FROM flow_data",
        ] {
            assert!(run(refused).is_err(), "{refused}");
        }
        let started = Instant::now();
        let e = run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            .unwrap_err();
        assert!(e.to_string().contains("interrupt"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
