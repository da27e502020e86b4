//! The salt keyring: read at its current stage by logins, and under rotation as versions and
//! staging labels.

use std::future::Future;

use super::StoreError;
use crate::domain::keyring::Keyring;

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

impl<T: SaltSource + ?Sized> SaltSource for &T {
    fn load_keyring(&self) -> impl Future<Output = Result<Keyring, StoreError>> + Send {
        (**self).load_keyring()
    }
}

impl<T: SaltSource + ?Sized> SaltSource for std::sync::Arc<T> {
    fn load_keyring(&self) -> impl Future<Output = Result<Keyring, StoreError>> + Send {
        (**self).load_keyring()
    }
}
