//! Live updates: a thread watches the index for commits (SQLite's
//! `data_version`, a few times a second) and every page listening on
//! `/api/events` is told, so it reloads what it shows. A page that
//! reconnects reloads too: nothing committed meanwhile is missed.
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::watch;

use crate::AppState;

/// How often the index is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Starts the watching thread; the value counts the commits seen.
pub(crate) fn watch_index(db: PathBuf) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    std::thread::Builder::new()
        .name("pcapidx-serve-watch".into())
        .spawn(move || {
            let mut store = None;
            let mut last = None;
            let mut seen = 0u64;
            while !tx.is_closed() {
                if store.is_none() {
                    store = pcapidx_store::Store::open_read_only(&db).ok();
                }
                // A version that cannot be read (the index being replaced,
                // or not made yet) is looked for again with a new connection.
                match store.as_ref().map(pcapidx_store::Store::data_version) {
                    Some(Ok(v)) => {
                        if last.is_some_and(|l| l != v) {
                            seen += 1;
                            let _ = tx.send(seen);
                        }
                        last = Some(v);
                    }
                    _ => store = None,
                }
                std::thread::sleep(POLL);
            }
        })
        .ok();
    rx
}

pub(crate) async fn events(
    State(st): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.changes.clone();
    let first = *rx.borrow();
    // The first event says where the count stands, so that a page knows it
    // is connected; each later one, that something was committed.
    let stream = futures_util::stream::unfold((rx, Some(first)), |(mut rx, first)| async move {
        if let Some(n) = first {
            return Some((Ok(change(n)), (rx, None)));
        }
        rx.changed().await.ok()?;
        let n = *rx.borrow_and_update();
        Some((Ok(change(n)), (rx, None)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn change(n: u64) -> Event {
    Event::default()
        .event("change")
        .data(format!("{{\"commits\":{n}}}"))
}
