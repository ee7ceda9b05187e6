//! S3 event notifications: the JSON document AWS hands to Lambda, SQS, SNS
//! and webhooks (and that S3-compatible stores send alike), reduced to the
//! objects it says were created. The whole document is checked before
//! anything is done with it: a malformed one is an error, not half an action.
use serde_json::Value;

use crate::ObjectUrl;

/// An object an event says was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub url: ObjectUrl,
    pub size: Option<u64>,
    /// As the event gives it (without quotes).
    pub etag: Option<String>,
    pub version: Option<String>,
    pub sequencer: Option<String>,
}

/// What a document holds: the objects created, and a note for each record
/// left alone (a test event, an object removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub created: Vec<Created>,
    pub skipped: Vec<String>,
}

/// Why a document is not an S3 event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct EventError(pub String);

/// A key as events carry it: URL-encoded, with `+` for a space.
fn decode_key(key: &str) -> Result<String, EventError> {
    let mut out = Vec::with_capacity(key.len());
    let b = key.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| EventError(format!("bad escape in key {key:?}")))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| EventError(format!("key {key:?} is not UTF-8")))
}

/// Parses an event document (or an SNS notification carrying one).
pub fn parse(text: &str) -> Result<Event, EventError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| EventError(format!("not JSON ({e})")))?;
    parse_value(&doc, 0)
}

fn parse_value(doc: &Value, depth: u8) -> Result<Event, EventError> {
    let Some(obj) = doc.as_object() else {
        return Err(EventError("not a JSON object".into()));
    };
    // SNS wraps the event as a string in `Message`.
    if let (Some(Value::String(inner)), None, true) =
        (obj.get("Message"), obj.get("Records"), depth == 0)
    {
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| EventError(format!("its Message is not JSON ({e})")))?;
        return parse_value(&inner, depth + 1);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Event {
            created: Vec::new(),
            skipped: vec!["s3:TestEvent: nothing to index".into()],
        });
    }
    let records = obj
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| EventError("no Records list".into()))?;
    let mut ev = Event::default();
    for (i, r) in records.iter().enumerate() {
        let n = i + 1;
        let s3 = r
            .get("s3")
            .ok_or_else(|| EventError(format!("record {n} has no s3 part")))?;
        let bucket = s3
            .pointer("/bucket/name")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| EventError(format!("record {n} has no s3.bucket.name")))?;
        let raw_key = s3
            .pointer("/object/key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| EventError(format!("record {n} has no s3.object.key")))?;
        let key = decode_key(raw_key)?;
        let url = ObjectUrl::new(bucket, &key);
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        // Stores prefix it differently ("ObjectCreated:Put", "s3:ObjectCreated:Put").
        let created =
            name.is_empty() || name.trim_start_matches("s3:").starts_with("ObjectCreated");
        if !created {
            ev.skipped.push(format!("{url}: {name}, not a new object"));
            continue;
        }
        let field = |k: &str| s3.pointer(&format!("/object/{k}"));
        let text = |k: &str| field(k).and_then(Value::as_str).map(str::to_string);
        let size = match field("size") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                EventError(format!("record {n}: s3.object.size is not a byte count"))
            })?),
        };
        ev.created.push(Created {
            url,
            size,
            etag: text("eTag").map(|e| e.trim_matches('"').to_string()),
            version: text("versionId"),
            sequencer: text("sequencer"),
        });
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_event_names_its_object() {
        let doc = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
            "eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"caps"},
            "object":{"key":"sensor+1/a%3Ab.pcap","size":1024,"eTag":"0123abc",
            "versionId":"v1","sequencer":"0055AED6DCD90281E5"}}}]}"#;
        let ev = parse(doc).unwrap();
        assert_eq!(ev.created.len(), 1);
        let c = &ev.created[0];
        assert_eq!(c.url.to_string(), "s3://caps/sensor 1/a:b.pcap");
        assert_eq!(c.size, Some(1024));
        assert_eq!(c.etag.as_deref(), Some("0123abc"));
        assert_eq!(c.version.as_deref(), Some("v1"));
    }

    #[test]
    fn test_events_and_removals_are_skipped_with_a_note() {
        let ev = parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#).unwrap();
        assert!(ev.created.is_empty());
        assert_eq!(ev.skipped.len(), 1);
        let doc = r#"{"Records":[{"eventName":"ObjectRemoved:Delete",
            "s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        let ev = parse(doc).unwrap();
        assert!(ev.created.is_empty());
        assert!(ev.skipped[0].contains("ObjectRemoved"), "{:?}", ev.skipped);
    }

    #[test]
    fn only_bucket_and_key_are_required() {
        let doc = r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        let ev = parse(doc).unwrap();
        assert_eq!(ev.created[0].size, None);
        assert_eq!(ev.created[0].etag, None);
    }

    #[test]
    fn an_sns_notification_is_unwrapped() {
        let inner = r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        let doc = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        assert_eq!(parse(&doc).unwrap().created.len(), 1);
    }

    #[test]
    fn malformed_documents_are_errors() {
        for (doc, says) in [
            ("not json", "not JSON"),
            ("[]", "not a JSON object"),
            ("{}", "no Records"),
            (
                r#"{"Records":[{"s3":{"object":{"key":"k"}}}]}"#,
                "bucket.name",
            ),
            (
                r#"{"Records":[{"s3":{"bucket":{"name":"b"}}}]}"#,
                "object.key",
            ),
            (
                r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}"#,
                "bad escape",
            ),
            (
                r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k","size":"x"}}}]}"#,
                "byte count",
            ),
        ] {
            let e = parse(doc).unwrap_err();
            assert!(e.to_string().contains(says), "{doc}: {e}");
        }
    }
}
