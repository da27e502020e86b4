//! Users in SQLite, the salt keyring in a file, policies as JSON files: the same ports as the AWS
//! adapters over the data folder, so the authenticator runs unchanged.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::domain::defender::{DefenderKey, Rule, Tally};
use crate::domain::keyring::Keyring;
use crate::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use crate::domain::user::UserRecord;
use crate::domain::username::Username;
use crate::ports::{
    FailureStore, PolicySource, RotatingSecret, SaltSource, SecretState, StoreError, UserAdmin,
    UserPage, UserStore,
};

/// The account id local policy ARNs use.
pub const LOCAL_ACCOUNT: &str = "000000000000";
/// The canonical scope-down policy's name in a data folder.
pub const DEFAULT_POLICY: &str = "ferry-scope-down";
/// The local bucket unless `--bucket` says otherwise.
pub const DEFAULT_BUCKET: &str = "ferry-local";
/// Users per `list_users` page.
const PAGE: i64 = 100;

/// The ARN of local policy `name`.
pub fn policy_arn(name: &str) -> String {
    format!("arn:aws:iam::{LOCAL_ACCOUNT}:policy/{name}")
}

/// A data folder: users, keyring and policies.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    db: Mutex<Connection>,
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Unavailable {
        what,
        source: Box::new(e),
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable {
        what: "the local user database",
        source: Box::new(e),
    }
}

impl LocalStore {
    /// Opens the data folder at `dir`, creating what is missing: the database, a keyring with
    /// one fresh 32-byte salt, the canonical policy, and the default bucket's folder.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        for sub in [
            dir.join("policies"),
            dir.join("objects").join(DEFAULT_BUCKET),
        ] {
            create_private_dirs(&sub).map_err(io("the data folder"))?;
        }
        let keyring = dir.join("keyring.json");
        if !keyring.exists() {
            let mut salt = [0u8; 32];
            getrandom::fill(&mut salt).map_err(|e| StoreError::Unavailable {
                what: "the OS random source",
                source: Box::new(e),
            })?;
            let salt = base64::engine::general_purpose::STANDARD_NO_PAD.encode(salt);
            let ring = Keyring::new("1".into(), [("1".to_owned(), salt)].into())
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            write_private(&keyring, ring.to_secret_string().as_bytes())?;
        }
        let canonical = dir.join("policies").join(format!("{DEFAULT_POLICY}.json"));
        if !canonical.exists() {
            std::fs::write(&canonical, CANONICAL_SCOPE_DOWN).map_err(io("the policies folder"))?;
        }
        // The database holds password hashes: created 0600 before SQLite opens it (its WAL and
        // shared-memory files take the database's mode), and tightened if it was ever looser.
        let db = dir.join("ferry.db");
        keep_private(&db).map_err(io("the user database"))?;
        let conn = Connection::open(&db).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL)")
            .map_err(sql)?;
        // The defender's tallies (`crate::ports::FailureStore`), shared by `ferry up` and
        // `ferry defender … --local` like the users.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS defender (key TEXT PRIMARY KEY NOT NULL, \
             window_start INTEGER NOT NULL, score INTEGER NOT NULL, until INTEGER NOT NULL, \
             strikes INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
        )
        .map_err(sql)?;
        Ok(Self {
            dir,
            db: Mutex::new(conn),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where objects of `bucket` live.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.dir.join("objects").join(bucket)
    }

    fn with_db<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // A poisoned lock means a panic mid-call; SQLite itself keeps the data consistent.
        let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(sql)
    }
}

/// Creates `path` and its missing parents as folders only the owner can enter; folders that
/// exist already keep the mode the operator gave them.
fn create_private_dirs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Creates `path` empty with mode 0600 if it does not exist; an existing file that others could
/// read is made 0600.
fn keep_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io("the keyring file"))?;
    f.write_all(bytes).map_err(io("the keyring file"))
}

