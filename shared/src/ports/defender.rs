//! Where the defender keeps its tallies (`crate::domain::defender`): one per source, per
//! (username, source) pair and per account, shared by every instance that answers logins.
//!
//! # Concurrency: no count is ever lost
//! Many Lambda instances count failures against the same keys at once (a distributed guess at
//! one account hits one account key from everywhere), so [`FailureStore::record_failure`] must be
//! atomic without retry loops that could give up under contention. The tally is shaped for that:
//! four numbers, and the only operation every failure needs is an addition. In DynamoDB, with
//! `cutoff = now - rule.window`, `ttl = rule.expires_at(now)` and the attribute names of
//! `crate::domain::defender::attr`:
//! 1. `UpdateItem ADD score :w SET expiresAt = :ttl`, condition `windowStart > :cutoff`,
//!    `ReturnValues ALL_NEW`. This is the path of every failure but the first of a window, and
//!    an `ADD` never conflicts with another: each writer's weight lands exactly once.
//! 2. If that condition failed (no item, or its window closed): `UpdateItem SET windowStart =
//!    :now, score = :w, expiresAt = :ttl`, condition `attribute_not_exists(windowStart) OR
//!    windowStart <= :cutoff`, `ALL_NEW` (`until` and `strikes` are kept: they remember past
//!    locks). If this condition fails too, another instance opened the window a moment ago: go
//!    back to 1, which now succeeds. (Two rounds at most, short of a window that closes between
//!    the two calls.)
//! 3. If `rule.lock_due(&tally, w, now)`: `UpdateItem SET until = :until, strikes = :strikes`
//!    with the values of `rule.lock_at(&tally, now)`, condition `attribute_not_exists(until) OR
//!    until <= :now`. Several instances may see the threshold reached together; the condition
//!    lets the first one lock and the others find it locked (with
//!    `ReturnValuesOnConditionCheckFailure ALL_OLD` they read the lock that won).
//!
//! Applied one after another in the order DynamoDB serialised them, these give exactly
//! [`crate::domain::defender::Rule::after_failure`]; the in-memory and SQLite stores run that
//! function itself under a lock or in an immediate transaction. A version number with a
//! conditional put was the other design: it loses counts (or retries without end) when many
//! writers meet on one hot key, which is precisely an attack.
//!
//! `ttl` is always the write time plus [`crate::domain::defender::Rule::keep_for`], which covers
//! the window, any lock begun by that write and its memory for repeats, so every write may move
//! the TTL forward. DynamoDB deletes expired items late (up to days): readers judge a tally by
//! its times, never by its presence, so a stale one is simply clear.

use std::future::Future;

use super::StoreError;
use crate::domain::defender::{DefenderKey, Rule, Tally};

/// The defender's shared state.
pub trait FailureStore: Send + Sync {
    /// Whether a store is configured at all: the authenticator makes no call and changes nothing
    /// when not.
    fn enabled(&self) -> bool;

    /// The tallies of `keys`, in their order, `None` where none is stored. One round trip
    /// (DynamoDB: one strongly consistent `BatchGetItem`).
    fn tallies(
        &self,
        keys: &[DefenderKey],
    ) -> impl Future<Output = Result<Vec<Option<Tally>>, StoreError>> + Send;

    /// Counts one failure of `weight` against `key` at `now` and returns the tally after it:
    /// atomically `rule.after_failure(stored, weight, now)`, so that concurrent calls never lose
    /// a count (see the module's documentation for how DynamoDB does it). Writes the TTL
    /// `rule.expires_at(now)`.
    fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> impl Future<Output = Result<Tally, StoreError>> + Send;

    /// Forgets `key`: a right password clears its pair, an operator unbans a source or unlocks a
    /// pair or account. `Ok(false)` when nothing was stored.
    fn clear(&self, key: &DefenderKey) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every key whose lock (ban, throttle or slowdown) runs at `now`, for operators: those
    /// whose `until` is after `now`, in key order. (DynamoDB: a `Scan` filtered on `until`;
    /// the table holds the defender's items only.)
    fn locked(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(DefenderKey, Tally)>, StoreError>> + Send;
}

/// No defender: the default. Every key is clear and nothing is recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDefender;

impl FailureStore for NoDefender {
    fn enabled(&self) -> bool {
        false
    }
    async fn tallies(&self, keys: &[DefenderKey]) -> Result<Vec<Option<Tally>>, StoreError> {
        Ok(vec![None; keys.len()])
    }
    async fn record_failure(
        &self,
        _key: &DefenderKey,
        _weight: u32,
        _rule: &Rule,
        _now: i64,
    ) -> Result<Tally, StoreError> {
        Ok(Tally::default())
    }
    async fn clear(&self, _key: &DefenderKey) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn locked(&self, _now: i64) -> Result<Vec<(DefenderKey, Tally)>, StoreError> {
        Ok(Vec::new())
    }
}

// A store shared by reference, as the tests and `ferry up` hold their ports.
impl<T: FailureStore + ?Sized> FailureStore for &T {
    fn enabled(&self) -> bool {
        (**self).enabled()
    }
    fn tallies(
        &self,
        keys: &[DefenderKey],
    ) -> impl Future<Output = Result<Vec<Option<Tally>>, StoreError>> + Send {
        (**self).tallies(keys)
    }
    fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> impl Future<Output = Result<Tally, StoreError>> + Send {
        (**self).record_failure(key, weight, rule, now)
    }
    fn clear(&self, key: &DefenderKey) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).clear(key)
    }
    fn locked(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(DefenderKey, Tally)>, StoreError>> + Send {
        (**self).locked(now)
    }
}

impl<T: FailureStore + ?Sized> FailureStore for std::sync::Arc<T> {
    fn enabled(&self) -> bool {
        (**self).enabled()
    }
    fn tallies(
        &self,
        keys: &[DefenderKey],
    ) -> impl Future<Output = Result<Vec<Option<Tally>>, StoreError>> + Send {
        (**self).tallies(keys)
    }
    fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> impl Future<Output = Result<Tally, StoreError>> + Send {
        (**self).record_failure(key, weight, rule, now)
    }
    fn clear(&self, key: &DefenderKey) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).clear(key)
    }
    fn locked(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(DefenderKey, Tally)>, StoreError>> + Send {
        (**self).locked(now)
    }
}

// An optional store: without one (not configured), the defender is off.
impl<T: FailureStore> FailureStore for Option<T> {
    fn enabled(&self) -> bool {
        self.as_ref().is_some_and(FailureStore::enabled)
    }
    async fn tallies(&self, keys: &[DefenderKey]) -> Result<Vec<Option<Tally>>, StoreError> {
        match self {
            Some(t) => t.tallies(keys).await,
            None => Ok(vec![None; keys.len()]),
        }
    }
    async fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> Result<Tally, StoreError> {
        match self {
            Some(t) => t.record_failure(key, weight, rule, now).await,
            None => Ok(Tally::default()),
        }
    }
    async fn clear(&self, key: &DefenderKey) -> Result<bool, StoreError> {
        match self {
            Some(t) => t.clear(key).await,
            None => Ok(false),
        }
    }
    async fn locked(&self, now: i64) -> Result<Vec<(DefenderKey, Tally)>, StoreError> {
        match self {
            Some(t) => t.locked(now).await,
            None => Ok(Vec::new()),
        }
    }
}
