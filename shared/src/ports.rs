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

/// Reads user records.
pub trait UserStore: Send + Sync {
    /// One strongly consistent read by username: `None` when there is no such user.
    fn get_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;
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