fn read_tally(row: &rusqlite::Row<'_>) -> rusqlite::Result<Tally> {
    Ok(Tally {
        window_start: row.get(0)?,
        score: row.get(1)?,
        until: row.get(2)?,
        strikes: row.get(3)?,
    })
}

/// The defender's tallies in the data folder. A failure is counted in an immediate transaction
/// (the write lock taken first), so `ferry up` and a `--local` command never lose a count; the
/// rule itself is the domain's `Rule::after_failure`.
impl FailureStore for LocalStore {
    fn enabled(&self) -> bool {
        true
    }

    async fn tallies(&self, keys: &[DefenderKey]) -> Result<Vec<Option<Tally>>, StoreError> {
        self.with_db(|db| {
            let mut stmt = db.prepare_cached(
                "SELECT window_start, score, until, strikes FROM defender WHERE key = ?1",
            )?;
            keys.iter()
                .map(|k| {
                    stmt.query_row(params![k.to_string()], read_tally)
                        .optional()
                })
                .collect()
        })
    }

    async fn record_failure(
        &self,
        key: &DefenderKey,
        weight: u32,
        rule: &Rule,
        now: i64,
    ) -> Result<Tally, StoreError> {
        let name = key.to_string();
        self.with_db(|db| {
            let tx = rusqlite::Transaction::new_unchecked(db, rusqlite::TransactionBehavior::Immediate)?;
            let before = tx
                .query_row(
                    "SELECT window_start, score, until, strikes FROM defender WHERE key = ?1",
                    params![name],
                    read_tally,
                )
                .optional()?;
            let after = rule.after_failure(before.as_ref(), weight, now);
            tx.execute(
                "INSERT INTO defender (key, window_start, score, until, strikes, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET \
                 window_start = excluded.window_start, score = excluded.score, \
                 until = excluded.until, strikes = excluded.strikes, expires_at = excluded.expires_at",
                params![
                    name,
                    after.window_start,
                    after.score,
                    after.until,
                    after.strikes,
                    rule.expires_at(now)
                ],
            )?;
            // The data folder has no TTL service: expired tallies go as others are written.
            tx.execute("DELETE FROM defender WHERE expires_at < ?1", params![now])?;
            tx.commit()?;
            Ok(after)
        })
    }

    async fn clear(&self, key: &DefenderKey) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "DELETE FROM defender WHERE key = ?1",
                params![key.to_string()],
            )
        })?;
        Ok(n > 0)
    }

    async fn locked(&self, now: i64) -> Result<Vec<(DefenderKey, Tally)>, StoreError> {
        let rows: Vec<(String, Tally)> = self.with_db(|db| {
            let mut stmt = db.prepare(
                "SELECT window_start, score, until, strikes, key FROM defender \
                 WHERE until > ?1 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![now], |row| Ok((row.get(4)?, read_tally(row)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(k, t)| {
                DefenderKey::parse(&k)
                    .map(|key| (key, t))
                    .map_err(|e| StoreError::Malformed(e.to_string()))
            })
            .collect()
    }
}

impl UserStore for LocalStore {
    async fn get_user(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        crate::ports::parse_stored(self.get_raw(username).await?)
    }

    async fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> Result<bool, StoreError> {
        // One statement: the condition and the write are atomic, as DynamoDB's are.
        let n = self.with_db(|db| {
            db.execute(
                "UPDATE users SET record = json_set(record, '$.passwordHash', ?3, '$.saltVersion', ?4) \
                 WHERE username = ?1 AND json_extract(record, '$.passwordHash') = ?2",
                params![username.as_str(), old_hash, new_hash, salt_version],
            )
        })?;
        Ok(n > 0)
    }

