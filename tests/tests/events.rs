//! The sample events in `events/` stay valid: each parses, and each is read as its name
//! says (good ones accepted in their shape, `bad-*` ones refused).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ferry_core::transfer::{Shape, read_event};
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
    use ferry_core::rotation::RotationEvent;
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
