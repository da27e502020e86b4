//! Salt rotation as the Lambda runs it, one step at a time (moto cannot run the Lambda itself),
//! for the rotation and fault suites.

use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::secretsmanager::SecretsManagerRotation;
use ferry_core::app::rotation::{
    Outcome, RotationError, RotationEvent, Step, WithLegacy, run_step,
};
use serde_json::json;

use crate::Fixture;
use crate::fixture::unique;

/// The four steps, in the order Secrets Manager calls them.
pub const STEPS: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

/// The salt usage the rotation prunes by: the users table, and the seed table when there is one.
pub type Usage = WithLegacy<DynamoUserStore, DynamoLegacyUsers>;

/// The usage of `f`'s users table and, if named, a seed-design table.
pub fn usage(f: &Fixture, legacy_table: Option<&str>) -> Usage {
    WithLegacy {
        users: DynamoUserStore::new(f.ddb.clone(), &f.table),
        legacy: DynamoLegacyUsers::new(f.ddb.clone(), legacy_table.map(str::to_owned)),
    }
}

/// One step, as the Lambda runs it: the event Secrets Manager would send, parsed, then run.
pub async fn step(
    f: &Fixture,
    usage: &Usage,
    step: Step,
    token: &str,
) -> Result<Outcome, RotationError> {
    let event = RotationEvent::parse(&json!({
        "Step": step.as_str(),
        "SecretId": f.secret_id,
        "ClientRequestToken": token,
        "RotationToken": "cross-account-token-never-read",
    }))?;
    let secret = SecretsManagerRotation::new(f.secrets.clone(), &event.secret_id);
    run_step(&secret, usage, event.step, &event.token).await
}

/// Turns rotation on as RotateSecret does, with `token` staged AWSPENDING. moto wants a Lambda
/// to exist first (a stub: it never runs it) and, unlike AWS, stages a copy of the current
/// value, which createSecret must replace.
pub async fn start_rotation(f: &Fixture) -> anyhow::Result<String> {
    start_rotation_inner(f)
        .await
        .map_err(|e| anyhow::anyhow!("starting the rotation: {}", chain(e.as_ref())))
}

/// An error with its sources, for a test's failure message.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    ferry_core::ports::error_chain(e)
}

async fn start_rotation_inner(
    f: &Fixture,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let lambda = aws_sdk_lambda::Client::new(&f.sdk);
    let name = unique("rotator");
    let role = f
        .iam
        .create_role()
        .role_name(unique("rotator-role"))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await?;
    // The smallest valid zip: an empty archive's end-of-central-directory record.
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend_from_slice(&[0u8; 18]);
    let function = lambda
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().map(|r| r.arn()).unwrap_or_default())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                .build(),
        )
        .send()
        .await?;
    let token = token();
    f.secrets
        .rotate_secret()
        .secret_id(&f.secret_id)
        .rotation_lambda_arn(function.function_arn().unwrap_or_default())
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .client_request_token(&token)
        .send()
        .await?;
    Ok(token)
}

/// A ClientRequestToken, unique per call (32–64 characters, as Secrets Manager wants).
pub fn token() -> String {
    format!("{:0<40}", unique("token").replace('-', "x"))
        .chars()
        .take(64)
        .collect()
}