    async fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "UPDATE users SET record = json_set(record, '$.passwordHash', ?2, '$.saltVersion', ?3, \
                 '$.passwordChangedAt', ?4) \
                 WHERE username = ?1 AND json_extract(record, '$.passwordHash') IS NULL",
                params![username.as_str(), new_hash, salt_version, changed_at],
            )
        })?;
        Ok(n > 0)
    }

    async fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // `IS` compares NULL with NULL as equal: `seen` absent matches a record without one.
        let n = self.with_db(|db| {
            db.execute(
                "UPDATE users SET record = json_set(record, '$.lastLoginAt', ?3) \
                 WHERE username = ?1 AND json_extract(record, '$.lastLoginAt') IS ?2",
                params![username.as_str(), seen, now],
            )
        })?;
        Ok(n > 0)
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        self.put_user(record, false).await
    }
}

impl crate::ports::RulesSource for LocalStore {
    async fn rules_for(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::upload_rules::UserRules>, StoreError> {
        crate::ports::rules_of(self, user).await
    }
}

impl crate::ports::SaltUsage for LocalStore {
    async fn in_use(&self, version: &str) -> Result<bool, StoreError> {
        Ok(self.count(version).await? > 0)
    }

    async fn count(&self, version: &str) -> Result<u64, StoreError> {
        let n: i64 = self.with_db(|db| {
            db.query_row(
                "SELECT count(*) FROM users WHERE json_extract(record, '$.saltVersion') = ?1",
                params![version],
                |r| r.get(0),
            )
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl UserAdmin for LocalStore {
    async fn put_user(&self, record: &UserRecord, overwrite: bool) -> Result<bool, StoreError> {
        let name = record.username.as_str();
        let text = record.to_json().to_string();
        let changed = self.with_db(|db| {
            if overwrite {
                db.execute(
                    "INSERT INTO users (username, record) VALUES (?1, ?2) ON CONFLICT(username) DO UPDATE SET record = excluded.record",
                    params![name, text],
                )
            } else {
                db.execute("INSERT OR IGNORE INTO users (username, record) VALUES (?1, ?2)", params![name, text])
            }
        })?;
        Ok(changed > 0)
    }

    async fn get_raw(&self, username: &Username) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self.with_db(|db| {
            db.query_row(
                "SELECT record FROM users WHERE username = ?1",
                params![username.as_str()],
                |r| r.get(0),
            )
            .optional()
        })?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Malformed(format!("stored record is not JSON: {e}")))
        })
        .transpose()
    }

