//! Ports: every capability the core needs from the outside world, one small trait each, in one
//! place, with the one error type they share. Adapters implement them (`crate::adapters`: AWS,
//! the local data folder; `crate::testing`: in memory); the use cases in `crate::app` ask only
//! for the traits they use.
//!
//! Expected outcomes (no such user, a conditional write that lost) are values; [`StoreError`] is
//! for a service that failed or answered with something unusable.

mod audit;
mod defender;
mod directory;
mod objects;
mod policies;
mod secrets;
mod uploads;
mod users;
mod verdicts;

pub use audit::*;
pub use defender::*;
pub use directory::*;
pub use objects::*;
pub use policies::*;
pub use secrets::*;
pub use uploads::*;
pub use users::*;
pub use verdicts::*;

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

/// An error and its sources on one line, for logs and outcomes (SDK errors name the operation and
/// the service's code, never our inputs' secrets).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
