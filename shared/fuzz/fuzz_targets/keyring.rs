//! The salt keyring as Secrets Manager holds it: any SecretString is a keyring or a refusal,
//! and a keyring renders and reads back to itself.
#![no_main]

use ferry_core::domain::keyring::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(keyring) = Keyring::parse(text) else {
        return;
    };
    assert!(keyring.salt(keyring.current_version()).is_some());
    let again = Keyring::parse(&keyring.to_secret_string()).expect("a rendered keyring reads back");
    assert!(again == keyring, "render then parse changed the keyring");
});
