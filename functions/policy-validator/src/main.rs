//! The policy-validator Lambda, on the users table's DynamoDB stream (NEW_AND_OLD_IMAGES, with
//! ReportBatchItemFailures). Wiring only: the checks are `ferry_core::validator`.

use ferry_core::auth::now_epoch;
use ferry_core::aws::dynamodb::DynamoUserStore;
use ferry_core::aws::iam::IamPolicySource;
use ferry_core::aws::sns::SnsAlerts;
use ferry_core::config::ValidatorConfig;
use ferry_core::logging;
use ferry_core::validate::RecordRules;
use ferry_core::validator::process_batch;
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
        let (answer, _) = process_batch(
            &event.payload,
            &deps.policies,
            &deps.users,
            &deps.alerts,
            &deps.rules,
            now_epoch(),
        )
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
