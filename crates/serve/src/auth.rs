//! The token: by `Authorization: Bearer`, by the cookie a share link sets,
//! or by `?token=` on any URL (which sets the cookie). Compared in constant
//! time.
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::api::ApiError;

const COOKIE: &str = "pcapidx_token";

pub(crate) async fn check(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(token) = st.cfg.token.as_deref() else {
        return next.run(req).await;
    };
    let from_query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let given = bearer(req.headers())
        .or_else(|| cookie(req.headers()))
        .or(from_query.clone());
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes())));
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a token is required: open the share link that `pcapidx serve` printed, or send \
             `Authorization: Bearer TOKEN`",
        )
        .into_response();
    }
    let mut resp = next.run(req).await;
    if from_query.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn bearer(h: &HeaderMap) -> Option<String> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

fn cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}
