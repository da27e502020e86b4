//! The policy-validator Lambda, on the users table's DynamoDB stream (NEW_AND_OLD_IMAGES, with
//! ReportBatchItemFailures). Wiring only: the checks are `ferry_core::app::verdicts`.

use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::sns::SnsAlerts;
use ferry_core::adapters::logging;
use ferry_core::app::now_epoch;
use ferry_core::app::verdicts::process_batch;
use ferry_core::config::ValidatorConfig;
use ferry_core::domain::policy_checks::RecordRules;
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

struct Deps {
    users: DynamoUserStore,
    policies: IamPolicySource,
    alerts: SnsAlerts,
    rules: RecordRules,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(std::env::var("RUST_LOG").ok().as_deref());
    let config = ValidatorConfig::from_env().map_err(|e| {
        tracing::error!(error = %e, "configuration error");
        e
    })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps: &'static Deps = Box::leak(Box::new(Deps {
        users: DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&aws), config.users_table),
        policies: IamPolicySource::new(aws_sdk_iam::Client::new(&aws)),
        alerts: SnsAlerts::new(aws_sdk_sns::Client::new(&aws), config.alert_topic_arn),
        rules: config.rules,
    }));
    Runtime::new(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the batch future nests every SDK call of a record, and the runtime's service
        // layers on top of it took the compiler past its layout depth limit.
        let (answer, _) = Box::pin(process_batch(
            &event.payload,
            &deps.policies,
            &deps.users,
            &deps.alerts,
            &deps.rules,
            now_epoch(),
        ))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "stream event refused");
            lambda_runtime::Error::from(e)
        })?;
        Ok::<Value, lambda_runtime::Error>(answer)
    }))
    .layer(lambda_runtime::layers::TracingLayer::new())
    .run()
    .await
}
