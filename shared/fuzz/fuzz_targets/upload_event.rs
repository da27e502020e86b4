//! Upload notifications in every envelope (S3, SNS, SQS, EventBridge, nested): any event is
//! read into the objects it names, each key decoded or refused, never a panic.
#![no_main]

use ferry_core::domain::upload_event::{decode_key, read_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // Keys arrive form-encoded; a decoded key is never longer than what came in.
        if let Some(key) = decode_key(text) {
            assert!(key.len() <= text.len());
        }
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = read_event(&event);
});
