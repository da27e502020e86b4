//! The upload processor's logic: for each uploaded object, check it once in a single streaming
//! pass (SHA-256, size, type sniffed from the first bytes), apply the configured rules, and move
//! (or copy) it to the processed or quarantine area, tagged with the result, then announce it.
//! Every step is safe to repeat: a missing source means "already done", a copy is conditional
//! on the ETag that was hashed, and an object already tagged for its ETag is skipped.

use std::future::Future;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::auth::error_chain;
use crate::ports::StoreError;
pub use crate::upload_event::{Delivered, ObjectEvent, decode_key, read_event};

/// The tag names the processor writes.
pub const TAG_SHA256: &str = "ferry-sha256";
pub const TAG_VERDICT: &str = "ferry-verdict";
pub const TAG_REASON: &str = "ferry-reason";
pub const TAG_ETAG: &str = "ferry-etag";

/// What happens to the user's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAction {
    /// Copied to its area, then deleted where the user put it.
    Move,
    /// Copied to its area; the user's file stays, tagged with the verdict.
    Copy,
}

/// The processor's configuration (environment variables, see the data model doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// Keys processed: only those under one of these prefixes (`INCOMING_PREFIXES`).
    pub incoming_prefixes: Vec<String>,
    pub processed_prefix: String,
    pub quarantine_prefix: String,
    /// Where outputs go (`OUTPUT_BUCKET`); `None`: the source bucket.
    pub output_bucket: Option<String>,
    pub max_object_bytes: Option<u64>,
    /// Lowercase extensions without the dot; empty: any.
    pub allowed_extensions: Vec<String>,
    pub source_action: SourceAction,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            incoming_prefixes: Vec::new(),
            processed_prefix: "processed/".into(),
            quarantine_prefix: "quarantine/".into(),
            output_bucket: None,
            max_object_bytes: None,
            allowed_extensions: Vec::new(),
            source_action: SourceAction::Move,
        }
    }
}

/// An object as HEAD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    pub version_id: Option<String>,
}

/// How a conditional copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyResult {
    Copied,
    /// The source is no longer the object that was hashed (replaced or gone).
    SourceChanged,
}

/// A conditional copy to the processed or quarantine area.
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The ETag that was hashed: the copy happens only if the source still has it.
    pub etag: &'a str,
    pub size: u64,
    pub to_bucket: &'a str,
    pub to_key: &'a str,
    /// Replace the copy's tags.
    pub tags: &'a [(String, String)],
}

