//! A users-table stream batch through the policy validator's use case (in-memory ports): any
//! batch is judged record by record, a malformed record is skipped on its own, never a panic.
#![no_main]

use std::sync::OnceLock;

use ferry_core::app::verdicts::process_batch;
use ferry_core::domain::policy::PolicyDocument;
use ferry_core::domain::policy_checks::RecordRules;
use ferry_core::domain::user::Status;
use ferry_core::ports::{Alerts, StoreError, VerdictWriter};
use ferry_core::testing::MemoryPolicies;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

struct Writer;

impl VerdictWriter for Writer {
    async fn write_verdict(
        &self,
        _username: &str,
        _seen: &[(&'static str, Option<serde_dynamo::AttributeValue>)],
        _status: Option<Status>,
        _reason: &str,
        _at: i64,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
}

struct NoAlerts;

impl Alerts for NoAlerts {
    async fn alert(&self, _: &str, _: &Value, _: &[(&str, &str)]) -> Result<(), StoreError> {
        Ok(())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let policies = MemoryPolicies::new();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeBucket}/${transfer:UserName}/*"}]}"#;
    policies.insert(
        "arn:aws:iam::123456789012:policy/transfer-home",
        PolicyDocument::from_json(doc).expect("the seed policy parses"),
    );
    let rules = RecordRules::default();
    let outcome = runtime().block_on(process_batch(
        &event,
        &policies,
        &Writer,
        &NoAlerts,
        &rules,
        1_700_000_000,
    ));
    if let Ok((response, outcomes)) = outcome {
        assert!(response.get("batchItemFailures").is_some());
        let records = event["Records"].as_array().map_or(0, Vec::len);
        assert_eq!(outcomes.len(), records, "one outcome per record");
    }
});
