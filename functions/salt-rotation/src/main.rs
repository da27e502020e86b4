//! The salt-rotation Lambda: Secrets Manager calls it once per rotation step for the salt
//! keyring secret. Wiring only: the steps are `ferry_core::app::rotation`.

use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::secretsmanager::SecretsManagerRotation;
use ferry_core::adapters::logging;
use ferry_core::app::rotation::{RotationEvent, WithLegacy, run_step};
use ferry_core::config::RotationConfig;
use ferry_core::ports::error_chain;
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

/// What every invocation shares.
struct Deps {
    secrets: aws_sdk_secretsmanager::Client,
    usage: WithLegacy<DynamoUserStore, DynamoLegacyUsers>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(std::env::var("RUST_LOG").ok().as_deref());
    let config = RotationConfig::from_env().map_err(|e| {
        tracing::error!(error = %e, "configuration error");
        e
    })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let deps: &'static Deps = Box::leak(Box::new(Deps {
        secrets: aws_sdk_secretsmanager::Client::new(&aws),
        usage: WithLegacy {
            users: DynamoUserStore::new(dynamodb.clone(), config.users_table),
            legacy: DynamoLegacyUsers::new(dynamodb, config.legacy_users_table),
        },
    }));
    Runtime::new(service_fn(move |event: LambdaEvent<Value>| {
        handle(deps, event.payload)
    }))
    .layer(lambda_runtime::layers::TracingLayer::new())
    .run()
    .await
}

/// One step. A failure is returned as the function's error, which fails the rotation in
/// Secrets Manager and leaves the secret as it was.
async fn handle(deps: &Deps, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let event = RotationEvent::parse(&payload).map_err(|e| {
        tracing::error!(error = %e, "rotation event refused");
        e
    })?;
    let secret = SecretsManagerRotation::new(deps.secrets.clone(), &event.secret_id);
    match run_step(&secret, &deps.usage, event.step, &event.token).await {
        Ok(outcome) => {
            tracing::info!(step = event.step.as_str(), secret_id = %event.secret_id, ?outcome, "rotation step done");
            Ok(Value::Null)
        }
        Err(e) => {
            tracing::error!(step = event.step.as_str(), secret_id = %event.secret_id, error = %error_chain(&e), "rotation step failed");
            Err(e.into())
        }
    }
}
