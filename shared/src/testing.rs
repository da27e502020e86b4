//! In-memory ports, for fast tests of the use cases without any service: a users table, a salt
//! keyring, managed policies, the seed design's legacy table, the defender's tallies and a
//! directory identity source.
//!
//! Each store behaves as the real ones do where a use case can tell (conditional writes, a missing
//! policy is `NotFound`), can be switched to fail ([`Fault`]) so that fault paths are reachable,
//! and counts its calls so that a test can say how often a service was asked. Calls are counted
//! whether they succeed or fail: a call that was made is a call the service was charged for.
//!
//! Compiled for this crate's tests and, with the `testing` feature, for other crates' tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::domain::defender::{DefenderKey, Rule, Tally};
use crate::domain::directory::DirectoryUser;
use crate::domain::keyring::Keyring;
use crate::domain::password::Password;
use crate::domain::policy::PolicyDocument;
use crate::domain::user::UserRecord;
use crate::domain::username::Username;
use crate::ports::{
    DirectoryAnswer, DirectoryFuture, DirectoryRefusal, FailureStore, IdentitySource, LegacyUser,
    LegacyUsers, PolicySource, SaltSource, StoreError, UserAdmin, UserPage, UserStore,
};

/// How a switched-off store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// [`StoreError::Unavailable`]: the service is down.
    Unavailable,
    /// [`StoreError::Malformed`]: the service answers with something unusable.
    Malformed,
}

impl Fault {
    fn error(self, what: &'static str) -> StoreError {
        match self {
            Self::Unavailable => StoreError::Unavailable {
                what,
                source: "switched off by the test".into(),
            },
            Self::Malformed => StoreError::Malformed(format!("{what} answered with garbage")),
        }
    }
}

