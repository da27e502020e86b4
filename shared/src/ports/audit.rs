//! Where audit events go. Two capabilities: a sink the login path hands events to without
//! waiting (so publishing adds nothing to a login's latency), and a publisher that sends a batch
//! somewhere (EventBridge, a JSON-lines file), which a background task drives.

use std::future::Future;

use super::StoreError;
use crate::domain::audit::AuditEvent;

/// Takes an event without waiting for it to be sent. Never fails: an event that cannot be
/// queued is counted and logged by the sink, and the login goes on.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    fn submit(&self, event: AuditEvent);
}

/// Sends a batch of events (at most 10: EventBridge's limit for one call).
pub trait EventPublisher: Send + Sync + 'static {
    fn publish(&self, events: &[AuditEvent])
    -> impl Future<Output = Result<(), StoreError>> + Send;
}
