//! ferry's core: the rules, use cases and adapters behind every entry point (the four Lambdas,
//! `ferry up`, the `ferry` command).
//!
//! # Layout
//! Imports go one way, down this list:
//! - [`adapters`]: the ports implemented over AWS (one cargo feature per service) and over the
//!   local data folder, plus the Lambda log set-up.
//! - [`config`]: the entry points' environment, read once into the use cases' settings.
//! - [`app`]: the use cases (login and migration, rotation, validation verdicts, upload
//!   processing, user administration), written against the ports.
//! - [`ports`]: every trait the core needs from outside, with the one error type they share.
//! - [`domain`]: the rules as pure code (request and record types, the account lifecycle,
//!   passwords, the keyring, policies and their evaluator, the validator's checks, upload rules,
//!   the defender's rules, audit events).
//!
//! `testing` (cargo feature `testing`) holds in-memory ports for fast tests of the use cases.
//! `docs/architecture.md` says where a new feature goes.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
