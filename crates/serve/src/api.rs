//! The JSON API. Each handler parses its query string, opens a guarded
//! read-only connection on a blocking thread, and answers with what the
//! command line prints for the same question (the same query builders and
//! printers), or a JSON error with a 4xx status saying what is wrong.
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pcapidx_output::{Format, RowPrinter};
use pcapidx_store::{FlowQuery, IpNet, QueryRow, Store, StoreError, TimeWindow, Value};

use crate::AppState;

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use pcapidx_store::SqliteCode;
        let text = e.to_string();
        let code = e.sqlite_code();
        match e {
            StoreError::Missing | StoreError::NoIndexYet => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, text)
            }
            _ if code == Some(SqliteCode::OperationInterrupted) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the query ran longer than this server allows; narrow it",
            ),
            _ if code == Some(SqliteCode::AuthorizationForStatementDenied) => Self::new(
                StatusCode::FORBIDDEN,
                "refused: this server answers only queries that read tables (no PRAGMA, ATTACH or writes)",
            ),
            StoreError::Sqlite(_)
            | StoreError::Expression(_)
            | StoreError::ReadOnly(_)
            | StoreError::NoSuch(_) => Self::bad(text),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, text),
        }
    }
}

type Answer = Result<Response, ApiError>;

/// The query string's pairs, repeated names kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn of(q: Option<String>) -> Self {
        Params(
            q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad(format!("{name}: {v:?} is not a number")))
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| !matches!(v, "0" | "false" | "no"))
    }

    /// A time as nanoseconds since the epoch, or ISO-8601.
    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .or_else(|| pcapidx_store::parse_iso(v))
                    .ok_or_else(|| {
                        ApiError::bad(format!(
                            "{name}: {v:?} is neither nanoseconds since the epoch nor an ISO-8601 time"
                        ))
                    })
            })
            .transpose()
    }

    fn format(&self) -> Result<Format, ApiError> {
        match self.get("format").unwrap_or("json") {
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            f => Err(ApiError::bad(format!(
                "format: {f:?} is not one of json, jsonl, csv"
            ))),
        }
    }
}

fn content_type(f: Format) -> &'static str {
    match f {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Jsonl => "application/x-ndjson",
        _ => "application/json",
    }
}

