//! A client configured the way AWS's own tools are: credentials and region
//! from the standard environment variables, else from the shared profile
//! files (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`);
//! `AWS_ENDPOINT_URL` for an S3-compatible store, addressed path-style, and
//! plain http only when that endpoint is given as `http://`.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `[section]` → key → value, of an INI-style AWS profile file.
fn ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn home_file(var: &str, default: &str) -> Option<PathBuf> {
    env(var)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join(default)))
}

/// The profile's settings: `credentials` first, then `config` (whose
/// sections are `[profile NAME]`, but `[default]`).
fn profile() -> HashMap<String, String> {
    let name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let mut out = HashMap::new();
    if let Some(text) =
        home_file("AWS_CONFIG_FILE", "config").and_then(|p| std::fs::read_to_string(p).ok())
    {
        let mut sections = ini(&text);
        let key = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        if let Some(s) = sections.remove(&key) {
            out.extend(s);
        }
    }
    if let Some(text) = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
        && let Some(s) = ini(&text).remove(&name)
    {
        out.extend(s);
    }
    out
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 5,
        retry_timeout: Duration::from_secs(60),
    }
}

fn client_options() -> ClientOptions {
    // TLS through ring: the process's provider, installed once (an error
    // only says one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        // No limit on a whole response (an object may stream for minutes),
        // but a stalled one fails and is resumed (see object.rs).
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(30))
}

/// A web server's files, by range requests: `base` is `http(s)://host`;
/// plain http because the URL says so.
pub(crate) fn build_http(base: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let store = object_store::http::HttpBuilder::new()
        .with_url(base)
        .with_retry(retry())
        .with_client_options(client_options().with_allow_http(base.starts_with("http://")))
        .build()
        .map_err(|e| crate::short(&e.to_string()))?;
    Ok(Arc::new(store))
}

pub(crate) fn build(bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if env("AWS_ACCESS_KEY_ID").is_none() {
        let p = profile();
        if let (Some(id), Some(secret)) =
            (p.get("aws_access_key_id"), p.get("aws_secret_access_key"))
        {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = p.get("aws_session_token") {
                b = b.with_token(t);
            }
        } else if env("AWS_SKIP_SIGNATURE").is_none()
            && env("AWS_WEB_IDENTITY_TOKEN_FILE").is_none()
            && env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_none()
            && env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none()
        {
            return Err(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 AWS_PROFILE with a profile in ~/.aws/credentials (AWS_SKIP_SIGNATURE=true for \
                 a public bucket)"
                    .into(),
            );
        }
        if env("AWS_REGION").is_none()
            && env("AWS_DEFAULT_REGION").is_none()
            && let Some(r) = p.get("region")
        {
            b = b.with_region(r);
        }
        if env("AWS_ENDPOINT_URL").is_none()
            && let Some(e) = p.get("endpoint_url")
        {
            b = b.with_endpoint(e);
        }
    }
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_some() {
        b = b.with_region(env("AWS_DEFAULT_REGION").unwrap_or_default());
    }
    // Client options first: they would replace the plain-http permission.
    b = b.with_retry(retry()).with_client_options(client_options());
    if let Some(endpoint) = b.get_config_value(&AmazonS3ConfigKey::Endpoint) {
        // An S3-compatible store: path-style unless told otherwise, and
        // plain http only because the endpoint itself says so.
        if env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_none() {
            b = b.with_virtual_hosted_style_request(false);
        }
        b = b.with_allow_http(endpoint.starts_with("http://"));
    }
    let s3 = b.build().map_err(|e| crate::short(&e.to_string()))?;
    Ok(Arc::new(s3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_parse() {
        let s = ini("# c\n[default]\naws_access_key_id = A\n\n[profile x]\nRegion=eu-west-1\n");
        assert_eq!(s["default"]["aws_access_key_id"], "A");
        assert_eq!(s["profile x"]["region"], "eu-west-1");
    }
}