    async fn delete_user(&self, username: &Username) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "DELETE FROM users WHERE username = ?1",
                params![username.as_str()],
            )
        })?;
        Ok(n > 0)
    }

    async fn list_users(&self, start: Option<String>) -> Result<UserPage, StoreError> {
        let rows: Vec<(String, String)> = self.with_db(|db| {
            let mut stmt = db.prepare(
                "SELECT username, record FROM users WHERE username > ?1 ORDER BY username LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![start.unwrap_or_default(), PAGE], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })?;
        user_page(rows, PAGE)
    }

    async fn find_users(
        &self,
        prefix: &str,
        start: Option<String>,
        limit: usize,
    ) -> Result<UserPage, StoreError> {
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        // A range on the primary key, so SQLite walks the index from the prefix and stops at
        // `limit`: names compare bytewise, and every name that starts with `prefix` sorts
        // below `prefix` followed by the highest code point.
        let upper = format!("{prefix}\u{10FFFF}");
        // One lower bound, the later of the two, so the walk starts where the page does (two
        // bounds made SQLite start at the prefix and filter its way to a page deep in the list).
        let (after, low) = match start {
            Some(a) if a.as_str() >= prefix => (true, a),
            _ => (false, prefix.to_owned()),
        };
        let sql = if after {
            "SELECT username, record FROM users WHERE username > ?1 AND username < ?2 \
             ORDER BY username LIMIT ?3"
        } else {
            "SELECT username, record FROM users WHERE username >= ?1 AND username < ?2 \
             ORDER BY username LIMIT ?3"
        };
        let rows: Vec<(String, String)> = self.with_db(|db| {
            let mut stmt = db.prepare(sql)?;
            let rows =
                stmt.query_map(params![low, upper, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        user_page(rows, limit)
    }
}

impl SaltSource for LocalStore {
    async fn load_keyring(&self) -> Result<Keyring, StoreError> {
        let text = std::fs::read_to_string(self.dir.join("keyring.json"))
            .map_err(io("the keyring file"))?;
        Keyring::parse(text.trim_end_matches('\n'))
            .map_err(|e| StoreError::Malformed(e.to_string()))
    }
}

/// What `rotation.json` holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct RotationFile {
    /// The version id of `keyring.json`.
    current: String,
    pending: Option<PendingVersion>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PendingVersion {
    token: String,
    value: Option<String>,
}

/// The version id a data folder's first keyring gets.
const INITIAL_VERSION_ID: &str = "initial";

impl LocalStore {
    fn rotation_file(&self) -> Result<RotationFile, StoreError> {
        match std::fs::read_to_string(self.dir.join("rotation.json")) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Malformed(format!("rotation.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RotationFile {
                current: INITIAL_VERSION_ID.into(),
                pending: None,
            }),
            Err(e) => Err(io("the rotation file")(e)),
        }
    }

    fn save_rotation_file(&self, state: &RotationFile) -> Result<(), StoreError> {
        let text = serde_json::to_string(state)
            .map_err(|e| StoreError::Malformed(format!("rotation.json: {e}")))?;
        replace_private(&self.dir.join("rotation.json"), text.as_bytes())
    }

    /// Stages `token` as AWSPENDING with no value yet, as RotateSecret does on AWS. A rotation
    /// already pending is replaced (the local stack has one operator).
    pub fn begin_rotation(&self, token: &str) -> Result<(), StoreError> {
        let mut state = self.rotation_file()?;
        state.pending = Some(PendingVersion {
            token: token.to_owned(),
            value: None,
        });
        self.save_rotation_file(&state)
    }
}

/// Replaces a private file atomically: written beside it (0600), then renamed over it.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temp);
    write_private(&temp, bytes)?;
    std::fs::rename(&temp, path).map_err(io("the data folder"))
}

impl RotatingSecret for LocalStore {
    async fn describe(&self) -> Result<SecretState, StoreError> {
        let state = self.rotation_file()?;
        let mut stages = std::collections::BTreeMap::new();
        stages.insert(state.current.clone(), vec!["AWSCURRENT".to_owned()]);
        if let Some(p) = state.pending {
            stages.insert(p.token, vec!["AWSPENDING".to_owned()]);
        }
        Ok(SecretState {
            rotation_enabled: true,
            stages,
        })
    }

    async fn value(
        &self,
        stage: &str,
        version_id: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let state = self.rotation_file()?;
        match stage {
            "AWSCURRENT" if version_id.is_none_or(|v| v == state.current) => {
                let text = std::fs::read_to_string(self.dir.join("keyring.json"))
                    .map_err(io("the keyring file"))?;
                Ok(Some(text.trim_end_matches('\n').to_owned()))
            }
            "AWSPENDING" => Ok(state
                .pending
                .filter(|p| version_id.is_none_or(|v| v == p.token))
                .and_then(|p| p.value)),
            _ => Ok(None),
        }
    }

    async fn put_pending(&self, token: &str, value: &str) -> Result<(), StoreError> {
        let mut state = self.rotation_file()?;
        match &mut state.pending {
            Some(p) if p.token == token => p.value = Some(value.to_owned()),
            _ => {
                return Err(StoreError::NotFound(
                    "a pending version for this token".into(),
                ));
            }
        }
        self.save_rotation_file(&state)
    }

    async fn make_current(&self, token: &str, previous: &str) -> Result<(), StoreError> {
        let mut state = self.rotation_file()?;
        if state.current != previous {
            return Err(StoreError::Malformed(
                "the current version moved meanwhile".into(),
            ));
        }
        let value = match state.pending.take() {
            Some(PendingVersion {
                token: t,
                value: Some(v),
            }) if t == token => v,
            _ => {
                return Err(StoreError::NotFound(
                    "a pending value for this token".into(),
                ));
            }
        };
        // keyring.json first: a crash between the two writes leaves the new keyring current
        // and the pending entry behind, which the next run replaces.
        replace_private(&self.dir.join("keyring.json"), value.as_bytes())?;
        state.current = token.to_owned();
        self.save_rotation_file(&state)
    }
}

impl PolicySource for LocalStore {
    async fn load_policy(&self, arn: &str) -> Result<PolicyDocument, StoreError> {
        let name = arn
            .strip_prefix(&format!("arn:aws:iam::{LOCAL_ACCOUNT}:policy/"))
            .filter(|n| {
                !n.is_empty()
                    && n.len() <= 128
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
                    && !n.starts_with('.')
            })
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "policy {arn} (local policies are {})",
                    policy_arn("<name>")
                ))
            })?;
        let path = self.dir.join("policies").join(format!("{name}.json"));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!("policy {arn}")));
            }
            Err(e) => return Err(io("the policies folder")(e)),
        };
        PolicyDocument::from_json(&text).map_err(|e| StoreError::Malformed(e.to_string()))
    }
}

