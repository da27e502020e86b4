//! The upload processor against moto's S3 and SNS (through an SQS subscription): checksums and
//! moves, awkward keys, duplicate and out-of-order delivery, a file replaced while it is
//! processed, quarantine rules, and events wrapped in SNS, SQS and EventBridge.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use anyhow::Result;
use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::adapters::aws::sns::SnsAlerts;
use ferry_core::app::uploads::{UploadOutcome, process};
use ferry_core::domain::upload_event::{ObjectEvent, read_event};
use ferry_core::domain::upload_rules::{SourceAction, UploadConfig};
use ferry_core::ports::{CopyRequest, CopyResult, Head, NoUserRules, StoreError, UploadStore};
use ferry_tests::Fixture;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Setup {
    f: Fixture,
    s3: aws_sdk_s3::Client,
    bucket: String,
    objects: S3Objects,
}

async fn setup() -> Result<Setup> {
    let f = Fixture::new().await?;
    let bucket = f.bucket().await?;
    let s3 = f.s3();
    Ok(Setup {
        objects: S3Objects::new(s3.clone()),
        s3,
        bucket,
        f,
    })
}

fn config() -> UploadConfig {
    UploadConfig {
        incoming_prefixes: vec!["home/".into()],
        max_object_bytes: Some(1024 * 1024),
        allowed_extensions: vec!["csv".into(), "pdf".into(), "txt".into(), "bin".into()],
        ..UploadConfig::default()
    }
}

impl Setup {
    async fn put(&self, key: &str, body: &[u8]) -> String {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_owned()
    }

