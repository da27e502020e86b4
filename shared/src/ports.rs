//! The capabilities the core needs from the outside world, one small trait each. AWS adapters
//! live in [`crate::aws`]; the local stack brings embedded ones.

use std::future::Future;

use crate::keyring::Keyring;
use crate::policy::PolicyDocument;
use crate::user::UserRecord;
use crate::username::Username;

/// Any error an adapter's underlying client produced.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store could not answer. Expected outcomes (no such user) are values, not errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The service failed (network, throttling, missing table, credentials…).
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// The service answered, but what it holds cannot be used.
    #[error("{0}")]
    Malformed(String),
    /// The thing asked for does not exist (a policy ARN, a secret).
    #[error("{0} does not exist")]
    NotFound(String),
}

/// Parses a record as a store read it: `None` stays `None`, a record that breaks the data model is
/// [`StoreError::Malformed`]. Shared by every store so they all judge records alike.
pub fn parse_stored(raw: Option<serde_json::Value>) -> Result<Option<UserRecord>, StoreError> {
    raw.map(|json| UserRecord::from_json(json).map_err(|e| StoreError::Malformed(e.to_string())))
        .transpose()
}

/// Reads user records, and makes the two writes a login can make.
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

    /// Migration: writes a new user only if none exists; `Ok(false)` when one does.
    fn create_user(
        &self,
        record: &serde_json::Value,
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
}

/// Which salt versions users' hashes still use (the `saltVersion-index` GSI on DynamoDB).
pub trait SaltUsage: Send + Sync {
    /// Whether at least one user's hash uses `version` (one query with a limit of 1).
    fn in_use(&self, version: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// How many users' hashes use `version`.
    fn count(&self, version: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A secret's versions and their staging labels, as DescribeSecret tells them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretState {
    pub rotation_enabled: bool,
    /// Version id to its staging labels.
    pub stages: std::collections::BTreeMap<String, Vec<String>>,
}

/// One secret under rotation (Secrets Manager, or the local stack's keyring file).
pub trait RotatingSecret: Send + Sync {
    fn describe(&self) -> impl Future<Output = Result<SecretState, StoreError>> + Send;
    /// The value at `stage` (and `version_id` when given); `None` when there is no such version.
    fn value(
        &self,
        stage: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Stores `value` as version `token`, staged AWSPENDING.
    fn put_pending(
        &self,
        token: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves AWSCURRENT from version `previous` to version `token`.
    fn make_current(
        &self,
        token: &str,
        previous: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Reads the salt keyring (its current stage only).
pub trait SaltSource: Send + Sync {
    fn load_keyring(&self) -> impl Future<Output = Result<Keyring, StoreError>> + Send;
}

/// Reads the default version of a managed policy.
pub trait PolicySource: Send + Sync {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send;
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
/// Records travel as plain JSON objects in the data model's shape.
pub trait UserAdmin: Send + Sync {
    /// Writes a record. With `overwrite == false` an existing user is left alone and `Ok(false)`
    /// is returned.
    fn put_user(
        &self,
        record: &serde_json::Value,
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
}

// Borrowed adapters are adapters too: one store can serve several roles (the local data folder
// is user store, keyring and policy source at once).
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
    fn create_user(
        &self,
        record: &serde_json::Value,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).create_user(record)
    }
}

impl<T: SaltSource + ?Sized> SaltSource for &T {
    fn load_keyring(&self) -> impl Future<Output = Result<Keyring, StoreError>> + Send {
        (**self).load_keyring()
    }
}

impl<T: PolicySource + ?Sized> PolicySource for &T {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send {
        (**self).load_policy(arn)
    }
}

impl<T: UserAdmin + ?Sized> UserAdmin for &T {
    fn put_user(
        &self,
        record: &serde_json::Value,
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
    fn create_user(
        &self,
        record: &serde_json::Value,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).create_user(record)
    }
}

impl<T: SaltSource + ?Sized> SaltSource for std::sync::Arc<T> {
    fn load_keyring(&self) -> impl Future<Output = Result<Keyring, StoreError>> + Send {
        (**self).load_keyring()
    }
}

impl<T: PolicySource + ?Sized> PolicySource for std::sync::Arc<T> {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send {
        (**self).load_policy(arn)
    }
}