/// A page of `(username, record JSON)` rows: the records, and the name to go on from when the
/// page came back full (`limit` rows).
fn user_page(rows: Vec<(String, String)>, limit: i64) -> Result<UserPage, StoreError> {
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(u, _)| u.clone()))
        .flatten();
    let users = rows
        .into_iter()
        .map(|(_, t)| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Malformed(format!("stored record is not JSON: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(UserPage { users, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str) -> UserRecord {
        UserRecord::from_json(json!({"username": name, "bucket": DEFAULT_BUCKET, "home": name, "iamPolicyArn": policy_arn(DEFAULT_POLICY)})).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_data_folder_keeps_hashes_and_objects_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = LocalStore::open(&dir).unwrap();
        store.put_user(&user("alice"), false).await.unwrap();
        for file in ["ferry.db", "ferry.db-wal", "keyring.json"] {
            let path = dir.join(file);
            if path.exists() {
                assert_eq!(mode(&path), 0o600, "{file}");
            }
        }
        for folder in ["", "objects", "policies"] {
            assert_eq!(mode(&dir.join(folder)), 0o700, "{folder:?}");
        }
        assert_eq!(mode(&store.bucket_dir(DEFAULT_BUCKET)), 0o700);
        drop(store);
        // A database that was made readable by others is tightened at the next start.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("ferry.db"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let _again = LocalStore::open(&dir).unwrap();
        assert_eq!(mode(&dir.join("ferry.db")), 0o600);
    }

    #[tokio::test]
    async fn a_new_data_folder_gets_a_keyring_the_canonical_policy_and_a_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let ring = store.load_keyring().await.unwrap();
        assert_eq!(ring.current_version(), "1");
        assert!(ring.current_salt().len() >= 43, "32 random bytes");
        let policy = store
            .load_policy(&policy_arn(DEFAULT_POLICY))
            .await
            .unwrap();
        assert_eq!(policy.as_str(), CANONICAL_SCOPE_DOWN);
        assert!(store.bucket_dir(DEFAULT_BUCKET).is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keyring.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Opening again reuses everything.
        drop(store);
        let again = LocalStore::open(dir.path()).unwrap();
        assert_eq!(again.load_keyring().await.unwrap(), ring);
    }

    #[tokio::test]
    async fn users_are_written_read_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        assert!(store.put_user(&user("alice"), false).await.unwrap());
        assert!(
            !store.put_user(&user("alice"), false).await.unwrap(),
            "no overwrite without asking"
        );
        let mut changed = user("alice");
        changed.status = crate::domain::user::Status::Disabled;
        assert!(store.put_user(&changed, true).await.unwrap());
        let alice = Username::parse("alice").unwrap();
        assert_eq!(
            store.get_user(&alice).await.unwrap().unwrap().status,
            crate::domain::user::Status::Disabled
        );
        for i in 0..150 {
            store
                .put_user(&user(&format!("user{i:03}")), false)
                .await
                .unwrap();
        }
        let first = store.list_users(None).await.unwrap();
        assert_eq!(first.users.len(), 100);
        let second = store.list_users(first.next).await.unwrap();
        assert_eq!(second.users.len(), 51);
        assert!(second.next.is_none());
        assert!(store.delete_user(&alice).await.unwrap());
        assert!(!store.delete_user(&alice).await.unwrap());
        assert!(store.get_user(&alice).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_search_pages_through_the_names_with_its_prefix_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for name in ["alice", "bob", "bobby", "bob.smith", "carol"] {
            store.put_user(&user(name), false).await.unwrap();
        }
        let names = |page: &UserPage| -> Vec<String> {
            page.users
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = store.find_users("bob", None, 2).await.unwrap();
        assert_eq!(names(&first), ["bob", "bob.smith"]);
        let second = store.find_users("bob", first.next, 2).await.unwrap();
        assert_eq!(names(&second), ["bobby"]);
        assert!(second.next.is_none());
        let all = store.find_users("", None, 10).await.unwrap();
        assert_eq!(all.users.len(), 5);
        assert!(
            store
                .find_users("zed", None, 10)
                .await
                .unwrap()
                .users
                .is_empty()
        );
    }

    #[tokio::test]
    async fn last_login_is_touched_only_over_the_value_read_and_never_creates_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.put_user(&user("alice"), false).await.unwrap();
        let alice = Username::parse("alice").unwrap();
        assert!(store.touch_last_login(&alice, None, 100).await.unwrap());
        let raw = store.get_raw(&alice).await.unwrap().unwrap();
        assert_eq!(raw["lastLoginAt"], json!(100), "stored as a number");
        assert!(
            !store.touch_last_login(&alice, None, 200).await.unwrap(),
            "another login wrote one meanwhile"
        );
        assert!(!store.touch_last_login(&alice, Some(99), 200).await.unwrap());
        assert!(
            store
                .touch_last_login(&alice, Some(100), 5000)
                .await
                .unwrap()
        );
        let stored = store.get_user(&alice).await.unwrap().unwrap();
        assert_eq!(stored.last_login_at, Some(5000));
        assert_eq!(
            stored.home_prefix, "alice",
            "the rest of the record is kept"
        );
        let nobody = Username::parse("nobody").unwrap();
        assert!(!store.touch_last_login(&nobody, None, 1).await.unwrap());
        assert!(store.get_raw(&nobody).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_first_hash_records_when_the_password_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.put_user(&user("bob"), false).await.unwrap();
        let bob = Username::parse("bob").unwrap();
        assert!(
            store
                .set_first_hash(&bob, "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB", "1", 42)
                .await
                .unwrap()
        );
        let stored = store.get_user(&bob).await.unwrap().unwrap();
        assert_eq!(stored.password_changed_at, Some(42));
        assert!(
            !store
                .set_first_hash(&bob, "$argon2id$x", "1", 43)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_second_handle_sees_writes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let server = LocalStore::open(dir.path()).unwrap();
        let cli = LocalStore::open(dir.path()).unwrap();
        cli.put_user(&user("bob"), false).await.unwrap();
        let bob = Username::parse("bob").unwrap();
        assert!(server.get_user(&bob).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn policy_arns_outside_the_folder_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for arn in [
            "arn:aws:iam::000000000000:policy/../keyring",
            "arn:aws:iam::000000000000:policy/",
            "arn:aws:iam::123456789012:policy/ferry-scope-down",
            "arn:aws:iam::000000000000:policy/missing",
            "arn:aws:iam::000000000000:policy/a/b",
        ] {
            assert!(
                matches!(store.load_policy(arn).await, Err(StoreError::NotFound(_))),
                "{arn}"
            );
        }
    }
}