    async fn exists(&self, key: &str) -> bool {
        self.s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    async fn tags(&self, key: &str) -> Vec<(String, String)> {
        self.s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    /// The notification S3 would send for `key` (the key form-encoded, as S3 does).
    fn event(&self, key: &str) -> Value {
        let encoded: String = form_urlencoded(key);
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": self.bucket, "arn": format!("arn:aws:s3:::{}", self.bucket)},
                "object": {"key": encoded, "size": 1, "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]})
    }

    async fn run(
        &self,
        event: &Value,
        config: &UploadConfig,
        notices: &SnsAlerts,
    ) -> Vec<UploadOutcome> {
        let mut outcomes = Vec::new();
        for d in read_event(event) {
            if let ferry_core::domain::upload_event::Delivered::Objects { objects, .. } = d {
                for o in objects {
                    outcomes.push(process(&o, &self.objects, notices, &NoUserRules, config).await);
                }
            }
        }
        outcomes
    }
}

/// application/x-www-form-urlencoded, as S3 encodes keys in notifications.
fn form_urlencoded(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn no_notices(f: &Fixture) -> SnsAlerts {
    SnsAlerts::new(aws_sdk_sns::Client::new(&f.sdk), None)
}

#[tokio::test]
async fn a_clean_file_is_hashed_moved_and_tagged_and_awkward_keys_survive() -> Result<()> {
    let s = setup().await?;
    let notices = no_notices(&s.f);
    for key in [
        "home/alice/report.csv",
        "home/alice/red flower.txt",
        "home/alice/a+b=c.txt",
        "home/alice/100%.txt",
        "home/alice/ünïcödé 文件.txt",
    ] {
        let body = format!("id,name\n1,{key}\n");
        s.put(key, body.as_bytes()).await;
        let outcomes = s.run(&s.event(key), &config(), &notices).await;
        let [
            UploadOutcome::Processed {
                verdict,
                destination,
                sha256,
                ..
            },
        ] = &outcomes[..]
        else {
            panic!("{key}: {outcomes:?}");
        };
        assert_eq!(*verdict, "clean", "{key}");
        let relative = key.strip_prefix("home/").unwrap();
        assert_eq!(destination, &format!("processed/{relative}"));
        assert_eq!(sha256, &sha256_hex(body.as_bytes()));
        assert!(!s.exists(key).await, "{key}: the source is moved");
        let tags = s.tags(destination).await;
        assert!(
            tags.contains(&("ferry-sha256".into(), sha256.clone())),
            "{tags:?}"
        );
        assert!(tags.contains(&("ferry-verdict".into(), "clean".into())));
    }
    Ok(())
}

#[tokio::test]
async fn duplicate_and_late_deliveries_process_a_file_once() -> Result<()> {
    let s = setup().await?;
    let notices = no_notices(&s.f);
    s.put("home/bo/a.csv", b"x,y\n").await;
    let event = s.event("home/bo/a.csv");
    let first = s.run(&event, &config(), &notices).await;
    assert!(matches!(first[..], [UploadOutcome::Processed { .. }]));
    // The same notification again (at least once), and once more later.
    for _ in 0..2 {
        let again = s.run(&event, &config(), &notices).await;
        assert_eq!(
            again,
            [UploadOutcome::Skipped("already moved or deleted".into())]
        );
    }
    // In copy mode the source stays, tagged: a repeat is recognised by its tag.
    let copy = UploadConfig {
        source_action: SourceAction::Copy,
        ..config()
    };
    s.put("home/bo/b.csv", b"x,y\n").await;
    let event = s.event("home/bo/b.csv");
    assert!(matches!(
        s.run(&event, &copy, &notices).await[..],
        [UploadOutcome::Processed { .. }]
    ));
    assert!(s.exists("home/bo/b.csv").await);
    assert_eq!(
        s.run(&event, &copy, &notices).await,
        [UploadOutcome::Skipped("already processed".into())]
    );
    // The user uploads a new version: that one is processed again.
    s.put("home/bo/b.csv", b"x,y\n2,3\n").await;
    assert!(matches!(
        s.run(&event, &copy, &notices).await[..],
        [UploadOutcome::Processed { .. }]
    ));
    Ok(())
}

/// S3 where the user replaces the file right after the processor has read it.
struct ReplacedAfterRead<'a> {
    real: &'a S3Objects,
    s3: aws_sdk_s3::Client,
}

impl UploadStore for ReplacedAfterRead<'_> {
    type Body = <S3Objects as UploadStore>::Body;
    async fn head(&self, b: &str, k: &str) -> Result<Option<Head>, StoreError> {
        self.real.head(b, k).await
    }
    async fn tags(&self, b: &str, k: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.real.tags(b, k).await
    }
    async fn body(&self, b: &str, k: &str, etag: &str) -> Result<Option<Self::Body>, StoreError> {
        let body = self.real.body(b, k, etag).await;
        self.s3
            .put_object()
            .bucket(b)
            .key(k)
            .body(b"the user's second version".to_vec().into())
            .send()
            .await
            .unwrap();
        body
    }
    async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
        self.real.copy(req).await
    }
    async fn put_tags(
        &self,
        b: &str,
        k: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.real.put_tags(b, k, tags).await
    }
    async fn delete(&self, b: &str, k: &str) -> Result<(), StoreError> {
        UploadStore::delete(self.real, b, k).await
    }
}

#[tokio::test]
async fn a_file_replaced_while_it_is_processed_is_not_moved_with_a_stale_checksum() -> Result<()> {
    let s = setup().await?;
    let notices = no_notices(&s.f);
    s.put("home/cy/data.txt", b"first version").await;
    let store = ReplacedAfterRead {
        real: &s.objects,
        s3: s.s3.clone(),
    };
    let object = ObjectEvent {
        bucket: s.bucket.clone(),
        key: "home/cy/data.txt".into(),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
    };
    let outcome = process(&object, &store, &notices, &NoUserRules, &config()).await;
    assert_eq!(
        outcome,
        UploadOutcome::Skipped("replaced while being processed".into())
    );
    assert!(!s.exists("processed/cy/data.txt").await);
    // The second version is still there, and its own event processes it.
    let outcome = process(&object, &s.objects, &notices, &NoUserRules, &config()).await;
    let UploadOutcome::Processed { sha256, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(sha256, sha256_hex(b"the user's second version"));
    Ok(())
}

#[tokio::test]
async fn oversize_empty_forbidden_and_mislabelled_files_are_quarantined_with_a_reason() -> Result<()>
{
    let s = setup().await?;
    let notices = no_notices(&s.f);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("home/di/big.bin", vec![7u8; 2 * 1024 * 1024], "over the"),
        ("home/di/empty.csv", Vec::new(), "empty file"),
        (
            "home/di/tool.exe",
            b"MZ....".to_vec(),
            "extension .exe is not allowed",
        ),
        (
            "home/di/invoice.pdf",
            b"not a pdf at all".to_vec(),
            "the name says .pdf",
        ),
    ];
    for (key, body, why) in cases {
        s.put(key, &body).await;
        let outcomes = s.run(&s.event(key), &config(), &notices).await;
        let [
            UploadOutcome::Processed {
                verdict,
                reason,
                destination,
                ..
            },
        ] = &outcomes[..]
        else {
            panic!("{key}: {outcomes:?}");
        };
        assert_eq!(*verdict, "quarantined", "{key}");
        assert!(reason.contains(why), "{key}: {reason}");
        assert!(destination.starts_with("quarantine/di/"), "{destination}");
        assert!(s.exists(destination).await && !s.exists(key).await);
        let tags = s.tags(destination).await;
        assert!(tags.contains(&("ferry-verdict".into(), "quarantined".into())));
    }
    // Outputs never count as uploads: no loop.
    let outcomes = s
        .run(&s.event("quarantine/di/tool.exe"), &config(), &notices)
        .await;
    assert_eq!(
        outcomes,
        [UploadOutcome::Skipped("outside the incoming area".into())]
    );
    Ok(())
}

#[tokio::test]
async fn each_file_is_announced_on_sns_with_filterable_attributes() -> Result<()> {
    let s = setup().await?;
    let (topic, queue) = ferry_tests::fixture::topic_with_queue(&s.f).await?;
    let notices = SnsAlerts::new(aws_sdk_sns::Client::new(&s.f.sdk), Some(topic));
    s.put("home/ed/ok.csv", b"a,b\n").await;
    s.put("home/ed/bad.exe", b"MZ").await;
    s.run(&s.event("home/ed/ok.csv"), &config(), &notices).await;
    s.run(&s.event("home/ed/bad.exe"), &config(), &notices)
        .await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(ferry_tests::fixture::received(&s.f, &queue).await?);
        if got.len() >= 2 {
            break;
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    for envelope in got {
        let m: Value = serde_json::from_str(envelope["Message"].as_str().unwrap())?;
        assert_eq!(m["bucket"], s.bucket);
        assert_eq!(m["user"], "ed");
        let verdict = m["verdict"].as_str().unwrap();
        assert_eq!(envelope["MessageAttributes"]["verdict"]["Value"], verdict);
        assert_eq!(envelope["MessageAttributes"]["user"]["Value"], "ed");
        match m["sourceKey"].as_str().unwrap() {
            "home/ed/ok.csv" => {
                assert_eq!(verdict, "clean");
                assert_eq!(m["sha256"], sha256_hex(b"a,b\n"));
                assert_eq!(m["size"], 4);
                assert_eq!(m["destinationKey"], "processed/ed/ok.csv");
                assert_eq!(m["detectedType"], "text/plain");
            }
            "home/ed/bad.exe" => assert_eq!(verdict, "quarantined"),
            other => panic!("unexpected {other}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn events_wrapped_in_sns_sqs_or_eventbridge_are_read_alike() -> Result<()> {
    let s = setup().await?;
    let notices = no_notices(&s.f);
    let direct = s.event("home/fi/x y.csv");
    let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": direct.to_string()}}]});
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": direct.to_string()}]});
    let sqs_sns = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-2", "body": json!({"Type": "Notification", "Message": direct.to_string()}).to_string()}]});
    let bridge = json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": s.bucket}, "object": {"key": "home/fi/x y.csv", "size": 4, "etag": "e"}}
    });
    for (name, event) in [
        ("sns", sns),
        ("sqs", sqs),
        ("sqs+sns", sqs_sns),
        ("eventbridge", bridge),
    ] {
        s.put("home/fi/x y.csv", b"a,b\n").await;
        let outcomes = s.run(&event, &config(), &notices).await;
        assert!(
            matches!(
                outcomes[..],
                [UploadOutcome::Processed {
                    verdict: "clean",
                    ..
                }]
            ),
            "{name}: {outcomes:?}"
        );
    }
    // A test event, a deletion and garbage are not uploads.
    for event in [
        json!({"Event": "s3:TestEvent", "Bucket": s.bucket}),
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {}}]}),
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-3", "body": "not json"}]}),
        json!("nothing"),
    ] {
        assert!(
            s.run(&event, &config(), &notices).await.is_empty(),
            "{event}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_one_changes_nothing() -> Result<()> {
    let s = setup().await?;
    let notices = no_notices(&s.f);
    s.put("home/gu/log.txt", b"version one").await;
    let older = s.event("home/gu/log.txt");
    s.put("home/gu/log.txt", b"version two").await;
    let newer = s.event("home/gu/log.txt");
    // The newer notification is delivered first: the current bytes are what is processed.
    let outcome = s.run(&newer, &config(), &notices).await;
    let [UploadOutcome::Processed { sha256, .. }] = &outcome[..] else {
        panic!("{outcome:?}")
    };
    assert_eq!(sha256, &sha256_hex(b"version two"));
    // The late, older one finds nothing left to do.
    assert_eq!(
        s.run(&older, &config(), &notices).await,
        [UploadOutcome::Skipped("already moved or deleted".into())]
    );
    let tags = s.tags("processed/gu/log.txt").await;
    assert!(tags.contains(&("ferry-sha256".into(), sha256_hex(b"version two"))));
    Ok(())
}

/// S3 as a throttled call makes it, for one key (moto cannot throttle).
struct ThrottledFor<'a> {
    real: &'a S3Objects,
    key: &'static str,
}

