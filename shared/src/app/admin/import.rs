//! Bulk creation from CSV: the columns, how each row becomes a user, and the row's outcome.
//! Every row is judged on its own, so a bad row is reported with its line and reason and the
//! others are still written; a re-run after fixing the file only adds what is missing.

use std::io::Read;

use super::{Admin, AdminError, Changes};
use crate::domain::dates;
use crate::domain::keyring::Keyring;
use crate::domain::password::Password;
use crate::domain::username::Username;
use crate::ports::{SaltSource, UserAdmin, UserStore};

/// The columns a file may have; `username` is the only one every file needs.
pub const COLUMNS: [&str; 12] = [
    "username",
    "password",
    "bucket",
    "home",
    "policy_arn",
    "role_arn",
    "chroot",
    "public_keys",
    "allowed_ips",
    "servers",
    "protocols",
    "expires",
];

/// Why a file or a row cannot be imported. Names the column, never a password.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line 1: reading the header: {0}")]
    Header(csv::Error),
    #[error("line 1: unknown column {0:?} (columns: {columns})", columns = COLUMNS.join(", "))]
    UnknownColumn(String),
    #[error("line 1: the header has no username column")]
    NoUsernameColumn,
    #[error("{0}")]
    Row(String),
    #[error("username is empty")]
    NoUsername,
    #[error("{0}")]
    Username(#[from] crate::domain::username::UsernameError),
    #[error("chroot must be true or false, not {0:?}")]
    Chroot(String),
    #[error("expires: {0}")]
    Date(#[from] dates::DateError),
    #[error("password: {0}")]
    Password(#[from] crate::domain::password::PasswordError),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// One row, read.
#[derive(Debug)]
pub struct Row {
    pub username: Username,
    pub password: Option<Password>,
    pub changes: Changes,
}

/// How a row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Created,
    Updated,
    /// The user exists and the import does not update.
    Skipped,
}

/// Defaults an import gives rows that name no bucket or policy.
#[derive(Debug, Clone, Default)]
pub struct RowDefaults {
    pub bucket: Option<String>,
    pub policy_arn: Option<String>,
}

/// Each row of a file with its line number, read or refused on its own.
pub type Rows = Vec<(u64, Result<Row, ImportError>)>;

/// Reads a whole file: the rows with their line numbers, each read or refused on its own. A
/// file of users is small, and the count lets a caller show progress.
pub fn read_rows<R: Read>(input: R, defaults: &RowDefaults) -> Result<Rows, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(ImportError::Header)?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(ImportError::UnknownColumn(unknown.clone()));
    }
    if !headers.iter().any(|h| h == "username") {
        return Err(ImportError::NoUsernameColumn);
    }
    // A row csv refuses (a wrong number of fields, bad UTF-8) carries its position in the
    // error; a row with no position at all is the one after the last one seen.
    let mut last_line = 1;
    Ok(reader
        .records()
        .map(|r| {
            let position = match &r {
                Ok(record) => record.position(),
                Err(e) => e.position(),
            };
            let line = position.map_or(last_line + 1, csv::Position::line);
            last_line = line;
            let row = r
                .map_err(|e| ImportError::Row(e.to_string()))
                .and_then(|record| {
                    let get = |name: &str| {
                        headers
                            .iter()
                            .position(|h| h == name)
                            .and_then(|i| record.get(i))
                            .filter(|v| !v.is_empty())
                            .map(str::to_owned)
                    };
                    read_row(&get, defaults)
                });
            (line, row)
        })
        .collect())
}

fn read_row(
    get: &impl Fn(&str) -> Option<String>,
    defaults: &RowDefaults,
) -> Result<Row, ImportError> {
    let name = get("username").ok_or(ImportError::NoUsername)?;
    let username = Username::parse(&name)?;
    let list = |col: &str| -> Vec<String> {
        get(col).map_or_else(Vec::new, |v| {
            v.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    };
    let chroot = match get("chroot").map(|v| v.to_ascii_lowercase()) {
        None => None,
        Some(v) if ["true", "yes", "1"].contains(&v.as_str()) => Some(true),
        Some(v) if ["false", "no", "0"].contains(&v.as_str()) => Some(false),
        Some(v) => return Err(ImportError::Chroot(v)),
    };
    let password = get("password").map(Password::parse).transpose()?;
    Ok(Row {
        username,
        password,
        changes: Changes {
            bucket: get("bucket").or_else(|| defaults.bucket.clone()),
            home: get("home"),
            policy_arn: get("policy_arn").or_else(|| defaults.policy_arn.clone()),
            role_arn: get("role_arn"),
            chroot,
            keys: list("public_keys"),
            allowed_ips: list("allowed_ips"),
            servers: list("servers"),
            protocols: list("protocols"),
            expires_at: get("expires")
                .as_deref()
                .map(dates::parse_date)
                .transpose()?,
            ..Changes::default()
        },
    })
}

impl<U: UserAdmin + UserStore, S: SaltSource> Admin<U, S> {
    /// Writes one row: a new user is created, an existing one skipped (or, with `update`,
    /// changed). `keyring` is loaded at the first password and reused for the rest of the file.
    pub async fn import_row(
        &self,
        row: Row,
        update: bool,
        keyring: &mut Option<Keyring>,
    ) -> Result<RowOutcome, ImportError> {
        let stored = self.stored(&row.username).await?;
        let exists = stored.is_some();
        if exists && !update {
            return Ok(RowOutcome::Skipped);
        }
        let has_keys = !row.changes.keys.is_empty()
            || stored.as_ref().is_some_and(|s| !s.public_keys.is_empty());
        // A new user is created now: the inactivity clock of one who never logs in starts here.
        let mut record = stored.unwrap_or_else(|| crate::domain::user::StoredRecord {
            enabled_at: Some(crate::app::now_epoch()),
            ..Default::default()
        });
        let changes = if exists {
            row.changes
        } else {
            self.with_defaults(row.changes)
        };
        super::apply(&mut record, &row.username, changes)?;
        match &row.password {
            Some(password) => {
                if keyring.is_none() {
                    *keyring = Some(self.salts.load_keyring().await.map_err(AdminError::from)?);
                }
                if let Some(k) = keyring.as_ref() {
                    super::put_hash(&mut record, k, password)?;
                }
            }
            None if !exists && !has_keys => return Err(AdminError::NoCredential.into()),
            None => {}
        }
        if !self.write(record, update).await? {
            return Ok(RowOutcome::Skipped);
        }
        Ok(if exists {
            RowOutcome::Updated
        } else {
            RowOutcome::Created
        })
    }
}
