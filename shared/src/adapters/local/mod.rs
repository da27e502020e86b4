//! The local stack's adapters: everything in one data folder, for `ferry up` and `ferry …
//! --local`, with no service at all.
//!
//! Layout of the data folder (`.ferry/` by default):
//! - `ferry.db`: SQLite in WAL mode, table `users(username PRIMARY KEY, record)` holding each
//!   record as the data model's JSON. WAL and a busy timeout let `ferry … --local` write while
//!   `ferry up` reads; every login reads the current row.
//! - `keyring.json`: the keyring's SecretString (mode 0600).
//! - `policies/<name>.json`: managed policies, known as `arn:aws:iam::000000000000:policy/<name>`.
//! - `objects/<bucket>/<key>`: object storage (used by `ferry up`).
//! - `rotation.json` (mode 0600): the keyring's version id and, during `ferry salt rotate
//!   --local`, the pending version, so the rotation runs the same four steps as on AWS.
//! - `tags/`, `notifications.jsonl`: the upload processor's tags and notices.

pub mod objects;
#[cfg(feature = "local")]
pub mod store;
pub mod uploads;
