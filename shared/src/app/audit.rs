//! Publishing audit events off the login path. The login hands each event to a bounded queue
//! (`try_send`: never waits, never blocks a login) and a background task sends them in batches
//! of up to ten. Publishing in line would add a PutEvents round trip (milliseconds) to every
//! login; this adds a queue push (well under a millisecond, measured in the auth bench).
//!
//! Delivery is at most once: a full queue drops the event (counted and logged), and on Lambda an
//! instance frozen between invocations sends what it queued when it next runs, or never if it is
//! reclaimed first. The `ferry::audit` log line written for every login is the durable record;
//! the events are for rules, dashboards and alarms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use crate::domain::audit::AuditEvent;
use crate::ports::{AuditSink, EventPublisher, error_chain};

/// Events waiting at most; a login never waits for room.
pub const QUEUE: usize = 1024;
/// Events per publish call (EventBridge's limit for one PutEvents).
pub const BATCH: usize = 10;

/// The sink the authenticator holds: a handle on the queue.
#[derive(Debug, Clone)]
pub struct BackgroundAudit {
    queue: mpsc::Sender<AuditEvent>,
    dropped: Arc<AtomicU64>,
}

impl BackgroundAudit {
    /// Starts the task that drains the queue into `publisher`. Needs a tokio runtime.
    pub fn start<P: EventPublisher>(publisher: P) -> Self {
        let (queue, mut events) = mpsc::channel::<AuditEvent>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while events.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = publisher.publish(&batch).await {
                    warn!(error = %error_chain(&e), events = batch.len(), "audit events not published");
                    // A failing bus is not hammered: the next batch waits a little.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                batch.clear();
            }
        });
        Self {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Events dropped because the queue was full (or the task gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditSink for BackgroundAudit {
    fn submit(&self, event: AuditEvent) {
        if self.queue.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(dropped = n, "audit event dropped: the queue is full");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::DefenderEvent;
    use crate::ports::StoreError;
    use std::sync::Mutex;

    #[derive(Default, Clone)]
    struct Collect(Arc<Mutex<Vec<usize>>>);

    impl EventPublisher for Collect {
        async fn publish(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(events.len());
            Ok(())
        }
    }

    fn event(i: u32) -> AuditEvent {
        AuditEvent::Defender(DefenderEvent {
            action: "banned",
            key: format!("source#198.51.100.{i}"),
            until: 1,
            strikes: 1,
            at: 0,
        })
    }

    #[tokio::test]
    async fn events_are_sent_in_batches_of_at_most_ten_and_none_is_lost_below_the_bound() {
        let sent = Collect::default();
        let audit = BackgroundAudit::start(sent.clone());
        for i in 0..25 {
            audit.submit(event(i));
        }
        for _ in 0..100 {
            if sent.0.lock().unwrap().iter().sum::<usize>() == 25 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let batches = sent.0.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 25);
        assert!(batches.iter().all(|n| *n <= BATCH), "{batches:?}");
        assert_eq!(audit.dropped(), 0);
    }
}