/// Runs `f` on a blocking thread with a guarded read-only connection.
async fn with_store<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (db, budget) = (st.cfg.db.clone(), st.cfg.query_budget);
    tokio::task::spawn_blocking(move || {
        let mut store = Store::open_read_only(&db)?;
        store.guard(budget)?;
        f(&mut store)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The flow filters of the CLI (`where`, `host`, `grep`, `ignore_case`,
/// `since`, `until`, and `file`: the CLI's `--in-file` by file id), checked.
struct Filters {
    where_: Option<String>,
    hosts: Vec<IpNet>,
    grep: Vec<String>,
    ignore_case: bool,
    since_ns: Option<i64>,
    until_ns: Option<i64>,
    in_files: Vec<i64>,
}

impl Filters {
    fn of(p: &Params) -> Result<Self, ApiError> {
        let hosts = p
            .all("host")
            .iter()
            .map(|h| pcapidx_store::parse_cidr(h).map_err(|e| ApiError::bad(format!("host: {e}"))))
            .collect::<Result<_, _>>()?;
        let grep = p.all("grep");
        for g in &grep {
            pcapidx_store::check_regexp(g).map_err(|e| ApiError::bad(format!("grep: {e}")))?;
        }
        let in_files = p
            .all("file")
            .iter()
            .map(|f| {
                f.parse::<i64>()
                    .map_err(|_| ApiError::bad(format!("file: {f:?} is not a file id")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Filters {
            where_: p.get("where").map(str::to_string),
            hosts,
            grep,
            ignore_case: p.flag("ignore_case"),
            since_ns: p.time("since")?,
            until_ns: p.time("until")?,
            in_files,
        })
    }

    fn query(&self) -> FlowQuery<'_> {
        FlowQuery {
            where_: self.where_.as_deref(),
            grep: &self.grep,
            ignore_case: self.ignore_case,
            hosts: &self.hosts,
            since_ns: self.since_ns,
            until_ns: self.until_ns,
            in_files: self.in_files.clone(),
            ..FlowQuery::default()
        }
    }

    fn check(&self, store: &Store) -> Result<(), ApiError> {
        if let Some(w) = &self.where_ {
            store
                .check_where(w)
                .map_err(|e| ApiError::bad(format!("where {w:?}: {e}")))?;
        }
        Ok(())
    }
}

/// Rows printed as the CLI prints them.
struct Printed {
    body: Vec<u8>,
    rows: u64,
    /// The last row's values and the column names (for a paging cursor).
    last: Vec<Value>,
    columns: Vec<String>,
    /// Cut at the cap.
    cut: bool,
}

/// Rows of `sql` printed as the CLI prints them, at most `cap`.
fn print(
    store: &Store,
    sql: &str,
    params: &[Value],
    format: Format,
    cap: u64,
) -> Result<Printed, ApiError> {
    let mut out = Vec::new();
    let mut p = RowPrinter::new(&mut out, format);
    let mut last = Vec::new();
    let mut columns = Vec::new();
    let mut cut = false;
    let r = store.query::<StoreError>(sql, params, |row| {
        match row {
            QueryRow::Columns(c) => {
                columns = c.to_vec();
                p.columns(c)
                    .map_err(|e| StoreError::Expression(e.to_string()))?;
            }
            QueryRow::Values(v) => {
                if p.rows() >= cap {
                    cut = true;
                    return Err(StoreError::Expression("cap".into()));
                }
                p.row(v)
                    .map_err(|e| StoreError::Expression(e.to_string()))?;
                last = v.to_vec();
            }
        }
        Ok(())
    });
    if !cut {
        r?;
    }
    let rows = p.rows();
    p.finish().map_err(|e| ApiError::bad(e.to_string()))?;
    Ok(Printed {
        body: out,
        rows,
        last,
        columns,
        cut,
    })
}

fn body(format: Format, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type(format))], bytes).into_response()
}

/// `GET /api/flows`: `pcapidx flows --format json` with the same filters,
/// plus `sort`, `desc`, `limit` (clamped to the server's cap) and `after`
/// (the `X-Next-Cursor` of the page before).
pub(crate) async fn flows(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let filters = Filters::of(&p)?;
    let format = p.format()?;
    let sort = p.get("sort").map(str::to_string);
    if let Some(s) = &sort
        && !pcapidx_store::sort_columns().any(|c| c == s)
    {
        return Err(ApiError::bad(format!(
            "sort: {s:?} is not a column of flows ({})",
            pcapidx_store::sort_columns().collect::<Vec<_>>().join(", ")
        )));
    }
    let desc = p.flag("desc");
    let cap = st.cfg.max_rows;
    let limit = p.number::<u64>("limit")?.unwrap_or(100).min(cap);
    let after = p.get("after").map(parse_cursor).transpose()?;
    with_store(&st, move |store| {
        filters.check(store)?;
        let q = FlowQuery {
            sort: sort.as_deref(),
            desc,
            limit: Some(limit),
            after,
            ..filters.query()
        };
        let (sql, params) = pcapidx_store::flows_sql(&q);
        let Printed {
            body: out,
            rows,
            last,
            columns,
            ..
        } = print(store, &sql, &params, format, limit)?;
        let mut r = body(format, out);
        if rows == limit && limit > 0 {
            let at = |name: &str| columns.iter().position(|c| c == name);
            let id = at("flow_id").and_then(|i| last.get(i)).cloned();
            let v = sort
                .as_deref()
                .and_then(at)
                .and_then(|i| last.get(i))
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(Value::Integer(id)) = id {
                let cursor = serde_json::json!([pcapidx_output::json(&v), id]).to_string();
                if let Ok(h) = HeaderValue::from_str(&cursor) {
                    r.headers_mut().insert("x-next-cursor", h);
                }
            }
        }
        Ok(r)
    })
    .await
}

/// `[sort value, flow id]`, as `X-Next-Cursor` gives it.
fn parse_cursor(text: &str) -> Result<(Value, u64), ApiError> {
    let bad = || {
        ApiError::bad(format!(
            "after: {text:?} is not a cursor from X-Next-Cursor"
        ))
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let (Some(sv), Some(id)) = (v.get(0), v.get(1).and_then(serde_json::Value::as_u64)) else {
        return Err(bad());
    };
    let sv = match sv {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or_else(bad)?),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        _ => return Err(bad()),
    };
    Ok((sv, id))
}

/// `GET /api/flows/count`: how many flows the filters match.
pub(crate) async fn flow_count(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let filters = Filters::of(&p)?;
    with_store(&st, move |store| {
        filters.check(store)?;
        let q = FlowQuery {
            ids_only: true,
            ..filters.query()
        };
        let (sql, params) = pcapidx_store::flows_sql(&q);
        // All of them: the kept tallies know, without counting rows.
        let (sql, params) = if q.filters() {
            (format!("SELECT count(*) AS flows FROM ({sql})"), params)
        } else {
            let all = "SELECT coalesce(sum(flows), 0) AS flows FROM tallies WHERE kind = 1";
            (all.to_string(), Vec::new())
        };
        let out = print(store, &sql, &params, Format::Jsonl, 1)?.body;
        Ok(body(Format::Json, out))
    })
    .await
}

fn flow_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("{text:?} is not a flow id")))
}

