//! `ferry up` as the end-to-end suites start it: on a fresh data folder (`Store::Local`) or with
//! `--aws` on DynamoDB Local and moto and a table, secret, policy and bucket of its own
//! (`Store::Aws`), with helpers that add users and read or write storage directly, so a test can
//! check what a client did without trusting the server. `on_both_stores!` runs each case twice.

#![allow(clippy::unwrap_used)] // A test harness fails loudly on purpose.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::Fixture;
use crate::fixture::unique;
use crate::run_with_stdin;
use crate::runtime_api::workspace_binary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The data folder: SQLite users, keyring and policy files, objects as files.
    Local,
    /// `--aws`: DynamoDB Local, and moto for Secrets Manager, IAM and S3.
    Aws,
}

/// The AWS side of a test: its own table, secret, policy and bucket.
#[derive(Debug)]
pub struct AwsSide {
    pub rt: tokio::runtime::Runtime,
    pub fixture: Fixture,
    pub s3: aws_sdk_s3::Client,
}

/// A running `ferry up` on a fresh data folder.
#[derive(Debug)]
pub struct Up {
    pub child: Child,
    pub data: PathBuf,
    /// A folder of the test's own, removed with it.
    pub work: PathBuf,
    pub port: u16,
    pub bucket: String,
    /// The demo user's password (printed by a first start; set by the harness with `--aws`).
    pub demo_password: String,
    pub aws: Option<AwsSide>,
    /// The web console's address (`http://127.0.0.1:PORT`) and sign-in token.
    pub console: Option<(String, String)>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Up {
    /// `sftp -b` with `commands` as `user` against this server, ready to run.
    pub fn sftp_command(
        &self,
        user: &str,
        login: crate::openssh::Login<'_>,
        commands: &str,
    ) -> std::process::Command {
        crate::openssh::sftp_command(self.port, &self.work, user, login, commands)
    }

    /// Runs `sftp -b` with `commands` as `user`; whether it succeeded, and what it printed.
    pub fn sftp(
        &self,
        user: &str,
        login: crate::openssh::Login<'_>,
        commands: &str,
    ) -> (bool, String) {
        crate::openssh::sftp(self.port, &self.work, user, login, commands)
    }

    pub fn start(store: Store) -> Up {
        Self::start_with(store, &[])
    }

    /// As [`Up::start`], with `extra` flags for `ferry up` (bounds, `--no-processing`).
    pub fn start_with(store: Store, extra: &[&str]) -> Up {
        let work = std::env::temp_dir().join(unique("ferry-up"));
        std::fs::create_dir_all(&work).unwrap();
        let data = work.join("data");
        let mut cmd = Command::new(workspace_binary("ferry").unwrap());
        cmd.args([
            "up",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            // The server picks the port and says it: a port probed here and bound later could
            // be taken in between by another test's process.
            "127.0.0.1:0",
            // The console too, for the same reason.
            "--console",
            "127.0.0.1:0",
        ])
        .args(extra);
        let (aws, bucket) = match store {
            Store::Local => (None, "ferry-local".to_owned()),
            Store::Aws => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let fixture = rt.block_on(Fixture::new()).unwrap();
                let bucket = rt.block_on(fixture.bucket()).unwrap();
                cmd.args(["--aws", "--table", &fixture.table])
                    .args(["--salt-secret", &fixture.secret_id]);
                let s3 = fixture.s3();
                (Some(AwsSide { rt, fixture, s3 }), bucket)
            }
        };
        let started = crate::up::start(cmd).unwrap();
        let mut up = Up {
            child: started.child,
            data,
            work,
            port: started.port,
            bucket,
            demo_password: started.demo_password,
            aws,
            console: started.console,
        };
        match store {
            Store::Local => assert!(
                !up.demo_password.is_empty(),
                "ferry up printed no demo password"
            ),
            // AWS tables are the operator's: --aws seeds nothing, so the test adds its demo.
            Store::Aws => {
                up.demo_password = "demo-password-for-aws".into();
                let pw = up.demo_password.clone();
                up.add_user("demo", &pw, &[]);
            }
        }
        up
    }

