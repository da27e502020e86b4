//! Adapters: the ports implemented over real technology. `aws` over the AWS SDK (one cargo
//! feature per service), `local` over the data folder of `ferry up` and `--local`, `ldap` the
//! directory identity source (feature `ldap`), `logging` the Lambda log set-up.

pub mod aws;
#[cfg(feature = "ldap")]
pub mod ldap;
pub mod local;
#[cfg(feature = "logging")]
pub mod logging;
