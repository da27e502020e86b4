//! Directory identity sources (LDAP, Active Directory): "is this the password of this user?" and
//! "what is this user's account state and keys?", answered by a directory instead of ferry's own
//! password hashes. `crate::adapters::ldap` implements it over LDAP; `crate::app::login` decides
//! which source a user belongs to.
//!
//! Dyn-compatible (boxed futures) because an authenticator holds a list of sources of possibly
//! different kinds, configured at run time.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::StoreError;
use crate::domain::directory::{DefaultProfile, DirectoryUser, SourceName};
use crate::domain::password::Password;

/// A future a directory call returns.
pub type DirectoryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DirectoryAnswer, StoreError>> + Send + 'a>>;

/// What a directory says. A refusal is an expected outcome (a value); a directory that could not
/// answer (down, slow, a certificate that does not verify, an unusable entry) is a
/// [`StoreError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryAnswer {
    /// The password is right (or, for a lookup, the account may log in), with its attributes.
    Verified(DirectoryUser),
    Refused(DirectoryRefusal),
}

/// Why a directory refused a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryRefusal {
    /// No entry matches the username.
    UnknownUser,
    /// More than one entry matches: refused rather than guessed.
    Ambiguous,
    WrongPassword,
    /// Not in any of the allowed groups (nested groups included, as configured).
    NotInGroup,
    /// Active Directory's `userAccountControl` says disabled, or its value cannot be read.
    Disabled,
    /// Active Directory's `userAccountControl` says locked out.
    Locked,
}

/// One directory.
pub trait IdentitySource: Send + Sync + Debug {
    /// Checks `password` for `username` (any string: the adapter escapes it). An empty password
    /// is refused without a bind (RFC 4513 §5.1.2: an "unauthenticated bind" succeeds on many
    /// servers).
    fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a Password,
    ) -> DirectoryFuture<'a>;

    /// For a key login: the user's account state, group membership and keys, read with the
    /// service account (no password is involved).
    fn look_up<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a>;
}

/// A configured source as the login use case sees it: its name, its default profile (users with
/// no record are admitted only through a source that has one), the longest a login waits on it,
/// and the directory itself.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    pub name: SourceName,
    pub default_profile: Option<DefaultProfile>,
    pub deadline: Duration,
    pub directory: Arc<dyn IdentitySource>,
}
