//! Operator alerts and notices on SNS: one JSON message, with string message attributes that
//! subscriptions can filter on.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::Value;
use tracing::{instrument, warn};

use crate::ports::Alerts;
use crate::ports::StoreError;

/// Publishes to one topic; with no topic configured, alerts go to the log only.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: Client,
    topic_arn: Option<String>,
}

impl SnsAlerts {
    pub fn new(client: Client, topic_arn: Option<String>) -> Self {
        Self { client, topic_arn }
    }
}

impl Alerts for SnsAlerts {
    #[instrument(skip_all, fields(topic = self.topic_arn.as_deref()))]
    async fn alert(
        &self,
        subject: &str,
        message: &Value,
        attributes: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let Some(topic) = &self.topic_arn else {
            warn!(%message, "{subject} (no alert topic configured)");
            return Ok(());
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(message.to_string());
        for (name, value) in attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            req = req.message_attributes(*name, attr);
        }
        req.send().await.map_err(|e| StoreError::Unavailable {
            what: "SNS",
            source: Box::new(e),
        })?;
        Ok(())
    }
}

impl crate::ports::Notifier for SnsAlerts {
    async fn notify(&self, message: &Value, attributes: &[(&str, &str)]) -> Result<(), StoreError> {
        self.alert("ferry: upload processed", message, attributes)
            .await
    }
}