/// `Err` when `fault` is set, counting the call either way.
fn call(
    counter: &AtomicUsize,
    fault: &Mutex<Option<Fault>>,
    what: &'static str,
) -> Result<(), StoreError> {
    counter.fetch_add(1, Ordering::SeqCst);
    match *lock(fault) {
        Some(f) => Err(f.error(what)),
        None => Ok(()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding a lock has failed already; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A users table: records by username, with the conditional writes of the real stores.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    records: Mutex<BTreeMap<Username, UserRecord>>,
    read_fault: Mutex<Option<Fault>>,
    write_fault: Mutex<Option<Fault>>,
    /// Stored right after the next read: see [`MemoryUsers::write_after_next_read`].
    pending: Mutex<Option<UserRecord>>,
    reads: AtomicUsize,
    writes: AtomicUsize,
    touches: AtomicUsize,
}

impl MemoryUsers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `record` (replacing any user of that name) and returns the one it replaced. Not
    /// counted as a write: this is the test setting the scene.
    pub fn insert(&self, record: UserRecord) -> Option<UserRecord> {
        lock(&self.records).insert(record.username.clone(), record)
    }

    /// Removes a user and returns their record.
    pub fn remove(&self, username: &str) -> Option<UserRecord> {
        let name = Username::parse(username).ok()?;
        lock(&self.records).remove(&name)
    }

    /// The stored record, without counting a read (for a test's assertions).
    pub fn record(&self, username: &str) -> Option<UserRecord> {
        let name = Username::parse(username).ok()?;
        lock(&self.records).get(&name).cloned()
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A concurrent writer: `record` is stored right after the next read has been answered, so
    /// the reader's later conditional write meets a changed record (or a user it did not see).
    pub fn write_after_next_read(&self, record: UserRecord) {
        *lock(&self.pending) = Some(record);
    }

    /// Makes every read fail with `fault`.
    pub fn fail_reads_with(&self, fault: Fault) {
        *lock(&self.read_fault) = Some(fault);
    }

    /// Makes every write fail with `fault` (reads still work).
    pub fn fail_writes_with(&self, fault: Fault) {
        *lock(&self.write_fault) = Some(fault);
    }

    /// Reads and writes work again.
    pub fn recover(&self) {
        *lock(&self.read_fault) = None;
        *lock(&self.write_fault) = None;
    }

    /// `get_user` calls so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// `replace_hash` and `create_user` calls so far, whether or not their condition held.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// `touch_last_login` calls so far, whether or not their condition held (counted apart from
    /// [`Self::writes`]: they fail with the same `fail_writes_with`).
    pub fn touches(&self) -> usize {
        self.touches.load(Ordering::SeqCst)
    }
}

impl UserStore for MemoryUsers {
    async fn get_user(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        call(&self.reads, &self.read_fault, "users table")?;
        let found = lock(&self.records).get(username).cloned();
        if let Some(change) = lock(&self.pending).take() {
            self.insert(change);
        }
        Ok(found)
    }

    async fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> Result<bool, StoreError> {
        call(&self.writes, &self.write_fault, "users table")?;
        // The condition and the write under one lock: atomic, as DynamoDB's are.
        let mut records = lock(&self.records);
        match records.get_mut(username) {
            Some(user) if user.password_hash.as_deref() == Some(old_hash) => {
                user.password_hash = Some(new_hash.to_owned());
                user.salt_version = Some(salt_version.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> Result<bool, StoreError> {
        call(&self.writes, &self.write_fault, "users table")?;
        let mut records = lock(&self.records);
        match records.get_mut(username) {
            Some(user) if user.password_hash.is_none() => {
                user.password_hash = Some(new_hash.to_owned());
                user.salt_version = Some(salt_version.to_owned());
                user.password_changed_at = Some(changed_at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        call(&self.touches, &self.write_fault, "users table")?;
        let mut records = lock(&self.records);
        match records.get_mut(username) {
            Some(user) if user.last_login_at == seen => {
                user.last_login_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        call(&self.writes, &self.write_fault, "users table")?;
        let mut records = lock(&self.records);
        if records.contains_key(&record.username) {
            return Ok(false);
        }
        records.insert(record.username.clone(), record.clone());
        Ok(true)
    }
}

/// The administration side of the same table: records travel as the data model's JSON, pages
/// of 100 in username order.
impl UserAdmin for MemoryUsers {
    async fn put_user(&self, record: &UserRecord, overwrite: bool) -> Result<bool, StoreError> {
        call(&self.writes, &self.write_fault, "users table")?;
        let mut records = lock(&self.records);
        if !overwrite && records.contains_key(&record.username) {
            return Ok(false);
        }
        records.insert(record.username.clone(), record.clone());
        Ok(true)
    }

    async fn get_raw(&self, username: &Username) -> Result<Option<serde_json::Value>, StoreError> {
        call(&self.reads, &self.read_fault, "users table")?;
        Ok(lock(&self.records).get(username).map(UserRecord::to_json))
    }

    async fn delete_user(&self, username: &Username) -> Result<bool, StoreError> {
        call(&self.writes, &self.write_fault, "users table")?;
        Ok(lock(&self.records).remove(username).is_some())
    }

    async fn list_users(&self, start: Option<String>) -> Result<UserPage, StoreError> {
        call(&self.reads, &self.read_fault, "users table")?;
        let records = lock(&self.records);
        let mut page: Vec<&UserRecord> = records
            .values()
            .filter(|u| start.as_deref().is_none_or(|s| u.username.as_str() > s))
            .take(101)
            .collect();
        let next = (page.len() > 100).then(|| {
            page.truncate(100);
            page.last().map(|u| u.username.as_str().to_owned())
        });
        Ok(UserPage {
            users: page.into_iter().map(UserRecord::to_json).collect(),
            next: next.flatten(),
        })
    }
}

/// A salt keyring, replaceable as a rotation replaces the secret's current version.
#[derive(Debug)]
pub struct MemoryKeyring {
    keyring: Mutex<Keyring>,
    fault: Mutex<Option<Fault>>,
    loads: AtomicUsize,
}

impl MemoryKeyring {
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring: Mutex::new(keyring),
            fault: Mutex::new(None),
            loads: AtomicUsize::new(0),
        }
    }

    /// Makes `keyring` the current one (a finished rotation).
    pub fn replace(&self, keyring: Keyring) {
        *lock(&self.keyring) = keyring;
    }

    /// The keyring held now.
    pub fn keyring(&self) -> Keyring {
        lock(&self.keyring).clone()
    }

    /// Makes every load fail with `fault`.
    pub fn fail_with(&self, fault: Fault) {
        *lock(&self.fault) = Some(fault);
    }

    /// Loads work again.
    pub fn recover(&self) {
        *lock(&self.fault) = None;
    }

    /// `load_keyring` calls so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl SaltSource for MemoryKeyring {
    async fn load_keyring(&self) -> Result<Keyring, StoreError> {
        call(&self.loads, &self.fault, "salt keyring")?;
        Ok(self.keyring())
    }
}

/// Managed policies by ARN; an ARN that is not there is [`StoreError::NotFound`], as in IAM.
#[derive(Debug, Default)]
pub struct MemoryPolicies {
    documents: Mutex<BTreeMap<String, PolicyDocument>>,
    fault: Mutex<Option<Fault>>,
    loads: AtomicUsize,
}

impl MemoryPolicies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores (or replaces) the document of `arn`.
    pub fn insert(&self, arn: impl Into<String>, document: PolicyDocument) {
        lock(&self.documents).insert(arn.into(), document);
    }

    /// Makes every load fail with `fault`.
    pub fn fail_with(&self, fault: Fault) {
        *lock(&self.fault) = Some(fault);
    }

    /// Loads work again.
    pub fn recover(&self) {
        *lock(&self.fault) = None;
    }

    /// `load_policy` calls so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl PolicySource for MemoryPolicies {
    async fn load_policy(&self, arn: &str) -> Result<PolicyDocument, StoreError> {
        call(&self.loads, &self.fault, "policy source")?;
        lock(&self.documents)
            .get(arn)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("policy {arn}")))
    }
}

/// The seed design's table: legacy users by their seed key (see
/// [`crate::app::login::migration::legacy_key`]).
#[derive(Debug, Default)]
pub struct MemoryLegacy {
    items: Mutex<BTreeMap<String, LegacyUser>>,
    fault: Mutex<Option<Fault>>,
    finds: AtomicUsize,
    removes: AtomicUsize,
}

impl MemoryLegacy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `user` under `key`.
    pub fn insert(&self, key: impl Into<String>, user: LegacyUser) {
        lock(&self.items).insert(key.into(), user);
    }

    /// Whether an item is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        lock(&self.items).contains_key(key)
    }

    /// How many items remain (for a test's assertions: never fails, unlike
    /// [`LegacyUsers::count`]).
    pub fn len(&self) -> usize {
        lock(&self.items).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every call fail with `fault`.
    pub fn fail_with(&self, fault: Fault) {
        *lock(&self.fault) = Some(fault);
    }

    /// Calls work again.
    pub fn recover(&self) {
        *lock(&self.fault) = None;
    }

    /// `find` calls so far.
    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }

    /// `remove` calls so far.
    pub fn removes(&self) -> usize {
        self.removes.load(Ordering::SeqCst)
    }
}

impl LegacyUsers for MemoryLegacy {
    fn enabled(&self) -> bool {
        true
    }

    async fn find(&self, key: &str) -> Result<Option<LegacyUser>, StoreError> {
        call(&self.finds, &self.fault, "legacy table")?;
        Ok(lock(&self.items).get(key).cloned())
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        call(&self.removes, &self.fault, "legacy table")?;
        lock(&self.items).remove(key);
        Ok(())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        if let Some(f) = *lock(&self.fault) {
            return Err(f.error("legacy table"));
        }
        Ok(u64::try_from(self.len()).unwrap_or(u64::MAX))
    }

    async fn items_of(&self, username: &str) -> Result<Vec<(String, LegacyUser)>, StoreError> {
        if let Some(f) = *lock(&self.fault) {
            return Err(f.error("legacy table"));
        }
        Ok(lock(&self.items)
            .iter()
            .filter(|(_, u)| u.username == username)
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect())
    }
}

/// The defender's tallies by key. A failure is counted under the one lock the tallies are held
/// by, with the domain's own rule, so concurrent logins never lose a count (as the real stores
/// promise).
#[derive(Debug, Default)]
pub struct MemoryDefender {
    tallies: Mutex<BTreeMap<DefenderKey, Tally>>,
    read_fault: Mutex<Option<Fault>>,
    write_fault: Mutex<Option<Fault>>,
    reads: AtomicUsize,
    failures: AtomicUsize,
    clears: AtomicUsize,
}

impl MemoryDefender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `tally` under `key` (the test setting the scene: not counted).
    pub fn set(&self, key: DefenderKey, tally: Tally) {
        lock(&self.tallies).insert(key, tally);
    }

    /// The tally under `key`, without counting a read.
    pub fn tally(&self, key: &DefenderKey) -> Option<Tally> {
        lock(&self.tallies).get(key).copied()
    }

    /// How many keys hold a tally.
    pub fn len(&self) -> usize {
        lock(&self.tallies).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every `tallies` and `locked` call fail with `fault`.
    pub fn fail_reads_with(&self, fault: Fault) {
        *lock(&self.read_fault) = Some(fault);
    }

    /// Makes every `record_failure` and `clear` call fail with `fault` (reads still work).
    pub fn fail_writes_with(&self, fault: Fault) {
        *lock(&self.write_fault) = Some(fault);
    }

    /// Reads and writes work again.
    pub fn recover(&self) {
        *lock(&self.read_fault) = None;
        *lock(&self.write_fault) = None;
    }

    /// `tallies` and `locked` calls so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// `record_failure` calls so far (one per key charged).
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// `clear` calls so far.
    pub fn clears(&self) -> usize {
        self.clears.load(Ordering::SeqCst)
    }
}

impl FailureStore for MemoryDefender {
    fn enabled(&self) -> bool {
        true
    }

    async fn tallies(&self, keys: &[DefenderKey]) -> Result<Vec<Option<Tally>>, StoreError> {
        call(&self.reads, &self.read_fault, "defender store")?;
        let tallies = lock(&self.tallies);
        Ok(keys.iter().map(|k| tallies.get(k).copied()).collect())
    }

    async fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> Result<Tally, StoreError> {
        call(&self.failures, &self.write_fault, "defender store")?;
        let mut tallies = lock(&self.tallies);
        let after = rule.after_failure(tallies.get(key), weight, now);
        tallies.insert(key.clone(), after);
        Ok(after)
    }

    async fn clear(&self, key: &DefenderKey) -> Result<bool, StoreError> {
        call(&self.clears, &self.write_fault, "defender store")?;
        Ok(lock(&self.tallies).remove(key).is_some())
    }

    async fn locked(&self, now: i64) -> Result<Vec<(DefenderKey, Tally)>, StoreError> {
        call(&self.reads, &self.read_fault, "defender store")?;
        Ok(lock(&self.tallies)
            .iter()
            .filter(|(_, t)| t.until > now)
            .map(|(k, t)| (k.clone(), *t))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alice(hash: &str) -> UserRecord {
        UserRecord::from_json(json!({
            "username": "alice",
            "passwordHash": hash,
            "saltVersion": "1",
            "bucket": "ferry-data",
            "home": "home/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/scope",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn replace_hash_writes_only_over_the_hash_it_was_given() {
        let users = MemoryUsers::new();
        users.insert(alice("old"));
        let name = Username::parse("alice").unwrap();
        assert!(
            !users
                .replace_hash(&name, "other", "new", "2")
                .await
                .unwrap()
        );
        assert!(users.replace_hash(&name, "old", "new", "2").await.unwrap());
        let stored = users.record("alice").unwrap();
        assert_eq!(stored.password_hash.as_deref(), Some("new"));
        assert_eq!(stored.salt_version.as_deref(), Some("2"));
        let nobody = Username::parse("nobody").unwrap();
        assert!(
            !users
                .replace_hash(&nobody, "old", "new", "2")
                .await
                .unwrap()
        );
        assert_eq!(users.writes(), 3);
    }

    #[tokio::test]
    async fn create_user_never_overwrites_an_existing_user() {
        let users = MemoryUsers::new();
        assert!(users.create_user(&alice("first")).await.unwrap());
        assert!(!users.create_user(&alice("second")).await.unwrap());
        let stored = users.record("alice").unwrap();
        assert_eq!(stored.password_hash.as_deref(), Some("first"));
    }

    #[tokio::test]
    async fn a_switched_off_store_fails_every_call_and_still_counts_it() {
        let users = MemoryUsers::new();
        let name = Username::parse("alice").unwrap();
        users.fail_reads_with(Fault::Unavailable);
        assert!(matches!(
            users.get_user(&name).await,
            Err(StoreError::Unavailable { .. })
        ));
        users.fail_reads_with(Fault::Malformed);
        assert!(matches!(
            users.get_user(&name).await,
            Err(StoreError::Malformed(_))
        ));
        assert_eq!(users.reads(), 2);
        users.recover();
        assert!(users.get_user(&name).await.unwrap().is_none());

        let policies = MemoryPolicies::new();
        assert!(matches!(
            policies.load_policy("arn:aws:iam::1:policy/none").await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_write_after_the_next_read_lands_once_after_that_read_is_answered() {
        let users = MemoryUsers::new();
        let name = Username::parse("alice").unwrap();
        users.write_after_next_read(alice("theirs"));
        assert!(users.get_user(&name).await.unwrap().is_none());
        assert!(users.get_user(&name).await.unwrap().is_some());
        users.remove("alice");
        assert!(users.get_user(&name).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_memory_defender_counts_with_the_domains_rule_and_lists_only_running_locks() {
        use crate::domain::defender::{AttemptKeys, DefenderConfig};

        let store = MemoryDefender::new();
        let config = DefenderConfig::default();
        let name = Username::parse("alice").unwrap();
        let keys = AttemptKeys::of(&name, "198.51.100.7".parse().unwrap());
        let now = 1_800_000_000;
        for i in 0..5 {
            store
                .record_failure(&keys.pair, 1, &config.pair, now + i)
                .await
                .unwrap();
        }
        store
            .record_failure(&keys.source, 2, &config.source, now)
            .await
            .unwrap();
        let got = store.tallies(&keys.to_array()).await.unwrap();
        assert_eq!(got[0].map(|t| t.score), Some(2));
        assert_eq!(got[1].map(|t| t.until), Some(now + 4 + 900));
        assert_eq!(got[2], None);
        let locked = store.locked(now + 10).await.unwrap();
        assert_eq!(locked.len(), 1);
        assert_eq!(locked[0].0, keys.pair);
        assert!(store.locked(now + 4 + 900).await.unwrap().is_empty());
        assert!(store.clear(&keys.pair).await.unwrap());
        assert!(!store.clear(&keys.pair).await.unwrap());
        assert_eq!((store.reads(), store.failures(), store.clears()), (3, 6, 2));

        store.fail_reads_with(Fault::Unavailable);
        assert!(store.tallies(&keys.to_array()).await.is_err());
        store.fail_writes_with(Fault::Malformed);
        assert!(matches!(
            store
                .record_failure(&keys.source, 1, &config.source, now)
                .await,
            Err(StoreError::Malformed(_))
        ));
        store.recover();
        assert_eq!(store.tally(&keys.source).map(|t| t.score), Some(2));
    }
}

/// A directory user's password, and what the directory says about them.
type DirectoryEntry = (String, Result<DirectoryUser, DirectoryRefusal>);

/// A directory identity source: users with their password and mapped attributes, or a refusal
/// (disabled, locked, not in the group) that answers every call for them. It checks the password
/// as a bind would; it can fail ([`Fault`]) or answer late, and counts its calls.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    users: Mutex<BTreeMap<String, DirectoryEntry>>,
    fault: Mutex<Option<Fault>>,
    delay: Mutex<Option<std::time::Duration>>,
    calls: AtomicUsize,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// A user who may log in with `password`.
    pub fn insert(&self, username: &str, password: &str, user: DirectoryUser) {
        lock(&self.users).insert(username.to_owned(), (password.to_owned(), Ok(user)));
    }

    /// A user the directory refuses however they log in.
    pub fn refuse(&self, username: &str, password: &str, refusal: DirectoryRefusal) {
        lock(&self.users).insert(username.to_owned(), (password.to_owned(), Err(refusal)));
    }

    pub fn fail_with(&self, fault: Fault) {
        *lock(&self.fault) = Some(fault);
    }

    /// Answers every call only after `delay` (a slow directory).
    pub fn answer_after(&self, delay: std::time::Duration) {
        *lock(&self.delay) = Some(delay);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn answer(
        &self,
        username: &str,
        password: Option<&Password>,
    ) -> Result<DirectoryAnswer, StoreError> {
        let delay = *lock(&self.delay);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        call(&self.calls, &self.fault, "directory")?;
        if password.is_some_and(|p| p.expose().is_empty()) {
            return Ok(DirectoryAnswer::Refused(DirectoryRefusal::WrongPassword));
        }
        let found = lock(&self.users).get(username).cloned();
        Ok(match found {
            None => DirectoryAnswer::Refused(DirectoryRefusal::UnknownUser),
            Some((_, Err(refusal))) => DirectoryAnswer::Refused(refusal),
            Some((right, Ok(_))) if password.is_some_and(|p| p.expose() != right) => {
                DirectoryAnswer::Refused(DirectoryRefusal::WrongPassword)
            }
            Some((_, Ok(user))) => DirectoryAnswer::Verified(user),
        })
    }
}

impl IdentitySource for MemoryDirectory {
    fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a Password,
    ) -> DirectoryFuture<'a> {
        Box::pin(self.answer(username, Some(password)))
    }

    fn look_up<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a> {
        Box::pin(self.answer(username, None))
    }
}
