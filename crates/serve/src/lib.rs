//! `pcapidx serve`: an index shared read-only over HTTP — a web page and
//! the JSON API it uses, which mirrors the command line (the same query
//! builders and printers, so the same bytes) — live as `pcapidx index`
//! commits.
//!
//! Invariants:
//! - Nothing served changes the index or reads a file the index does not
//!   name: every request opens its own read-only connection, guarded
//!   (`Store::guard`: reads only, a time budget), and carving reads only
//!   the indexed records of indexed files.
//! - With a token set, every request without it is refused (401), on
//!   loopback too, the page included.
//! - Memory per request is bounded: results are capped at `max_rows`, and
//!   carves stream through a bounded channel.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod events;
mod page;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct Config {
    pub db: PathBuf,
    pub listen: SocketAddr,
    /// Required of every request when set.
    pub token: Option<String>,
    /// The longest one query may run.
    pub query_budget: Duration,
    /// The most rows one response holds (a larger `limit` is clamped).
    pub max_rows: u64,
    /// What indexes the objects an S3 event notification POSTed to
    /// `/api/s3-events` names (`None`: that endpoint is off). The one
    /// request that writes: it needs the token, whatever the address.
    pub on_s3_event: Option<EventHandler>,
}

/// Indexes the objects of an event; answers what was done, as JSON.
pub type EventHandler = Arc<
    dyn Fn(pcapidx_source::event::Event) -> Result<serde_json::Value, EventRefused> + Send + Sync,
>;

/// Why an event was not indexed.
#[derive(Debug, Clone)]
pub enum EventRefused {
    /// Another `pcapidx index` holds the index: try again later.
    Busy(String),
    Failed(String),
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db", &self.db)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("s3_events", &self.on_s3_event.is_some())
            .finish()
    }
}

impl Config {
    pub fn new(db: PathBuf, listen: SocketAddr) -> Self {
        Config {
            db,
            listen,
            token: None,
            query_budget: Duration::from_secs(5),
            max_rows: 10_000,
            on_s3_event: None,
        }
    }
}

/// The token a server must require: the one given; else, listening beyond
/// loopback, a new one (unless `no_auth` says, explicitly, to serve
/// anyone); on loopback, none.
pub fn token_for(
    listen: SocketAddr,
    given: Option<&str>,
    no_auth: bool,
) -> Result<Option<String>, ServeError> {
    Ok(match given {
        Some(t) => Some(t.to_string()),
        None if no_auth || listen.ip().is_loopback() => None,
        None => Some(new_token()?),
    })
}

/// A token for the share link: 128 random bits, URL-safe.
pub fn new_token() -> Result<String, ServeError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) struct AppState {
    pub cfg: Config,
    pub changes: tokio::sync::watch::Receiver<u64>,
}

/// Serves until Ctrl-C or SIGTERM; `on_ready` gets the address listened
/// on (with port 0, the one the system chose).
pub fn run(cfg: Config, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let changes = events::watch_index(cfg.db.clone());
        let state = Arc::new(AppState { cfg, changes });
        let app = router(state);
        on_ready(addr);
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .await?;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/favicon.ico", get(page::icon))
        .route("/api/flows", get(api::flows))
        .route("/api/flows/count", get(api::flow_count))
        .route("/api/flows/{id}", get(api::flow))
        .route("/api/flows/{id}/packets", get(api::packets))
        .route("/api/flows/{id}/stream", get(api::stream))
        .route("/api/summary", get(api::summary))
        .route("/api/timeline", get(api::timeline))
        .route("/api/files", get(api::files))
        .route("/api/macs", get(api::macs))
        .route("/api/sql", get(api::sql))
        .route("/api/carve", get(api::carve))
        .route("/api/events", get(events::events))
        .route(
            "/api/s3-events",
            axum::routing::post(api::s3_event)
                .layer(axum::extract::DefaultBodyLimit::max(api::EVENT_BODY_LIMIT)),
        )
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth::check))
        .layer(middleware::map_response(conservative_headers))
        .with_state(state)
}

/// What every response carries: nothing framed, sniffed, or loaded from
/// elsewhere; nothing kept by caches or sent on as a referrer.
async fn conservative_headers(mut r: axum::response::Response) -> axum::response::Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_a_token_is_required_unless_refused_explicitly() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for addr in [any, lan, v6] {
            let t = token_for(addr, None, false).unwrap().unwrap();
            assert_eq!(t.len(), 32);
            assert_ne!(Some(t), token_for(addr, None, false).unwrap(), "random");
            assert_eq!(token_for(addr, None, true).unwrap(), None);
        }
        assert_eq!(token_for(local, None, false).unwrap(), None);
        assert_eq!(
            token_for(local, Some("given"), false).unwrap().as_deref(),
            Some("given")
        );
    }
}
