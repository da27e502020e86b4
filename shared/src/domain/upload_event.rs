//! Upload events as they reach the upload processor: S3 ObjectCreated notifications, directly or
//! wrapped in SNS, SQS (either of the two inside) or EventBridge, read into one shape. Keys are
//! decoded as S3 encodes them in notifications (application/x-www-form-urlencoded: `+` is a
//! space, `%2B` a plus).
//!
//! Read by hand rather than with `aws_lambda_events`' S3, SNS, SQS and EventBridge types: those
//! refuse a whole delivery over one unexpected field, while the processor must handle each
//! object it can and report each one it cannot, and must look inside SNS and SQS bodies, which the
//! typed envelopes leave as strings.

use serde_json::Value;

/// One object to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Orders events of one key (hex; only comparable for the same key).
    pub sequencer: Option<String>,
}

/// What one delivered record held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Objects to process; `message_id` is the SQS message they came in (for batch failures).
    Objects {
        message_id: Option<String>,
        objects: Vec<ObjectEvent>,
    },
    /// Nothing to process (an `s3:TestEvent`, a removal, another event type).
    Ignored(&'static str),
    /// Unreadable: logged and dropped, never retried.
    Malformed {
        message_id: Option<String>,
        reason: String,
    },
}

/// Decodes an S3 notification key (form encoding).
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

/// Reads an invocation payload into the records it carries.
pub fn read_event(event: &Value) -> Vec<Delivered> {
    // EventBridge: one object per event, key not form-encoded.
    if event.get("detail-type").is_some() {
        return vec![eventbridge(event)];
    }
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return vec![Delivered::Ignored("s3:TestEvent")];
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return vec![Delivered::Malformed {
            message_id: None,
            reason: "no Records, and not an EventBridge event".into(),
        }];
    };
    records.iter().map(record).collect()
}

fn record(r: &Value) -> Delivered {
    // SQS: the body is an S3 event, or an SNS envelope around one.
    if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
        let message_id = r
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let inner = r
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str::<Value>(b).ok());
        return match inner {
            Some(body) => nested(&body, message_id),
            None => Delivered::Malformed {
                message_id,
                reason: "SQS body is not JSON".into(),
            },
        };
    }
    if let Some(sns) = r.get("Sns") {
        let inner = sns
            .get("Message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok());
        return match inner {
            Some(body) => nested(&body, None),
            None => Delivered::Malformed {
                message_id: None,
                reason: "SNS message is not JSON".into(),
            },
        };
    }
    match s3_record(r) {
        Ok(Some(o)) => Delivered::Objects {
            message_id: None,
            objects: vec![o],
        },
        Ok(None) => Delivered::Ignored("not an ObjectCreated event"),
        Err(reason) => Delivered::Malformed {
            message_id: None,
            reason,
        },
    }
}

/// An S3 event (or an SNS envelope holding one, or an EventBridge event) found inside SQS or SNS.
fn nested(body: &Value, message_id: Option<String>) -> Delivered {
    if body.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = body
            .get("Message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
    {
        return nested(&inner, message_id);
    }
    let delivered = read_event(body);
    let mut objects = Vec::new();
    for d in delivered {
        match d {
            Delivered::Objects { objects: o, .. } => objects.extend(o),
            Delivered::Malformed { reason, .. } => {
                return Delivered::Malformed { message_id, reason };
            }
            Delivered::Ignored(_) => {}
        }
    }
    if objects.is_empty() {
        Delivered::Ignored("no ObjectCreated record inside")
    } else {
        Delivered::Objects {
            message_id,
            objects,
        }
    }
}

fn s3_record(r: &Value) -> Result<Option<ObjectEvent>, String> {
    let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
    if !name.starts_with("ObjectCreated:") {
        return Ok(None);
    }
    let s3 = r.get("s3").ok_or("record has no s3 section")?;
    let bucket = s3
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or("record has no bucket name")?;
    let object = s3.get("object").ok_or("record has no object")?;
    let raw = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or("record has no object key")?;
    let key = decode_key(raw).ok_or("object key is not valid form encoding")?;
    Ok(Some(object_event(bucket, key, object, "eTag", "versionId")))
}

/// The object fields S3 notifications and EventBridge events share, under their own names for
/// the ETag and version id.
fn object_event(
    bucket: &str,
    key: String,
    object: &Value,
    etag: &str,
    version_id: &str,
) -> ObjectEvent {
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
    ObjectEvent {
        bucket: bucket.to_owned(),
        key,
        size: object.get("size").and_then(Value::as_u64),
        etag: text(etag),
        version_id: text(version_id),
        sequencer: text("sequencer"),
    }
}

fn eventbridge(e: &Value) -> Delivered {
    if e.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Delivered::Ignored("not an Object Created event");
    }
    let bucket = e.pointer("/detail/bucket/name").and_then(Value::as_str);
    let object = e.pointer("/detail/object");
    let key = object.and_then(|o| o.get("key")).and_then(Value::as_str);
    match (bucket, object, key) {
        (Some(bucket), Some(object), Some(key)) => Delivered::Objects {
            message_id: None,
            objects: vec![object_event(
                bucket,
                key.to_owned(),
                object,
                "etag",
                "version-id",
            )],
        },
        _ => Delivered::Malformed {
            message_id: None,
            reason: "EventBridge event has no bucket or object key".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_forms_not_as_paths() {
        assert_eq!(decode_key("red+flower.jpg").unwrap(), "red flower.jpg");
        assert_eq!(decode_key("a%2Bb.txt").unwrap(), "a+b.txt");
        assert_eq!(decode_key("100%25.txt").unwrap(), "100%.txt");
        assert_eq!(decode_key("%C3%BC.txt").unwrap(), "ü.txt");
        assert!(decode_key("%FF%FE").is_none());
    }
}
