//! The identity-provider request, in both shapes (a direct Lambda event, API Gateway's): any
//! JSON is read into a request or refused with a code, and the answer renders in its shape.
#![no_main]

use ferry_core::domain::transfer::{Credential, read_event, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let (shape, request) = read_event(&event);
    match request {
        Ok(request) => {
            // A request that was read holds a username that parses again to itself.
            let again = ferry_core::domain::username::Username::parse(request.username.as_str());
            assert_eq!(again.as_ref().ok(), Some(&request.username));
            if let Credential::Password(p) = &request.credential {
                assert!(
                    !p.expose().is_empty(),
                    "an empty password is refused when read"
                );
            }
        }
        Err((error, _partial)) => {
            let _ = error.code();
        }
    }
    // The denial is one fixed shape, whatever came in.
    let denial = render(shape, None);
    assert!(denial.is_object());
});
