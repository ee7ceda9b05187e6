//! Checkpoints on a thread of their own. SQLite folds the WAL into the
//! database file on the committing thread, right after the commit, and
//! waits there for two fsyncs (tens of ms each on a large load) while the
//! rest of the pipeline backs up behind it. With a [`Checkpointer`] the
//! writer turns automatic checkpoints off and wakes this thread instead: it
//! checkpoints through its own connection (PASSIVE: in WAL mode a
//! checkpoint does not block the writer) while the writer goes on.
//!
//! The WAL starts over from its beginning only when a write transaction
//! begins after a checkpoint has copied all of it; a writer that always
//! begins while one is under way makes the WAL grow to the size of the
//! database. So once the WAL has passed a limit, the writer holds its
//! writes until the checkpoint is done (`Store::wal_wants_restart`). Below
//! the limit it does not: holding them for the 0.2 s a first checkpoint
//! takes on the 1 GB benchmark left them all to be written after the last
//! byte.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// A checkpointing thread, or nothing (the default: automatic checkpoints).
#[derive(Default)]
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<rusqlite::Result<()>>>,
    /// Wake-ups asked for, and how many of them a finished checkpoint covers.
    asked: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    wal_limit: u64,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path, wal_limit: u64) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // One pending wake-up is enough: a checkpoint copies everything
        // committed before it starts.
        let (wake, woken) = sync_channel::<()>(1);
        let asked = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let (a, d) = (asked.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("pcapidx-checkpoint".into())
            .spawn(move || {
                for () in woken {
                    let covers = a.load(Ordering::Acquire);
                    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    d.store(covers, Ordering::Release);
                    r?;
                }
                Ok(())
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            asked,
            done,
            wal_limit,
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// After a commit: copy it into the database file soon.
    pub(crate) fn wake(&self) {
        if let Some(w) = &self.wake {
            self.asked.fetch_add(1, Ordering::AcqRel);
            // Full: a wake-up is already pending. Disconnected: the thread
            // stopped on an error, which `stop` reports.
            let _ = w.try_send(());
        }
    }

    /// Is a commit still waiting to be copied?
    pub(crate) fn pending(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
            && self.done.load(Ordering::Acquire) < self.asked.load(Ordering::Acquire)
    }

    /// WAL size past which a writer should wait for a pending checkpoint.
    pub(crate) fn wal_limit(&self) -> u64 {
        self.wal_limit
    }

    /// Waits for the checkpoint under way, if any, and ends the thread.
    pub(crate) fn stop(&mut self) -> Result<()> {
        self.wake = None;
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(r)) => Ok(r?),
            Some(Err(_)) => Err(StoreError::Thread(std::io::Error::other(
                "the checkpoint thread panicked",
            ))),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
