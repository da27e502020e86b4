//! The upload-processor Lambda: S3 ObjectCreated events (direct, or through SNS, SQS or
//! EventBridge). Wiring only: the processing is `ferry_core::app::uploads`.

use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::adapters::aws::sns::SnsAlerts;
use ferry_core::adapters::logging;
use ferry_core::app::uploads::handle_event;
use ferry_core::config::ProcessorConfig;
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

struct Deps {
    objects: S3Objects,
    users: Option<DynamoUserStore>,
    notices: SnsAlerts,
    config: ProcessorConfig,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(std::env::var("RUST_LOG").ok().as_deref());
    let config = ProcessorConfig::from_env().map_err(|e| {
        tracing::error!(error = %e, "configuration error");
        e
    })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps: &'static Deps = Box::leak(Box::new(Deps {
        objects: S3Objects::new(aws_sdk_s3::Client::new(&aws)),
        users: config
            .users_table
            .as_ref()
            .map(|t| DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&aws), t)),
        notices: SnsAlerts::new(
            aws_sdk_sns::Client::new(&aws),
            config.notify_topic_arn.clone(),
        ),
        config,
    }));
    Runtime::new(service_fn(move |event: LambdaEvent<Value>| {
        handle(deps, event.payload)
    }))
    .layer(lambda_runtime::layers::TracingLayer::new())
    .run()
    .await
}

async fn handle(deps: &Deps, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let (answer, _) = handle_event(
        &payload,
        &deps.objects,
        &deps.notices,
        &deps.users,
        &deps.config.upload,
    )
    .await
    .map_err(lambda_runtime::Error::from)?;
    Ok(answer)
}
