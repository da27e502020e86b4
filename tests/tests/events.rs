//! The sample events in `events/` stay valid: each parses, and each is read as its name
//! says (good ones accepted in their shape, `bad-*` ones refused).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ferry_core::domain::transfer::{Shape, read_event};
use ferry_tests::fixture::sample_events;

#[test]
fn every_sample_event_is_read_as_its_name_says() {
    let events = sample_events().expect("sample events load");
    assert!(
        events.len() >= 10,
        "expected the sample set, found {}",
        events.len()
    );
    for (name, event) in events {
        let (shape, result) = read_event(&event);
        if name.starts_with("bad-") {
            assert!(result.is_err(), "{name} should be refused");
        } else {
            assert!(
                result.is_ok(),
                "{name} should be accepted: {:?}",
                result.err().map(|e| e.0)
            );
            let want = if name.starts_with("apigw-") {
                Shape::ApiGateway
            } else {
                Shape::Direct
            };
            assert_eq!(shape, want, "{name}");
        }
    }
}

#[test]
fn every_salt_rotation_sample_is_read_as_its_name_says() {
    use ferry_core::app::rotation::RotationEvent;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/salt-rotation");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let parsed = RotationEvent::parse(&event);
        if name.starts_with("bad-") {
            assert!(parsed.is_err(), "{name} should be refused");
        } else {
            assert_eq!(parsed.unwrap().step.as_str(), name, "{name}");
        }
        seen += 1;
    }
    assert_eq!(seen, 6);
}

/// The policy store and the table as the samples assume them: the canonical policy exists, and
/// every verdict write succeeds (recorded, so the test can see what would be written).
struct SamplePorts(std::sync::Mutex<Vec<(String, Option<String>)>>);

impl ferry_core::ports::PolicySource for SamplePorts {
    async fn load_policy(
        &self,
        _arn: &str,
    ) -> Result<ferry_core::domain::policy::PolicyDocument, ferry_core::ports::StoreError> {
        Ok(ferry_core::domain::policy::PolicyDocument::from_json(
            ferry_core::domain::policy::CANONICAL_SCOPE_DOWN,
        )
        .unwrap())
    }
}

impl ferry_core::ports::VerdictWriter for SamplePorts {
    async fn write_verdict(
        &self,
        username: &str,
        _seen: &[(&'static str, Option<serde_dynamo::AttributeValue>)],
        status: Option<ferry_core::domain::user::Status>,
        _reason: &str,
        _at: i64,
    ) -> Result<bool, ferry_core::ports::StoreError> {
        self.0
            .lock()
            .unwrap()
            .push((username.to_owned(), status.map(|s| s.as_str().to_owned())));
        Ok(true)
    }
}

impl ferry_core::ports::Alerts for SamplePorts {
    async fn alert(
        &self,
        _subject: &str,
        _message: &serde_json::Value,
        _attributes: &[(&str, &str)],
    ) -> Result<(), ferry_core::ports::StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn every_policy_validator_sample_is_handled_as_its_name_says() {
    use ferry_core::app::verdicts::{RecordOutcome, process_batch};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/policy-validator");
    let run = |name: &'static str| {
        let event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        async move {
            let ports = SamplePorts(std::sync::Mutex::new(Vec::new()));
            let rules = ferry_core::domain::policy_checks::RecordRules::default();
            let (answer, outcomes) = process_batch(&event, &ports, &ports, &ports, &rules, 0)
                .await
                .unwrap();
            assert_eq!(
                answer,
                serde_json::json!({"batchItemFailures": []}),
                "{name}"
            );
            (outcomes, ports.0.into_inner().unwrap())
        }
    };
    let (outcomes, writes) = run("insert-valid").await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Valid {
            username: "alice".into()
        }]
    );
    assert_eq!(writes, [("alice".to_owned(), Some("active".to_owned()))]);
    let (outcomes, writes) = run("modify-password-only").await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Skipped("no validated field changed")]
    );
    assert!(writes.is_empty());
    let (outcomes, _) = run("remove").await;
    assert_eq!(outcomes, [RecordOutcome::Skipped("removed")]);
    let (outcomes, writes) = run("bad-no-new-image").await;
    assert!(matches!(outcomes[..], [RecordOutcome::Malformed(_)]));
    assert!(writes.is_empty());
}

#[test]
fn every_upload_processor_sample_is_read_as_its_name_says() {
    use ferry_core::domain::upload_event::{Delivered, read_event};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/upload-processor");
    let read = |name: &str| {
        let event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        read_event(&event)
    };
    for name in ["s3-put", "sqs-s3", "sns-s3"] {
        let delivered = read(name);
        let [
            Delivered::Objects {
                objects,
                message_id,
            },
        ] = &delivered[..]
        else {
            panic!("{name}: {delivered:?}");
        };
        assert_eq!(objects.len(), 1, "{name}");
        assert_eq!(objects[0].bucket, "ferry-transfer");
        assert_eq!(objects[0].key, "home/alice/red flower + café.csv", "{name}");
        assert_eq!(message_id.is_some(), name == "sqs-s3", "{name}");
    }
    let delivered = read("eventbridge");
    assert!(
        matches!(&delivered[..], [Delivered::Objects { objects, .. }] if objects[0].key == "home/alice/report.csv")
    );
    assert!(matches!(read("s3-test-event")[..], [Delivered::Ignored(_)]));
    assert!(matches!(
        &read("bad-sqs-body")[..],
        [Delivered::Malformed { message_id: Some(id), .. }] if id == "m-bad"
    ));
}
