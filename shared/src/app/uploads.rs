//! The upload processor's logic: for each uploaded object, check it once in a single streaming
//! pass (SHA-256, size, type sniffed from the first bytes), apply the configured rules, and move
//! (or copy) it to the processed or quarantine area, tagged with the result, then announce it.
//! Every step is safe to repeat: a missing source means "already done", a copy is conditional
//! on the ETag that was hashed, and an object already tagged for its ETag is skipped.

use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::domain::upload_event::{Delivered, ObjectEvent, read_event};
use crate::domain::upload_rules::{
    Scan, SourceAction, TAG_ETAG, TAG_KEY, TAG_REASON, TAG_SHA256, TAG_VERDICT, UploadConfig, sniff,
};
use crate::ports::error_chain;
use crate::ports::{
    BodyStream, CopyRequest, CopyResult, Notifier, RulesSource, StoreError, UploadStore,
};

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
    let key_tag = hex(&Sha256::digest(event.key.as_bytes()));
    let tag = |name: &str| {
        tags.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Processed means processed for this ETag under this key. Objects tagged before the key tag
    // existed are judged by their ETag alone, as they were.
    if tag(TAG_ETAG) == Some(etag_tag.as_str()) && tag(TAG_KEY).is_none_or(|k| k == key_tag) {
        return UploadOutcome::Skipped("already processed".into());
    }
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
    // The size is known before a byte is read: an object over its limit is judged on that
    // alone, so a huge object costs a HEAD, not a pass over all its bytes.
    let limit = match &own {
        Ok(own) => own
            .as_ref()
            .and_then(|u| u.max_object_bytes)
            .or(config.max_object_bytes),
        Err(_) => None,
    };
    let scan = if limit.is_some_and(|max| head.size > max) {
        Scan {
            size: head.size,
            sha256: String::new(),
            detected: "application/octet-stream",
        }
    } else {
        match store.body(&event.bucket, &event.key, &head.etag).await {
            Ok(Some(mut body)) => match scan(&mut body).await {
                Ok(s) => s,
                Err(e) => return transient(e),
            },
            Ok(None) => {
                return UploadOutcome::Skipped("replaced or deleted before it was read".into());
            }
            Err(e) => return transient(e),
        }
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
        (TAG_KEY.to_owned(), key_tag),
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
        // Not read (over its size limit): no checksum and no detected type.
        "sha256": (!scan.sha256.is_empty()).then_some(&scan.sha256),
        "detectedType": (!scan.sha256.is_empty()).then_some(scan.detected),
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
    use crate::adapters::local::uploads::{FileUploads, JsonLines};
    use crate::domain::upload_rules::TAG_SHA256;
    use crate::ports::{Head, NoUserRules};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The data folder's store, counting the bodies it opens.
    struct Counting(FileUploads, AtomicUsize);

    impl UploadStore for Counting {
        type Body = <FileUploads as UploadStore>::Body;
        async fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>, StoreError> {
            self.0.head(bucket, key).await
        }
        async fn tags(&self, bucket: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
            self.0.tags(bucket, key).await
        }
        async fn body(
            &self,
            bucket: &str,
            key: &str,
            etag: &str,
        ) -> Result<Option<Self::Body>, StoreError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.body(bucket, key, etag).await
        }
        async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
            self.0.copy(req).await
        }
        async fn put_tags(
            &self,
            bucket: &str,
            key: &str,
            tags: &[(String, String)],
        ) -> Result<(), StoreError> {
            self.0.put_tags(bucket, key, tags).await
        }
        async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
            self.0.delete(bucket, key).await
        }
    }

    #[tokio::test]
    async fn a_copy_carrying_its_sources_tags_is_processed_under_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("objects/bucket/alice");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("tool.bin"), b"#!/bin/sh\n").unwrap();
        let store = FileUploads::new(dir.path());
        let notices = JsonLines(dir.path().join("notices.jsonl"));
        let config = UploadConfig {
            source_action: SourceAction::Copy,
            ..UploadConfig::default()
        };
        let event = |key: &str| ObjectEvent {
            bucket: "bucket".into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        };
        let first = process(
            &event("alice/tool.bin"),
            &store,
            &notices,
            &NoUserRules,
            &config,
        )
        .await;
        assert!(
            matches!(first, UploadOutcome::Processed { .. }),
            "{first:?}"
        );
        let again = process(
            &event("alice/tool.bin"),
            &store,
            &notices,
            &NoUserRules,
            &config,
        )
        .await;
        assert_eq!(again, UploadOutcome::Skipped("already processed".into()));
        // S3's CopyObject keeps the tags (ETag included); here the same, by hand.
        std::fs::copy(home.join("tool.bin"), home.join("invoice.pdf")).unwrap();
        let tags = store.tags("bucket", "alice/tool.bin").await.unwrap();
        let copied_etag = store
            .head("bucket", "alice/invoice.pdf")
            .await
            .unwrap()
            .unwrap()
            .etag;
        let tags: Vec<(String, String)> = tags
            .into_iter()
            .map(|(k, v)| {
                if k == TAG_ETAG {
                    (k, copied_etag.trim_matches('"').to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        store
            .put_tags("bucket", "alice/invoice.pdf", &tags)
            .await
            .unwrap();
        let renamed = process(
            &event("alice/invoice.pdf"),
            &store,
            &notices,
            &NoUserRules,
            &config,
        )
        .await;
        let UploadOutcome::Processed { verdict, .. } = renamed else {
            panic!("the copy was not judged under its own name: {renamed:?}");
        };
        assert_eq!(verdict, "quarantined");
    }

    #[tokio::test]
    async fn an_object_over_its_size_limit_is_quarantined_without_reading_a_byte() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("objects/bucket/alice");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("big.csv"), vec![b'x'; 2048]).unwrap();
        std::fs::write(home.join("small.csv"), b"a,b\n").unwrap();
        let store = Counting(FileUploads::new(dir.path()), AtomicUsize::new(0));
        let notices = JsonLines(dir.path().join("notices.jsonl"));
        let config = UploadConfig {
            max_object_bytes: Some(1024),
            ..UploadConfig::default()
        };
        let event = |key: &str| ObjectEvent {
            bucket: "bucket".into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        };
        let big = process(
            &event("alice/big.csv"),
            &store,
            &notices,
            &NoUserRules,
            &config,
        )
        .await;
        let UploadOutcome::Processed {
            verdict,
            reason,
            sha256,
            ..
        } = big
        else {
            panic!("not processed: {big:?}");
        };
        assert_eq!(verdict, "quarantined");
        assert_eq!(reason, "2048 bytes, over the 1024-byte limit");
        assert_eq!(sha256, "", "not hashed");
        assert_eq!(
            store.1.load(Ordering::SeqCst),
            0,
            "the body was never opened"
        );
        let tags = store
            .0
            .tags("bucket", "quarantine/alice/big.csv")
            .await
            .unwrap();
        assert!(tags.contains(&(TAG_SHA256.to_owned(), String::new())));
        let notice = std::fs::read_to_string(dir.path().join("notices.jsonl")).unwrap();
        assert!(notice.contains("\"sha256\":null"), "{notice}");
        let small = process(
            &event("alice/small.csv"),
            &store,
            &notices,
            &NoUserRules,
            &config,
        )
        .await;
        assert!(
            matches!(
                small,
                UploadOutcome::Processed {
                    verdict: "clean",
                    ..
                }
            ),
            "{small:?}"
        );
        assert_eq!(
            store.1.load(Ordering::SeqCst),
            1,
            "a file within the limit is read"
        );
    }

    #[test]
    fn tag_values_keep_only_what_s3_tags_accept() {
        assert_eq!(tag_value("content is a/b (x)!"), "content is a/b _x__");
    }
}
