//! A user record as stored (the data model's plain JSON): read into a typed record or refused
//! with a reason; a record that was read renders and reads back to itself, in both forms.
#![no_main]

use ferry_core::domain::user::UserRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(user) = UserRecord::from_json(value) else {
        return;
    };
    let again = UserRecord::from_json(user.to_json()).expect("a rendered record reads back");
    assert!(again == user, "to_json then from_json changed the record");
    let stored = UserRecord::from_stored(user.to_stored()).expect("a stored record reads back");
    assert!(
        stored == user,
        "to_stored then from_stored changed the record"
    );
});
