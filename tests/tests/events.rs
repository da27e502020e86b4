//! The sample events in `events/auth/` stay valid: each parses, and each is read as its name
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