impl UploadStore for ThrottledFor<'_> {
    type Body = <S3Objects as UploadStore>::Body;
    async fn head(&self, b: &str, k: &str) -> Result<Option<Head>, StoreError> {
        if k == self.key {
            return Err(StoreError::Unavailable {
                what: "S3",
                source: "SlowDown".into(),
            });
        }
        self.real.head(b, k).await
    }
    async fn tags(&self, b: &str, k: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.real.tags(b, k).await
    }
    async fn body(&self, b: &str, k: &str, etag: &str) -> Result<Option<Self::Body>, StoreError> {
        self.real.body(b, k, etag).await
    }
    async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
        self.real.copy(req).await
    }
    async fn put_tags(
        &self,
        b: &str,
        k: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.real.put_tags(b, k, tags).await
    }
    async fn delete(&self, b: &str, k: &str) -> Result<(), StoreError> {
        UploadStore::delete(self.real, b, k).await
    }
}

#[tokio::test]
async fn an_sqs_batch_reports_exactly_the_messages_to_retry() -> Result<()> {
    use ferry_core::app::uploads::handle_event;
    let s = setup().await?;
    let notices = no_notices(&s.f);
    s.put("home/ha/ok.csv", b"a\n").await;
    s.put("home/ha/slow.csv", b"b\n").await;
    let message = |id: &str, key: &str| json!({"eventSource": "aws:sqs", "messageId": id, "body": s.event(key).to_string()});
    let batch = json!({"Records": [
        message("m-ok", "home/ha/ok.csv"),
        message("m-slow", "home/ha/slow.csv"),
        {"eventSource": "aws:sqs", "messageId": "m-garbage", "body": "{"},
    ]});
    let store = ThrottledFor {
        real: &s.objects,
        key: "home/ha/slow.csv",
    };
    let (answer, outcomes) = handle_event(&batch, &store, &notices, &NoUserRules, &config())
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-slow"}]})
    );
    assert_eq!(outcomes.len(), 2);
    assert!(s.exists("processed/ha/ok.csv").await);
    assert!(s.exists("home/ha/slow.csv").await, "kept for the retry");
    // Outside SQS there is no batch to report in: the invocation fails and is retried.
    assert!(
        handle_event(
            &s.event("home/ha/slow.csv"),
            &store,
            &notices,
            &NoUserRules,
            &config()
        )
        .await
        .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn a_users_own_upload_rules_apply_to_their_files_only() -> Result<()> {
    use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
    let s = setup().await?;
    let notices = no_notices(&s.f);
    let users = DynamoUserStore::new(s.f.ddb.clone(), &s.f.table);
    s.f.put_user(
        "joy",
        Some("pw"),
        json!({"uploadRules": {"maxObjectBytes": 10, "allowedExtensions": ["bin"]}}),
    )
    .await?;
    s.f.put_user("kim", Some("pw"), json!({})).await?;
    s.f.put_user(
        "lea",
        Some("pw"),
        json!({"uploadRules": {"maxObjectBytes": "ten"}}),
    )
    .await?;
    let cases = [
        (
            "home/joy/a.csv",
            &b"a,b\n"[..],
            Some("extension .csv is not allowed"),
        ),
        (
            "home/joy/x.bin",
            &[1u8; 20][..],
            Some("over the 10-byte limit"),
        ),
        ("home/joy/y.bin", &[1u8; 5][..], None),
        ("home/kim/a.csv", &b"a,b\n"[..], None),
        (
            "home/lea/a.csv",
            &b"a,b\n"[..],
            Some("upload rules are unusable"),
        ),
    ];
    for (key, body, quarantined_because) in cases {
        s.put(key, body).await;
        let object = ObjectEvent {
            bucket: s.bucket.clone(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        };
        let outcome = process(&object, &s.objects, &notices, &users, &config()).await;
        let UploadOutcome::Processed {
            verdict, reason, ..
        } = &outcome
        else {
            panic!("{key}: {outcome:?}")
        };
        match quarantined_because {
            Some(why) => {
                assert_eq!(*verdict, "quarantined", "{key}");
                assert!(reason.contains(why), "{key}: {reason}");
            }
            None => assert_eq!(*verdict, "clean", "{key}: {reason}"),
        }
    }
    Ok(())
}
