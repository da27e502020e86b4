//! The upload-processor Lambda: S3 ObjectCreated events (direct, or through SNS, SQS or
//! EventBridge). Wiring only: the processing is `ferry_core::upload`.

use ferry_core::aws::s3::S3Objects;
use ferry_core::aws::sns::SnsAlerts;
use ferry_core::config::ProcessorConfig;
use ferry_core::logging;
use ferry_core::upload::{Delivered, UploadOutcome, process, read_event};
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::{Value, json};

struct Deps {
    objects: S3Objects,
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

/// SQS deliveries report failed messages in `batchItemFailures`; a direct or SNS delivery with a
/// transient failure fails the invocation, so Lambda's own retries apply.
async fn handle(deps: &Deps, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let mut failures = Vec::new();
    let mut failed_unbatched = false;
    for delivered in read_event(&payload) {
        match delivered {
            Delivered::Objects {
                message_id,
                objects,
            } => {
                for object in objects {
                    let outcome =
                        process(&object, &deps.objects, &deps.notices, &deps.config.upload).await;
                    if let UploadOutcome::Transient(why) = &outcome {
                        tracing::warn!(key = %object.key, error = %why, "upload not processed; will be retried");
                        match &message_id {
                            Some(id)
                                if !failures.iter().any(|f: &Value| f["itemIdentifier"] == *id) =>
                            {
                                failures.push(json!({"itemIdentifier": id}));
                            }
                            Some(_) => {}
                            None => failed_unbatched = true,
                        }
                    }
                }
            }
            Delivered::Ignored(why) => tracing::info!(why, "record ignored"),
            Delivered::Malformed { reason, .. } => {
                tracing::warn!(reason, "malformed record dropped");
            }
        }
    }
    if failed_unbatched {
        return Err("an upload failed transiently; the invocation is retried".into());
    }
    Ok(json!({"batchItemFailures": failures}))
}
