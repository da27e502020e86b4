//! The domain: ferry's rules as pure code. No SDK, no SQLite, no clock, no network: everything
//! here is a type parsed at the boundary or a function of its inputs, tested without services.

pub mod access;
pub mod arn;
pub mod audit;
pub mod dates;
pub mod defender;
pub mod directory;
pub mod keyring;
pub mod lifecycle;
pub mod password;
pub mod policy;
pub mod policy_checks;
pub mod protocol;
pub mod sftp_path;
pub mod source;
pub mod ssh_key;
pub mod transfer;
pub mod upload_event;
pub mod upload_rules;
pub mod user;
pub mod username;