    pub fn ferry(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(workspace_binary("ferry").unwrap());
        match &self.aws {
            None => {
                cmd.arg("--local").arg(&self.data);
            }
            Some(aws) => {
                cmd.args(["--table", &aws.fixture.table])
                    .args(["--salt-secret", &aws.fixture.secret_id]);
            }
        }
        cmd.args(args);
        let out = run_with_stdin(cmd, stdin).unwrap();
        assert!(
            out.status.success(),
            "ferry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `ferry user add NAME --home NAME`, with this backend's bucket and policy, and `extra`.
    pub fn add(&self, name: &str, extra: &[&str], stdin: &str) {
        let mut args = vec!["user", "add", name, "--home", name];
        if let Some(aws) = &self.aws {
            args.extend_from_slice(&["--bucket", &self.bucket]);
            if !extra.contains(&"--policy-arn") {
                args.extend_from_slice(&["--policy-arn", &aws.fixture.policy_arn]);
            }
        }
        args.extend_from_slice(extra);
        self.ferry(&args, stdin);
    }

    pub fn add_user(&self, name: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["--password-stdin"];
        args.extend_from_slice(extra);
        self.add(name, &args, &format!("{password}\n"));
    }

    /// Creates a managed policy where this backend keeps them; returns its ARN.
    pub fn add_policy(&self, name: &str, document: &str) -> String {
        match &self.aws {
            None => {
                std::fs::write(self.data.join(format!("policies/{name}.json")), document).unwrap();
                format!("arn:aws:iam::000000000000:policy/{name}")
            }
            Some(aws) => aws.rt.block_on(aws.fixture.policy(document)).unwrap(),
        }
    }

    /// Writes an object straight into storage, as another writer would.
    pub fn put_object(&self, key: &str, body: &[u8]) {
        match &self.aws {
            None => {
                let path = self.data.join("objects").join(&self.bucket).join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, body).unwrap();
            }
            Some(aws) => {
                aws.rt
                    .block_on(
                        aws.s3
                            .put_object()
                            .bucket(&self.bucket)
                            .key(key)
                            .body(body.to_vec().into())
                            .send(),
                    )
                    .unwrap();
            }
        }
    }

    /// Writes many small objects straight into storage (S3: 32 PUTs at a time).
    pub fn put_objects(&self, keys: &[String], body: &[u8]) {
        let Some(aws) = &self.aws else {
            for key in keys {
                self.put_object(key, body);
            }
            return;
        };
        aws.rt.block_on(async {
            for chunk in keys.chunks(32) {
                let mut puts = tokio::task::JoinSet::new();
                for key in chunk {
                    let put = aws
                        .s3
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .body(body.to_vec().into())
                        .send();
                    puts.spawn(put);
                }
                while let Some(done) = puts.join_next().await {
                    done.unwrap().unwrap();
                }
            }
        });
    }

    /// The notice for `key` in `notifications.jsonl`, waiting up to 30 s for it.
    pub fn notice(&self, key: &str) -> Option<serde_json::Value> {
        let notices = self.data.join("notifications.jsonl");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&notices).unwrap_or_default();
            // Only finished lines: the file may be read while a notice is being appended.
            let finished = text.rfind('\n').map_or("", |end| &text[..end]);
            let found = finished
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|l| l["sourceKey"] == key);
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether `key` is a stored file (object).
    pub fn is_file(&self, key: &str) -> bool {
        match &self.aws {
            None => self
                .data
                .join("objects")
                .join(&self.bucket)
                .join(key)
                .is_file(),
            Some(aws) => aws
                .rt
                .block_on(aws.s3.head_object().bucket(&self.bucket).key(key).send())
                .is_ok(),
        }
    }

    /// Whether `key` is a folder: a directory, or a prefix with something under it in S3.
    pub fn is_dir(&self, key: &str) -> bool {
        match &self.aws {
            None => self
                .data
                .join("objects")
                .join(&self.bucket)
                .join(key)
                .is_dir(),
            Some(aws) => {
                let out = aws
                    .rt
                    .block_on(
                        aws.s3
                            .list_objects_v2()
                            .bucket(&self.bucket)
                            .prefix(format!("{key}/"))
                            .max_keys(1)
                            .send(),
                    )
                    .unwrap();
                !out.contents().is_empty()
            }
        }
    }

    pub fn exists(&self, key: &str) -> bool {
        self.is_file(key) || self.is_dir(key)
    }

    /// The bytes stored under `key`, or `None` when there is no such file (object).
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        match &self.aws {
            None => std::fs::read(self.data.join("objects").join(&self.bucket).join(key)).ok(),
            Some(aws) => aws.rt.block_on(async {
                let out = aws
                    .s3
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .ok()?;
                Some(out.body.collect().await.unwrap().into_bytes().to_vec())
            }),
        }
    }

    /// The bytes stored under `key`, which must exist.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        self.object(key)
            .unwrap_or_else(|| panic!("no object {key} in {}", self.bucket))
    }
}

/// A pseudo-random file of `len` bytes (fast, and the same for the same length).
pub fn random_file(path: &Path, len: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        let n = left.min(8);
        f.write_all(&bytes[..n]).unwrap();
        left -= n;
    }
}

/// Each case runs on both stores: `local::case` on the data folder, `aws::case` with `--aws`.
/// The calling file provides `start(Store) -> Up` (most use [`Up::start`]).
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[test]
            fn $case() {
                super::$case(super::start($crate::harness::Store::Local));
            })*
        }
        mod aws {
            $(#[test]
            fn $case() {
                super::$case(super::start($crate::harness::Store::Aws));
            })*
        }
    };
}
