//! ferry's shared core: the domain types, password and salt logic, the Transfer Family
//! identity-provider contract, session-policy handling and the authenticator every entry point
//! (the Lambda, the local stack, the CLI) runs. AWS access sits behind the small traits in
//! [`ports`]; the SDK adapters live in [`aws`], one cargo feature per service.

pub mod access;
pub mod auth;
pub mod aws;
pub mod config;
pub mod keyring;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "logging")]
pub mod logging;
pub mod objects;
pub mod password;
pub mod policy;
pub mod ports;
pub mod rotation;
pub mod transfer;
pub mod upload;
pub mod upload_event;
pub mod upload_local;
pub mod user;
pub mod username;
pub mod validate;
#[cfg(feature = "dynamodb")]
pub mod validator;

pub use username::Username;