/// `GET /api/flows/{id}`: one flow, every column.
pub(crate) async fn flow(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let id = flow_id(&id)?;
    with_store(&st, move |store| {
        let w = format!("flow_id = {id}");
        let q = FlowQuery {
            where_: Some(&w),
            ..FlowQuery::default()
        };
        let (sql, params) = pcapidx_store::flows_sql(&q);
        let Printed {
            body: out, rows, ..
        } = print(store, &sql, &params, Format::Jsonl, 1)?;
        if rows == 0 {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no flow {id} in the index"),
            ));
        }
        Ok(body(Format::Json, out))
    })
    .await
}

/// `GET /api/flows/{id}/packets?offset=N&limit=N`: a page of its packets
/// in the order the flow received them, with their files' paths.
pub(crate) async fn packets(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let id = flow_id(&id)?;
    let p = Params::of(q);
    let cap = st.cfg.max_rows;
    let limit = p.number::<u64>("limit")?.unwrap_or(500).min(cap);
    let offset = p.number::<u64>("offset")?.unwrap_or(0);
    let format = p.format()?;
    with_store(&st, move |store| {
        let sql = "SELECT p.ts_ns, p.direction, p.orig_len, p.caplen, f.path, p.offset, p.file_id
                   FROM packets p JOIN files f USING (file_id) WHERE p.flow_id = ?1
                   LIMIT ?2 OFFSET ?3";
        let params = [
            Value::Integer(id as i64),
            Value::Integer(limit as i64),
            Value::Integer(offset as i64),
        ];
        let out = print(store, sql, &params, format, limit)?.body;
        Ok(body(format, out))
    })
    .await
}

fn window(p: &Params) -> Result<TimeWindow, ApiError> {
    Ok(TimeWindow {
        since_ns: p.time("since")?,
        until_ns: p.time("until")?,
    })
}

/// `GET /api/summary?top=N&since=&until=`: `pcapidx summary --format json`.
pub(crate) async fn summary(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let top = p.number::<u32>("top")?.unwrap_or(10).min(1000);
    let w = window(&p)?;
    with_store(&st, move |store| {
        let doc = pcapidx_output::summary_json(store, top, w)?;
        Ok(body(Format::Json, doc.to_string().into_bytes()))
    })
    .await
}

/// `GET /api/timeline?buckets=N`: packets and bytes per time bucket.
pub(crate) async fn timeline(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let buckets = p.number::<usize>("buckets")?.unwrap_or(120);
    let w = window(&p)?;
    with_store(&st, move |store| {
        let (width, b) = store.timeline(buckets, w)?;
        let doc = serde_json::json!({
            "bucket_ns": width,
            "buckets": b.iter().map(|x| serde_json::json!({
                "start_ns": x.start_ns,
                "packets": x.packets,
                "bytes": x.bytes,
            })).collect::<Vec<_>>(),
        });
        Ok(body(Format::Json, doc.to_string().into_bytes()))
    })
    .await
}

/// `GET /api/files?status=S`: `pcapidx files --format json`.
pub(crate) async fn files(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let statuses = p.all("status");
    for s in &statuses {
        if pcapidx_store::FileStatus::parse(s).is_none() {
            return Err(ApiError::bad(format!("status: {s:?} is not a file status")));
        }
    }
    let format = p.format()?;
    let cap = st.cfg.max_rows;
    with_store(&st, move |store| {
        let (sql, params) = pcapidx_store::files_sql(false, &statuses);
        let out = print(store, &sql, &params, format, cap)?.body;
        Ok(body(format, out))
    })
    .await
}

