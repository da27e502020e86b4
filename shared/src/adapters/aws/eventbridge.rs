//! Audit events on an EventBridge bus: one `PutEvents` per batch, source `ferry`, detail-type
//! `ferry login` or `ferry defender`, the event as the detail. Rules on the bus route them (to a
//! queue, a log group, an alarm's metric).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::instrument;

use crate::domain::audit::AuditEvent;
use crate::ports::{EventPublisher, StoreError};

/// The `source` of every event ferry publishes.
pub const SOURCE: &str = "ferry";

#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    #[instrument(skip_all, fields(bus = %self.bus, events = events.len()))]
    async fn publish(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let entries = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(e.kind().detail_type())
                    .detail(e.detail())
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable {
                what: "EventBridge",
                source: Box::new(e),
            })?;
        match out.failed_entry_count() {
            0 => Ok(()),
            n => Err(StoreError::Unavailable {
                what: "EventBridge",
                source: format!("{n} of {} events were refused", events.len()).into(),
            }),
        }
    }
}
