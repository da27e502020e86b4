//! Session policies with the evaluator and the validator's checks: any document is read or
//! refused; a document the validator lets through never allows another user's objects.
#![no_main]

use std::sync::OnceLock;

use ferry_core::domain::access::{Request, SessionPolicy, SessionVariables, Verdict};
use ferry_core::domain::policy::PolicyDocument;
use ferry_core::domain::policy_checks::{check_static, simulate};
use ferry_core::domain::user::UserRecord;
use libfuzzer_sys::fuzz_target;

fn alice() -> &'static UserRecord {
    static USER: OnceLock<UserRecord> = OnceLock::new();
    USER.get_or_init(|| {
        UserRecord::from_json(serde_json::json!({
            "username": "alice",
            "bucket": "bucket",
            "home": "home/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/transfer-home",
        }))
        .expect("the fixed user reads")
    })
}

/// Requests outside alice's home: another user's objects, the bucket root, another bucket.
const OUTSIDE: [(&str, &str); 5] = [
    ("s3:GetObject", "arn:aws:s3:::bucket/home/bob/x"),
    ("s3:PutObject", "arn:aws:s3:::bucket/home/alicebob/x"),
    ("s3:DeleteObject", "arn:aws:s3:::bucket/x"),
    ("s3:GetObject", "arn:aws:s3:::other/home/alice/x"),
    ("s3:PutObject", "arn:aws:s3:::bucket/home/x"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = PolicyDocument::from_json(text);
    let _ = PolicyDocument::from_iam(text);
    let vars = SessionVariables::for_home("/bucket/home/alice", "alice");
    let Ok(policy) = SessionPolicy::parse(text, &vars) else {
        return;
    };
    let inside = Request {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::bucket/home/alice/f",
        context: &[],
    };
    let _ = policy.evaluate(&inside);
    let user = alice();
    if check_static(text, user).is_ok() && simulate(text, user).is_ok() {
        for (action, resource) in OUTSIDE {
            let req = Request {
                action,
                resource,
                context: &[],
            };
            assert_ne!(
                policy.evaluate(&req),
                Verdict::Allow,
                "a policy the validator accepts allows {action} on {resource}"
            );
        }
    }
});