/// `GET /api/macs?limit=N`: `pcapidx macs --format json`.
pub(crate) async fn macs(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let cap = st.cfg.max_rows;
    let limit = p.number::<u64>("limit")?.map_or(cap, |l| l.min(cap));
    let format = p.format()?;
    with_store(&st, move |store| {
        let t = store.macs(false, Some(limit))?;
        let mut out = Vec::new();
        let mut pr = RowPrinter::new(&mut out, format);
        let io = |e: std::io::Error| ApiError::bad(e.to_string());
        pr.columns(&t.columns).map_err(io)?;
        for r in &t.rows {
            pr.row(r).map_err(io)?;
        }
        pr.finish().map_err(io)?;
        Ok(body(format, out))
    })
    .await
}

/// `GET /api/sql?q=SQL`: rows as a JSON array of objects, at most the
/// server's cap (`X-Truncated: true` when cut).
pub(crate) async fn sql(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let Some(text) = p.get("q").map(str::to_string) else {
        return Err(ApiError::bad(
            "q: give the SQL to run, e.g. ?q=SELECT count(*) FROM flows",
        ));
    };
    let format = p.format()?;
    let cap = st.cfg.max_rows;
    with_store(&st, move |store| {
        let Printed { body: out, cut, .. } = print(store, &text, &[], format, cap)?;
        let mut r = body(format, out);
        if cut {
            r.headers_mut()
                .insert("x-truncated", HeaderValue::from_static("true"));
        }
        Ok(r)
    })
    .await
}

/// A `Write` that hands 64 KiB pieces to the response body, waiting while
/// the client is behind (a slow download holds a few pieces, not the file).
struct ToBody {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const PIECE: usize = 64 * 1024;

impl Write for ToBody {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

/// `GET /api/carve?flow_id=N` (repeatable) or the flow filters: the bytes
/// `pcapidx carve ... -o -` writes, streamed.
pub(crate) async fn carve(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Answer {
    let p = Params::of(q);
    let ids: Vec<u64> = p
        .all("flow_id")
        .iter()
        .map(|s| flow_id(s))
        .collect::<Result<_, _>>()?;
    let filters = Filters::of(&p)?;
    let container = match p.get("format").unwrap_or("auto") {
        "auto" => pcapidx_carve::Container::Auto,
        "pcap" => pcapidx_carve::Container::Pcap,
        "pcapng" => pcapidx_carve::Container::PcapNg,
        f => {
            return Err(ApiError::bad(format!(
                "format: {f:?} is not one of auto, pcap, pcapng"
            )));
        }
    };
    if ids.is_empty()
        && p.get("where").is_none()
        && p.all("host").is_empty()
        && p.all("grep").is_empty()
    {
        return Err(ApiError::bad(
            "give flow_id=N (repeatable) or flow filters (where, host, grep, since, until)",
        ));
    }
    let plan = with_store(&st, move |store| {
        filters.check(store)?;
        let ids = if ids.is_empty() {
            store.flow_ids(&filters.query())?
        } else {
            ids
        };
        if ids.is_empty() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "no flow matches"));
        }
        let window = pcapidx_carve::Window {
            since_ns: filters.since_ns,
            until_ns: filters.until_ns,
        };
        // Streaming: the first bytes go out at once, each record checked as
        // it is written.
        match pcapidx_carve::plan_streaming(store, &ids, container, window) {
            Err(pcapidx_carve::CarveError::NoSuchFlow(id)) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no flow {id} in the index"),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            )),
            Ok(plan) if plan.packets() == 0 => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no packet of the flows is inside since/until",
            )),
            Ok(plan) => Ok((plan, ids.len())),
        }
    })
    .await?;
    let (plan, flows) = plan;
    let name = match (flows, plan.pcapng()) {
        (1, true) => "flow.pcapng",
        (1, false) => "flow.pcap",
        (_, true) => "flows.pcapng",
        (_, false) => "flows.pcap",
    };
    let left_out: usize = plan.unavailable.iter().map(|u| u.packets).sum();
    let mut r = streamed("application/vnd.tcpdump.pcap", move |out| {
        plan.write(out).map(drop).map_err(|e| e.to_string())
    });
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if left_out > 0
        && let Ok(v) = HeaderValue::from_str(&left_out.to_string())
    {
        h.insert("x-packets-left-out", v);
    }
    Ok(r)
}

