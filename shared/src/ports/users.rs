//! The users table: the reads and writes a login makes, administration, the salt-version index
//! and the seed design's legacy table.

use std::future::Future;

use super::StoreError;
use crate::domain::user::UserRecord;
use crate::domain::username::Username;

/// Parses a record as a store read it: `None` stays `None`, a record that breaks the data model is
/// [`StoreError::Malformed`]. Shared by every store so they all judge records alike.
pub fn parse_stored(raw: Option<serde_json::Value>) -> Result<Option<UserRecord>, StoreError> {
    raw.map(|json| UserRecord::from_json(json).map_err(|e| StoreError::Malformed(e.to_string())))
        .transpose()
}

/// Reads user records, and makes the writes a login can make.
pub trait UserStore: Send + Sync {
    /// One strongly consistent read by username: `None` when there is no such user.
    fn get_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    /// Re-hash on login: replaces `passwordHash` and `saltVersion` only if the stored hash is
    /// still `old_hash`. `Ok(false)` when a concurrent change (a new password, another re-hash)
    /// got there first; that change wins.
    fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Migration of a user whose record has no password yet (made by disabling a seed-design
    /// user): sets the first hash, with `passwordChangedAt` = `changed_at`, only if the record
    /// exists and still has none; `Ok(false)` otherwise.
    fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a login: sets `lastLoginAt` to `now` only if the record exists and its
    /// `lastLoginAt` is still `seen` (`None`: still absent). `Ok(false)` when a concurrent login
    /// (or anything else) changed it first; that value stands. Never creates a record.
    fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Migration: writes a new user only if none exists; `Ok(false)` when one does.
    fn create_user(
        &self,
        record: &UserRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A user of the seed design's table, keyed by `hashPassword` = hex SHA-256(salt ‖ password ‖
/// username).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyUser {
    pub username: String,
    pub bucket: String,
    pub home: String,
    pub policy_arn: String,
}

/// The seed design's users table, read during migration.
pub trait LegacyUsers: Send + Sync {
    /// Whether a table is configured at all (logins skip the lookup when not).
    fn enabled(&self) -> bool;
    /// The item under `key`; a record that is not a usable legacy user is `Malformed`.
    fn find(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LegacyUser>, StoreError>> + Send;
    /// Deletes the item under `key` (nothing to delete is fine).
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many legacy users remain.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Every item of `username`, with its key (a user has one per password the seed design
    /// stored for them). For administration, not logins: it reads the whole table.
    fn items_of(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Vec<(String, LegacyUser)>, StoreError>> + Send;
}

/// No legacy table: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLegacy;

impl LegacyUsers for NoLegacy {
    fn enabled(&self) -> bool {
        false
    }
    async fn find(&self, _key: &str) -> Result<Option<LegacyUser>, StoreError> {
        Ok(None)
    }
    async fn remove(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn count(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn items_of(&self, _username: &str) -> Result<Vec<(String, LegacyUser)>, StoreError> {
        Ok(Vec::new())
    }
}

// An optional table: without one (not configured), there are no legacy users.
impl<T: LegacyUsers> LegacyUsers for Option<T> {
    fn enabled(&self) -> bool {
        self.as_ref().is_some_and(LegacyUsers::enabled)
    }
    async fn find(&self, key: &str) -> Result<Option<LegacyUser>, StoreError> {
        match self {
            Some(t) => t.find(key).await,
            None => Ok(None),
        }
    }
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Some(t) => t.remove(key).await,
            None => Ok(()),
        }
    }
    async fn count(&self) -> Result<u64, StoreError> {
        match self {
            Some(t) => t.count().await,
            None => Ok(0),
        }
    }
    async fn items_of(&self, username: &str) -> Result<Vec<(String, LegacyUser)>, StoreError> {
        match self {
            Some(t) => t.items_of(username).await,
            None => Ok(Vec::new()),
        }
    }
}

impl<T: LegacyUsers + ?Sized> LegacyUsers for &T {
    fn enabled(&self) -> bool {
        (**self).enabled()
    }
    fn find(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LegacyUser>, StoreError>> + Send {
        (**self).find(key)
    }
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).remove(key)
    }
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).count()
    }
    fn items_of(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Vec<(String, LegacyUser)>, StoreError>> + Send {
        (**self).items_of(username)
    }
}

/// Which salt versions users' hashes still use (the `saltVersion-index` GSI on DynamoDB).
pub trait SaltUsage: Send + Sync {
    /// Whether at least one user's hash uses `version` (one query with a limit of 1).
    fn in_use(&self, version: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// How many users' hashes use `version`.
    fn count(&self, version: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// One page of a user listing.
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    /// Records as plain JSON (the data model's attributes), hashes included: callers decide what
    /// to show.
    pub users: Vec<serde_json::Value>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

/// Writes and lists user records (the administration side; logins only need [`UserStore`]).
/// Writes take a [`UserRecord`], so nothing the record parser refuses can be stored; reads for
/// display are plain JSON, so that a broken record can still be shown and repaired.
pub trait UserAdmin: Send + Sync {
    /// Writes a record. With `overwrite == false` an existing user is left alone and `Ok(false)`
    /// is returned.
    fn put_user(
        &self,
        record: &UserRecord,
        overwrite: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The stored record as plain JSON, unparsed (so a broken record can still be shown).
    fn get_raw(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StoreError>> + Send;

    /// Removes a user; `Ok(false)` when there was none.
    fn delete_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of users, starting after `start` (the `next` of the previous page).
    fn list_users(
        &self,
        start: Option<String>,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send;

    /// Up to `limit` users whose names start with `prefix` (`""`: any), after `start` (the
    /// `next` of the previous page), for a console's search and paging. This default walks
    /// [`UserAdmin::list_users`] pages, in the store's order; stores that keep names sorted
    /// answer from their index instead (the data folder), so a page costs the same at 100,000
    /// users as at ten.
    fn find_users(
        &self,
        prefix: &str,
        start: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send {
        async move {
            let limit = limit.max(1);
            let mut found = Vec::new();
            let mut cursor = start;
            loop {
                let page = self.list_users(cursor).await?;
                for user in page.users {
                    let name = user.get(crate::domain::user::attr::USERNAME);
                    if name
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|n| n.starts_with(prefix))
                    {
                        found.push(user);
                    }
                }
                cursor = page.next;
                if found.len() >= limit || cursor.is_none() {
                    break;
                }
            }
            // The next page starts after the last user shown: the store's own cursor would skip
            // the rest of a page cut at `limit`.
            let more = found.len() > limit || cursor.is_some();
            found.truncate(limit);
            let next = found
                .last()
                .filter(|_| more)
                .and_then(|u| u.get(crate::domain::user::attr::USERNAME))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            Ok(UserPage { users: found, next })
        }
    }
}

// Borrowed and shared adapters are adapters too: one store can serve several roles (the local
// data folder is user store, keyring and policy source at once).
impl<T: UserStore + ?Sized> UserStore for &T {
    fn get_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send {
        (**self).get_user(username)
    }
    fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).replace_hash(username, old_hash, new_hash, salt_version)
    }
    fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).set_first_hash(username, new_hash, salt_version, changed_at)
    }
    fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).touch_last_login(username, seen, now)
    }
    fn create_user(
        &self,
        record: &UserRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).create_user(record)
    }
}

impl<T: UserStore + ?Sized> UserStore for std::sync::Arc<T> {
    fn get_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send {
        (**self).get_user(username)
    }
    fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).replace_hash(username, old_hash, new_hash, salt_version)
    }
    fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).set_first_hash(username, new_hash, salt_version, changed_at)
    }
    fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).touch_last_login(username, seen, now)
    }
    fn create_user(
        &self,
        record: &UserRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).create_user(record)
    }
}

impl<T: UserAdmin + ?Sized> UserAdmin for &T {
    fn put_user(
        &self,
        record: &UserRecord,
        overwrite: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).put_user(record, overwrite)
    }
    fn get_raw(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StoreError>> + Send {
        (**self).get_raw(username)
    }
    fn delete_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete_user(username)
    }
    fn list_users(
        &self,
        start: Option<String>,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send {
        (**self).list_users(start)
    }
    fn find_users(
        &self,
        prefix: &str,
        start: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send {
        (**self).find_users(prefix, start, limit)
    }
}