/// Streams an object's bytes.
pub trait BodyStream: Send {
    fn next_chunk(
        &mut self,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>, StoreError>> + Send;
}

/// The object operations the processor needs (S3, or the local stack's files).
pub trait UploadStore: Send + Sync {
    type Body: BodyStream;
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Head>, StoreError>> + Send;
    fn tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// The body of the object whose ETag is `etag` (fails if it was replaced meanwhile).
    fn body(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> impl Future<Output = Result<Option<Self::Body>, StoreError>> + Send;
    /// Copies the object, only if its ETag is still the one given, with new tags.
    fn copy(
        &self,
        req: &CopyRequest<'_>,
    ) -> impl Future<Output = Result<CopyResult, StoreError>> + Send;
    fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Announces a processed file (SNS on AWS, a JSON line locally).
pub trait Notifier: Send + Sync {
    fn notify(
        &self,
        message: &Value,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One user's own rules (the `uploadRules` attribute of their record), over the configured ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRules {
    pub max_object_bytes: Option<u64>,
    pub allowed_extensions: Option<Vec<String>>,
    #[serde(default)]
    pub allow_empty: bool,
}

/// Finds a user's own upload rules (the users table on AWS).
pub trait RulesSource: Send + Sync {
    fn rules_for(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<UserRules>, StoreError>> + Send;
}

/// No per-user rules: the configured ones apply to everybody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUserRules;

impl RulesSource for NoUserRules {
    async fn rules_for(&self, _user: &str) -> Result<Option<UserRules>, StoreError> {
        Ok(None)
    }
}

// An optional source: without one (no users table configured), nobody has rules of their own.
impl<R: RulesSource> RulesSource for Option<R> {
    async fn rules_for(&self, user: &str) -> Result<Option<UserRules>, StoreError> {
        match self {
            Some(r) => r.rules_for(user).await,
            None => Ok(None),
        }
    }
}

impl<R: RulesSource + ?Sized> RulesSource for std::sync::Arc<R> {
    fn rules_for(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<UserRules>, StoreError>> + Send {
        (**self).rules_for(user)
    }
}

/// A user's own rules as stored in their record; a folder name that is no valid username
/// belongs to nobody, and the configured rules apply. Shared by every user store.
pub async fn rules_of<U: crate::ports::UserAdmin>(
    users: &U,
    user: &str,
) -> Result<Option<UserRules>, StoreError> {
    let Ok(username) = crate::username::Username::parse(user) else {
        return Ok(None);
    };
    match users.get_raw(&username).await? {
        Some(record) => user_rules(&record),
        None => Ok(None),
    }
}

/// Reads `uploadRules` from a user record as plain JSON; a malformed value is an error, so a
/// broken override never silently loosens or tightens the rules.
pub fn user_rules(record: &Value) -> Result<Option<UserRules>, StoreError> {
    match record.get("uploadRules") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| StoreError::Malformed(format!("uploadRules: {e}"))),
    }
}

/// What the single pass over the bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub size: u64,
    pub sha256: String,
    pub detected: &'static str,
}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Not processed (outside the incoming area, already processed, already moved).
    Skipped(String),
    Processed {
        verdict: &'static str,
        reason: String,
        destination: String,
        sha256: String,
    },
    /// Retry later (S3 or SNS failed, or the object changed under the processor).
    Transient(String),
}

/// Sniffs a content type from the first bytes.
pub fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: [(&[u8], &str); 8] = [
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"\x7fELF", "application/x-executable"),
    ];
    if head.is_empty() {
        return "application/x-empty";
    }
    for (magic, kind) in MAGIC {
        if head.starts_with(magic) {
            return kind;
        }
    }
    // Text: no NUL, and valid UTF-8 apart from a character cut at the sample's end.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if valid && !head.contains(&0) {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// Bytes sniffed from the start of an object.
const SNIFF_BYTES: usize = 512;

/// One streaming pass: SHA-256, size and the sniffed type; memory stays at one chunk.
pub async fn scan<B: BodyStream>(body: &mut B) -> Result<Scan, StoreError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    while let Some(chunk) = body.next_chunk().await? {
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok(Scan {
        size,
        sha256: hex(&hasher.finalize()),
        detected: sniff(&head),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl UploadConfig {
    /// The incoming prefix `key` lies under, if any. Output areas are never incoming, so the
    /// processor cannot trigger itself.
    pub fn incoming<'a>(&'a self, key: &str) -> Option<&'a str> {
        if key.starts_with(&self.processed_prefix) || key.starts_with(&self.quarantine_prefix) {
            return None;
        }
        if self.incoming_prefixes.is_empty() {
            return Some("");
        }
        self.incoming_prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(String::as_str)
    }

    /// The rules: `Err(reason)` quarantines.
    pub fn judge(&self, key: &str, scan: &Scan) -> Result<(), String> {
        self.judge_for(key, scan, None)
    }

    /// The rules, with a user's own rules over the configured ones.
    pub fn judge_for(
        &self,
        key: &str,
        scan: &Scan,
        user: Option<&UserRules>,
    ) -> Result<(), String> {
        let allow_empty = user.is_some_and(|u| u.allow_empty);
        if scan.size == 0 && !allow_empty {
            return Err("empty file".into());
        }
        let max = user
            .and_then(|u| u.max_object_bytes)
            .or(self.max_object_bytes);
        let own_extensions: Option<Vec<String>> =
            user.and_then(|u| u.allowed_extensions.as_ref()).map(|l| {
                l.iter()
                    .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                    .collect()
            });
        let allowed = own_extensions.as_ref().unwrap_or(&self.allowed_extensions);
        if let Some(max) = max
            && scan.size > max
        {
            return Err(format!("{} bytes, over the {max}-byte limit", scan.size));
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !allowed.is_empty() && !allowed.contains(&ext) {
            return Err(format!("extension .{ext} is not allowed"));
        }
        let claims = match ext.as_str() {
            "pdf" => Some("application/pdf"),
            "zip" => Some("application/zip"),
            "gz" | "tgz" => Some("application/gzip"),
            "png" => Some("image/png"),
            "jpg" | "jpeg" => Some("image/jpeg"),
            "gif" => Some("image/gif"),
            "csv" | "txt" | "json" | "xml" => Some("text/plain"),
            _ => None,
        };
        if let Some(claimed) = claims
            && claimed != scan.detected
            && !(scan.size == 0 && allow_empty)
        {
            return Err(format!(
                "content is {} but the name says .{ext}",
                scan.detected
            ));
        }
        Ok(())
    }
}

/// Processes one object.
pub async fn process<S: UploadStore, N: Notifier, R: RulesSource>(
    event: &ObjectEvent,
    store: &S,
    notifier: &N,
    users: &R,
    config: &UploadConfig,
) -> UploadOutcome {
    let started = Instant::now();
    let transient = |e: StoreError| UploadOutcome::Transient(error_chain(&e));
    let Some(prefix) = config.incoming(&event.key) else {
        return UploadOutcome::Skipped("outside the incoming area".into());
    };
    let head = match store.head(&event.bucket, &event.key).await {
        Ok(Some(h)) => h,
        // A retry after the move, or a file deleted since: nothing left to do.
        Ok(None) => return UploadOutcome::Skipped("already moved or deleted".into()),
        Err(e) => return transient(e),
    };
    let tags = match store.tags(&event.bucket, &event.key).await {
        Ok(t) => t,
        Err(e) => return transient(e),
    };
    // Tag values cannot hold the quotes S3 puts around ETags.
    let etag_tag = head.etag.trim_matches('"').to_owned();
    let tagged_for = tags
        .iter()
        .find(|(k, _)| k == TAG_ETAG)
        .map(|(_, v)| v.as_str());
    if tagged_for == Some(etag_tag.as_str()) {
        return UploadOutcome::Skipped("already processed".into());
    }
    let scan = match store.body(&event.bucket, &event.key, &head.etag).await {
        Ok(Some(mut body)) => match scan(&mut body).await {
            Ok(s) => s,
            Err(e) => return transient(e),
        },
        Ok(None) => return UploadOutcome::Skipped("replaced or deleted before it was read".into()),
        Err(e) => return transient(e),
    };
    let relative = &event.key[prefix.len()..];
    // The user is the first folder below the incoming prefix (their home).
    let user = relative.split('/').next().unwrap_or("").to_owned();
    let own = if relative.contains('/') {
        match users.rules_for(&user).await {
            Ok(r) => Ok(r),
            // Unreadable rules are not retried forever: the file is held back, fail-closed.
            Err(StoreError::Malformed(m)) => {
                Err(format!("the user's upload rules are unusable: {m}"))
            }
            Err(e) => return transient(e),
        }
    } else {
        Ok(None)
    };
    let verdict = own.and_then(|own| config.judge_for(&event.key, &scan, own.as_ref()));
    let (verdict_name, reason, area) = match &verdict {
        Ok(()) => ("clean", "ok".to_owned(), &config.processed_prefix),
        Err(r) => ("quarantined", r.clone(), &config.quarantine_prefix),
    };
    let destination = format!("{area}{relative}");
    let out_bucket = config.output_bucket.as_deref().unwrap_or(&event.bucket);
    let result_tags = vec![
        (TAG_SHA256.to_owned(), scan.sha256.clone()),
        (TAG_VERDICT.to_owned(), verdict_name.to_owned()),
        (TAG_REASON.to_owned(), tag_value(&reason)),
        (TAG_ETAG.to_owned(), etag_tag),
    ];
    let request = CopyRequest {
        bucket: &event.bucket,
        key: &event.key,
        etag: &head.etag,
        size: scan.size,
        to_bucket: out_bucket,
        to_key: &destination,
        tags: &result_tags,
    };
    match store.copy(&request).await {
        Ok(CopyResult::Copied) => {}
        // The user replaced the file after it was hashed: that upload has its own event.
        Ok(CopyResult::SourceChanged) => {
            return UploadOutcome::Skipped("replaced while being processed".into());
        }
        Err(e) => return transient(e),
    }
    let message = json!({
        "bucket": event.bucket,
        "sourceKey": event.key,
        "destinationBucket": out_bucket,
        "destinationKey": destination,
        "etag": head.etag,
        "versionId": head.version_id,
        "size": scan.size,
        "sha256": scan.sha256,
        "detectedType": scan.detected,
        "user": user,
        "verdict": verdict_name,
        "reason": reason,
        "millis": started.elapsed().as_millis() as u64,
    });
    // Announced before the source goes: if anything after this fails, the retry processes the
    // file again and announces it again (consumers deduplicate on etag and sha256); announced
    // after, a failed publish would be lost with the source.
    if let Err(e) = notifier
        .notify(&message, &[("verdict", verdict_name), ("user", &user)])
        .await
    {
        return transient(e);
    }
    let done = match config.source_action {
        SourceAction::Move => store.delete(&event.bucket, &event.key).await,
        SourceAction::Copy => {
            store
                .put_tags(&event.bucket, &event.key, &result_tags)
                .await
        }
    };
    if let Err(e) = done {
        return transient(e);
    }
    info!(key = %event.key, destination, verdict = verdict_name, reason, size = scan.size, "upload processed");
    UploadOutcome::Processed {
        verdict: verdict_name,
        reason,
        destination,
        sha256: scan.sha256,
    }
}

/// A whole invocation: every object of every record processed. SQS deliveries that failed
/// transiently are listed in `{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`; a
/// transient failure outside SQS is `Err`, so that the invocation fails and Lambda retries it.
pub async fn handle_event<S: UploadStore, N: Notifier, R: RulesSource>(
    event: &Value,
    store: &S,
    notifier: &N,
    users: &R,
    config: &UploadConfig,
) -> Result<(Value, Vec<UploadOutcome>), String> {
    let mut failures: Vec<String> = Vec::new();
    let mut unbatched = None;
    let mut outcomes = Vec::new();
    for delivered in read_event(event) {
        match delivered {
            Delivered::Objects {
                message_id,
                objects,
            } => {
                for object in objects {
                    let outcome = process(&object, store, notifier, users, config).await;
                    if let UploadOutcome::Transient(why) = &outcome {
                        warn!(key = %object.key, error = %why, "upload not processed; it will be retried");
                        match &message_id {
                            Some(id) if !failures.contains(id) => failures.push(id.clone()),
                            Some(_) => {}
                            None => unbatched = Some(why.clone()),
                        }
                    }
                    outcomes.push(outcome);
                }
            }
            Delivered::Ignored(why) => info!(why, "record ignored"),
            Delivered::Malformed { reason, .. } => warn!(reason, "malformed record dropped"),
        }
    }
    if let Some(why) = unbatched {
        return Err(format!("an upload failed transiently: {why}"));
    }
    let failures: Vec<Value> = failures
        .into_iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect();
    Ok((json!({"batchItemFailures": failures}), outcomes))
}

/// S3 tag values allow letters, digits, spaces and `+ - = . _ : / @`, up to 256 characters.
fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " +-=._:/@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(size: u64, detected: &'static str) -> Scan {
        Scan {
            size,
            sha256: String::new(),
            detected,
        }
    }

    #[test]
    fn keys_are_decoded_as_forms_not_as_paths() {
        assert_eq!(decode_key("red+flower.jpg").unwrap(), "red flower.jpg");
        assert_eq!(decode_key("a%2Bb.txt").unwrap(), "a+b.txt");
        assert_eq!(decode_key("100%25.txt").unwrap(), "100%.txt");
        assert_eq!(decode_key("%C3%BC.txt").unwrap(), "ü.txt");
        assert!(decode_key("%FF%FE").is_none());
    }

    #[test]
    fn content_is_sniffed_from_its_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"PK\x03\x04rest"), "application/zip");
        assert_eq!(sniff(b"id,name\n1,\xc3\xbc"), "text/plain");
        assert_eq!(sniff(b"cut at \xc3"), "text/plain");
        assert_eq!(sniff(b"bin\x00ary"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/x-empty");
    }

    #[test]
    fn outputs_are_never_inputs_and_rules_quarantine_with_a_reason() {
        let config = UploadConfig {
            incoming_prefixes: vec!["home/".into()],
            max_object_bytes: Some(10),
            allowed_extensions: vec!["csv".into(), "pdf".into()],
            ..UploadConfig::default()
        };
        assert_eq!(config.incoming("home/a/x.csv"), Some("home/"));
        assert_eq!(config.incoming("processed/a/x.csv"), None);
        assert_eq!(config.incoming("elsewhere/x.csv"), None);
        let everything = UploadConfig::default();
        assert_eq!(everything.incoming("a/x.csv"), Some(""));
        assert_eq!(everything.incoming("quarantine/x.csv"), None);
        assert!(config.judge("home/a/x.csv", &scan(4, "text/plain")).is_ok());
        assert!(config.judge("home/a/x.CSV", &scan(4, "text/plain")).is_ok());
        for (key, s, why) in [
            ("home/a/x.csv", scan(0, "application/x-empty"), "empty"),
            ("home/a/x.csv", scan(11, "text/plain"), "limit"),
            ("home/a/x.exe", scan(4, "application/octet-stream"), ".exe"),
            ("home/a/noext", scan(4, "text/plain"), "extension"),
            ("home/a/x.pdf", scan(4, "text/plain"), "name says .pdf"),
        ] {
            let err = config.judge(key, &s).unwrap_err();
            assert!(err.contains(why), "{key}: {err}");
        }
        assert_eq!(tag_value("content is a/b (x)!"), "content is a/b _x__");
    }
}