/// Streams what a blocking `produce` writes as the response body.
fn streamed(
    content_type: &'static str,
    produce: impl FnOnce(&mut ToBody) -> Result<(), String> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ToBody {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIECE),
        };
        let r = produce(&mut out).and_then(|()| out.flush().map_err(|e| e.to_string()));
        if let Err(e) = r {
            // The client sees a cut response rather than one that looks whole.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `GET /api/flows/{id}/stream?format=ascii|hex|json|jsonl&direction=both|client|server`:
/// the bytes `pcapidx follow --flow-id N --format F -q` prints.
pub(crate) async fn stream(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    use pcapidx_output::follow::{Direction, FollowFormat, Gaps, Printer};
    let id = flow_id(&id)?;
    let p = Params::of(q);
    let (format, ctype) = match p.get("format").unwrap_or("ascii") {
        "ascii" => (FollowFormat::Ascii, "text/plain; charset=utf-8"),
        "hex" => (FollowFormat::Hex, "text/plain; charset=utf-8"),
        "json" => (FollowFormat::Json, "application/json"),
        "jsonl" => (FollowFormat::Jsonl, "application/x-ndjson"),
        f => {
            return Err(ApiError::bad(format!(
                "format: {f:?} is not one of ascii, hex, json, jsonl"
            )));
        }
    };
    let direction = match p.get("direction").unwrap_or("both") {
        "both" => Direction::Both,
        "client" => Direction::Client,
        "server" => Direction::Server,
        d => {
            return Err(ApiError::bad(format!(
                "direction: {d:?} is not one of both, client, server"
            )));
        }
    };
    // The flow is looked up first, so that a wrong id is a 404, not a cut body.
    let flow = with_store(&st, move |store| match pcapidx_stream::flow(store, id) {
        Ok(f) => Ok(f),
        Err(pcapidx_stream::FollowError::NoSuchFlow(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no flow {id} in the index"),
        )),
        Err(e) => Err(ApiError::bad(e.to_string())),
    })
    .await?;
    let (db, budget) = (st.cfg.db.clone(), st.cfg.query_budget);
    Ok(streamed(ctype, move |out| {
        let mut store = Store::open_read_only(&db).map_err(|e| e.to_string())?;
        store.guard(budget).map_err(|e| e.to_string())?;
        let mut pr = Printer::new(format, direction, Gaps::Zero, out);
        pr.start().map_err(|e| e.to_string())?;
        pr.begin(&flow).map_err(|e| e.to_string())?;
        let done = pcapidx_stream::follow(&store, &flow, Default::default(), &mut |e| {
            pr.event(&flow, e)
        })
        .map_err(|e| e.to_string())?;
        pr.end(&flow, &done).map_err(|e| e.to_string())?;
        pr.close().map_err(|e| e.to_string())
    }))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such page: the API is under /api/ (flows, flows/{id}, flows/{id}/packets, flows/{id}/stream, flows/count, summary, timeline, files, macs, sql, carve, events)",
    )
}

/// The largest event document taken (AWS sends at most a few kilobytes).
pub(crate) const EVENT_BODY_LIMIT: usize = 1 << 20;

/// `POST /api/s3-events`: an S3 event notification (a store's webhook),
/// whose created objects are indexed. Refused without a token set: this is
/// the one request that writes to the index.
pub(crate) async fn s3_event(State(st): State<Arc<AppState>>, doc: Bytes) -> Answer {
    let Some(handler) = st.cfg.on_s3_event.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "events are not taken here: start `pcapidx serve --s3-events`",
        ));
    };
    if st.cfg.token.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "events need a token: start `pcapidx serve --s3-events` with --token",
        ));
    }
    let text = std::str::from_utf8(&doc).map_err(|_| ApiError::bad("the body is not UTF-8"))?;
    let event = pcapidx_source::event::parse(text).map_err(|e| ApiError::bad(e.to_string()))?;
    let done = tokio::task::spawn_blocking(move || handler(event))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match done {
        Ok(v) => Ok(body(Format::Json, v.to_string().into_bytes())),
        Err(crate::EventRefused::Busy(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(crate::EventRefused::Failed(why)) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why))
        }
    }
}
