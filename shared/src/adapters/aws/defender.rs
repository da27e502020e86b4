//! The defender's tallies in a DynamoDB table of their own (partition key `key`, a TTL attribute
//! `expiresAt`), shared by every auth instance and `ferry up --aws`. Every failure is counted
//! with an atomic `ADD`, so concurrent instances never lose a count; the algorithm and why it
//! is not a versioned put are in `crate::ports::FailureStore`'s documentation.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use tracing::instrument;

use crate::domain::defender::{DefenderKey, Rule, Tally, attr};
use crate::ports::{FailureStore, StoreError};

/// Rounds of the count's two steps before giving up: a window that keeps opening and closing
/// between two calls is a clock problem, not contention.
const ROUNDS: usize = 3;

/// A `BatchGetItem` that DynamoDB answers only in part is asked again for the rest, this often.
const BATCH_RETRIES: usize = 5;

/// The defender's table; `None`: not configured, the defender is off.
#[derive(Debug, Clone)]
pub struct DynamoFailureStore {
    client: Client,
    table: Option<String>,
}

impl DynamoFailureStore {
    pub fn new(client: Client, table: Option<String>) -> Self {
        Self { client, table }
    }

    fn table(&self) -> Result<&str, StoreError> {
        self.table
            .as_deref()
            .ok_or_else(|| StoreError::NotFound("a defender table".into()))
    }

    fn key(key: &DefenderKey) -> HashMap<String, AttributeValue> {
        HashMap::from([(attr::KEY.to_owned(), AttributeValue::S(key.to_string()))])
    }

    /// Step 1 (`open == false`): add to the open window. Step 2 (`open == true`): open a new
    /// window with this failure. `Ok(None)` when the step's condition did not hold: no window
    /// open (step 1), or another instance opened one a moment ago (step 2).
    async fn count(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
        open: bool,
    ) -> Result<Option<Tally>, StoreError> {
        let (update, condition) = if open {
            (
                "SET #start = :now, #score = :w, #expires = :ttl",
                "attribute_not_exists(#start) OR #start <= :cutoff",
            )
        } else {
            ("ADD #score :w SET #expires = :ttl", "#start > :cutoff")
        };
        let mut request = self
            .client
            .update_item()
            .table_name(self.table()?)
            .set_key(Some(Self::key(key)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#score", attr::SCORE)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_names("#start", attr::WINDOW_START)
            .expression_attribute_values(":w", number(weight))
            .expression_attribute_values(":ttl", number(rule.expires_at(now)))
            .expression_attribute_values(":cutoff", number(now.saturating_sub(secs(rule.window))))
            .return_values(ReturnValue::AllNew);
        if open {
            request = request.expression_attribute_values(":now", number(now));
        }
        match request.send().await {
            Ok(out) => tally(out.attributes.as_ref()).map(Some),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Step 3: begin the lock `locked` describes, unless one runs already (another instance saw
    /// the threshold too and locked first: that lock is read and kept).
    async fn lock(
        &self,
        key: &DefenderKey,
        locked: &Tally,
        rule: &Rule,
        now: i64,
    ) -> Result<Tally, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(self.table()?)
            .set_key(Some(Self::key(key)))
            .update_expression("SET #until = :until, #strikes = :strikes, #expires = :ttl")
            .condition_expression("attribute_not_exists(#until) OR #until <= :now")
            .expression_attribute_names("#until", attr::UNTIL)
            .expression_attribute_names("#strikes", attr::STRIKES)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":until", number(locked.until))
            .expression_attribute_values(":strikes", number(locked.strikes))
            .expression_attribute_values(":ttl", number(rule.expires_at(now)))
            .expression_attribute_values(":now", number(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => tally(out.attributes.as_ref()),
            Err(e) if conditional_failed(&e) => {
                let read = self
                    .client
                    .get_item()
                    .table_name(self.table()?)
                    .set_key(Some(Self::key(key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?;
                tally(read.item.as_ref())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl FailureStore for DynamoFailureStore {
    fn enabled(&self) -> bool {
        self.table.is_some()
    }

    #[instrument(skip_all, fields(keys = keys.len()))]
    async fn tallies(&self, keys: &[DefenderKey]) -> Result<Vec<Option<Tally>>, StoreError> {
        let table = self.table()?;
        let wanted: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let mut found: HashMap<String, Tally> = HashMap::new();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys.iter().map(Self::key).collect()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        );
        for _ in 0..BATCH_RETRIES {
            let Some(ask) = request.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(table, ask)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default()
            {
                if let Some(AttributeValue::S(k)) = item.get(attr::KEY) {
                    found.insert(k.clone(), tally(Some(&item))?);
                }
            }
            request = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .filter(|k| !k.keys().is_empty());
        }
        if request.is_some() {
            return Err(StoreError::Unavailable {
                what: "DynamoDB",
                source: "the defender's tallies were not all read (throttled)".into(),
            });
        }
        Ok(wanted.iter().map(|k| found.get(k).copied()).collect())
    }

    #[instrument(skip_all, fields(key = %key))]
    async fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> Result<Tally, StoreError> {
        for _ in 0..ROUNDS {
            let counted = match self.count(key, weight, rule, now, false).await? {
                Some(t) => Some(t),
                None => self.count(key, weight, rule, now, true).await?,
            };
            if let Some(t) = counted {
                if rule.lock_due(&t, weight, now) {
                    let locked = rule.lock_at(&t, now);
                    return self.lock(key, &locked, rule, now).await;
                }
                return Ok(t);
            }
        }
        Err(StoreError::Unavailable {
            what: "DynamoDB",
            source: "the defender's count did not settle".into(),
        })
    }

    #[instrument(skip_all, fields(key = %key))]
    async fn clear(&self, key: &DefenderKey) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table()?)
            .set_key(Some(Self::key(key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    #[instrument(skip(self))]
    async fn locked(&self, now: i64) -> Result<Vec<(DefenderKey, Tally)>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(self.table()?)
            .filter_expression("#until > :now")
            .expression_attribute_names("#until", attr::UNTIL)
            .expression_attribute_values(":now", number(now))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(unavailable)? {
            for item in page.items() {
                let Some(AttributeValue::S(k)) = item.get(attr::KEY) else {
                    return Err(StoreError::Malformed("a defender item has no key".into()));
                };
                let key =
                    DefenderKey::parse(k).map_err(|e| StoreError::Malformed(e.to_string()))?;
                out.push((key, tally(Some(item))?));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// A tally from an item's attributes; absent numbers are 0 (a key never locked has no `until`).
fn tally(item: Option<&HashMap<String, AttributeValue>>) -> Result<Tally, StoreError> {
    let Some(item) = item else {
        return Ok(Tally::default());
    };
    let int = |name: &str| -> Result<i64, StoreError> {
        match item.get(name) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
                StoreError::Malformed(format!("defender attribute {name} is not a number"))
            }),
            Some(_) => Err(StoreError::Malformed(format!(
                "defender attribute {name} is not a number"
            ))),
        }
    };
    let small = |name: &str| -> Result<u32, StoreError> {
        u32::try_from(int(name)?.max(0)).map_err(|_| {
            StoreError::Malformed(format!("defender attribute {name} is out of range"))
        })
    };
    Ok(Tally {
        window_start: int(attr::WINDOW_START)?,
        score: small(attr::SCORE)?,
        until: int(attr::UNTIL)?,
        strikes: small(attr::STRIKES)?,
    })
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn conditional_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable {
        what: "DynamoDB",
        source: Box::new(e),
    }
}
