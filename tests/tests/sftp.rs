//! `ferry up` end to end with OpenSSH's own `sftp` client: logins, transfers, every file
//! operation, and the session policy and path rules that keep each user in their home.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::fixture::unique;
use ferry_tests::run_with_stdin;
use ferry_tests::runtime_api::workspace_binary;

/// A running `ferry up` on a fresh data folder.
struct Up {
    child: Child,
    data: PathBuf,
    work: PathBuf,
    port: u16,
    demo_password: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

enum Login<'a> {
    Password(&'a str),
    Key(&'a Path),
}

impl Up {
    fn start() -> Up {
        let work = std::env::temp_dir().join(unique("ferry-up"));
        std::fs::create_dir_all(&work).unwrap();
        let data = work.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(workspace_binary("ferry").unwrap())
            .args([
                "up",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut demo_password = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split("created user demo with password ").nth(1) {
                demo_password = rest.split_whitespace().next().unwrap().to_owned();
            }
            if line.contains("SFTP on") {
                break;
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(
            !demo_password.is_empty(),
            "ferry up printed no demo password"
        );
        Up {
            child,
            data,
            work,
            port,
            demo_password,
        }
    }

    fn ferry(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(workspace_binary("ferry").unwrap());
        cmd.arg("--local").arg(&self.data).args(args);
        let out = run_with_stdin(cmd, stdin).unwrap();
        assert!(
            out.status.success(),
            "ferry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn add_user(&self, name: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["user", "add", name, "--home", name, "--password-stdin"];
        args.extend_from_slice(extra);
        self.ferry(&args, &format!("{password}\n"));
    }

    /// `sftp -b` with `commands` as `user`, ready to run.
    fn sftp_command(&self, user: &str, login: Login<'_>, commands: &str) -> Command {
        let batch = self.work.join(unique("batch"));
        std::fs::write(&batch, commands).unwrap();
        let mut cmd = Command::new("sftp");
        // Options go before -b: sftp adds BatchMode=yes for -b, and ssh keeps an option's
        // first value.
        cmd.args(["-P", &self.port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ])
            .args(["-o", "ConnectTimeout=10", "-o", "NumberOfPasswordPrompts=1"]);
        match login {
            Login::Password(pw) => {
                let askpass = self.work.join(unique("askpass"));
                std::fs::write(
                    &askpass,
                    format!(
                        "#!/bin/sh\nprintf '%s\\n' '{}'\n",
                        pw.replace('\'', "'\\''")
                    ),
                )
                .unwrap();
                std::fs::set_permissions(
                    &askpass,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )
                .unwrap();
                cmd.env("SSH_ASKPASS", &askpass)
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env("DISPLAY", ":0")
                    .args([
                        "-o",
                        "BatchMode=no",
                        "-o",
                        "PreferredAuthentications=password",
                        "-o",
                        "PubkeyAuthentication=no",
                    ]);
            }
            Login::Key(key) => {
                cmd.args([
                    "-i",
                    key.to_str().unwrap(),
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "PreferredAuthentications=publickey",
                ]);
            }
        }
        cmd.args(["-b", batch.to_str().unwrap()])
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `sftp -b` with `commands`; returns (success, everything it printed).
    fn sftp(&self, user: &str, login: Login<'_>, commands: &str) -> (bool, String) {
        let out = self.sftp_command(user, login, commands).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn object(&self, key: &str) -> PathBuf {
        self.data.join("objects/ferry-local").join(key)
    }
}

fn random_file(path: &Path, len: usize) {
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

#[test]
fn the_demo_user_logs_in_and_a_wrong_password_is_refused() {
    let up = Up::start();
    let (ok, out) = up.sftp("demo", Login::Password(&up.demo_password), "pwd\n");
    assert!(ok, "{out}");
    assert!(out.contains("/ferry-local/demo"), "{out}");
    let (ok, out) = up.sftp("demo", Login::Password("not the password"), "pwd\n");
    assert!(!ok, "{out}");
    let (ok, _) = up.sftp("nobody", Login::Password(&up.demo_password), "pwd\n");
    assert!(!ok);
}

#[test]
fn files_go_up_and_come_back_byte_exact_and_every_operation_works() {
    let up = Up::start();
    up.add_user("alice", "alice-pw", &[]);
    let src = up.work.join("src.bin");
    random_file(&src, 5 * 1024 * 1024 + 17);
    let back = up.work.join("back.bin");
    let script = format!(
        "put {src} data.bin\nls -l\nmkdir inbox\nrename data.bin inbox/data.bin\nls inbox\nget inbox/data.bin {back}\n\
         put {src} tmp.bin\nrm tmp.bin\nmkdir empty\nrmdir empty\n-rmdir inbox\nls\n",
        src = src.display(),
        back = back.display()
    );
    let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), &script);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(&src).unwrap(),
        std::fs::read(&back).unwrap(),
        "download differs from upload"
    );
    assert!(up.object("alice/inbox/data.bin").is_file());
    assert!(!up.object("alice/data.bin").exists() && !up.object("alice/tmp.bin").exists());
    assert!(!up.object("alice/empty").exists());
    assert!(
        out.contains("directory not empty") || up.object("alice/inbox").is_dir(),
        "rmdir of a non-empty dir is refused: {out}"
    );
    assert!(up.object("alice/inbox").is_dir());
}

#[test]
fn path_users_cannot_leave_their_home_or_read_another() {
    let up = Up::start();
    up.add_user("alice", "alice-pw", &[]);
    up.add_user("bob", "bob-pw", &[]);
    std::fs::create_dir_all(up.object("bob")).unwrap();
    std::fs::write(up.object("bob/secret.txt"), "bob's").unwrap();
    let out_file = up.work.join("stolen");
    // The control: alice can log in and work in her own home.
    let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), "pwd\nls\n");
    assert!(ok && out.contains("/ferry-local/alice"), "{out}");
    for attempt in [
        "cd ..\n".to_owned(),
        "ls ..\n".to_owned(),
        format!("get ../bob/secret.txt {}\n", out_file.display()),
        format!("get /ferry-local/bob/secret.txt {}\n", out_file.display()),
        format!("get ../../../../etc/passwd {}\n", out_file.display()),
        format!(
            "put {} ../bob/planted.txt\n",
            up.data.join("keyring.json").display()
        ),
        "ls /ferry-local\n".to_owned(),
        "mkdir ../evil\n".to_owned(),
        "rm ../bob/secret.txt\n".to_owned(),
    ] {
        let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), &attempt);
        assert!(!ok, "{attempt:?} should fail: {out}");
    }
    assert!(!out_file.exists());
    assert!(up.object("bob/secret.txt").is_file());
    assert!(!up.object("bob/planted.txt").exists() && !up.object("evil").exists());
}

#[test]
fn a_chroot_user_sees_only_their_home_as_root() {
    let up = Up::start();
    up.add_user("carol", "carol-pw", &["--chroot"]);
    let src = up.work.join("c.txt");
    std::fs::write(&src, "carol").unwrap();
    let (ok, out) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("pwd\nput {} c.txt\ncd ..\npwd\nls /\n", src.display()),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Remote working directory: /\n"), "{out}");
    assert!(up.object("carol/c.txt").is_file());
    let (ok, _) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("get /etc/passwd {}\n", up.work.join("x").display()),
    );
    assert!(!ok);
    let (ok, _) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("get ../../demo/x {}\n", up.work.join("x").display()),
    );
    assert!(!ok);
    assert!(!up.work.join("x").exists());
}

#[test]
fn a_read_only_policy_refuses_uploads_but_allows_downloads() {
    let up = Up::start();
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}]}"#;
    std::fs::write(up.data.join("policies/read-only.json"), policy).unwrap();
    up.add_user(
        "dora",
        "dora-pw",
        &["--policy-arn", "arn:aws:iam::000000000000:policy/read-only"],
    );
    std::fs::create_dir_all(up.object("dora")).unwrap();
    std::fs::write(up.object("dora/report.csv"), "a,b\n").unwrap();
    let got = up.work.join("report.csv");
    let (ok, out) = up.sftp(
        "dora",
        Login::Password("dora-pw"),
        &format!("get report.csv {}\n", got.display()),
    );
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "a,b\n");
    let (ok, out) = up.sftp(
        "dora",
        Login::Password("dora-pw"),
        &format!("put {} new.csv\n", got.display()),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("ermission denied"), "{out}");
    assert!(!up.object("dora/new.csv").exists());
    let (ok, _) = up.sftp("dora", Login::Password("dora-pw"), "rm report.csv\n");
    assert!(!ok);
    assert!(up.object("dora/report.csv").exists());
}

#[test]
fn an_ed25519_key_logs_in_and_another_key_does_not() {
    let up = Up::start();
    let key = up.work.join("id_ed25519");
    let other = up.work.join("other_ed25519");
    for k in [&key, &other] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f", k.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    up.ferry(
        &[
            "user",
            "add",
            "erin",
            "--home",
            "erin",
            "--no-password",
            "--key",
            &format!("{}.pub", key.display()),
        ],
        "",
    );
    let (ok, out) = up.sftp("erin", Login::Key(&key), "pwd\n");
    assert!(ok, "{out}");
    let (ok, out) = up.sftp("erin", Login::Key(&other), "pwd\n");
    assert!(!ok, "{out}");
}

#[test]
fn a_user_disabled_while_the_server_runs_is_refused_at_the_next_login() {
    let up = Up::start();
    up.add_user("fred", "fred-pw", &[]);
    assert!(up.sftp("fred", Login::Password("fred-pw"), "pwd\n").0);
    up.ferry(&["user", "disable", "fred"], "");
    let (ok, out) = up.sftp("fred", Login::Password("fred-pw"), "pwd\n");
    assert!(!ok, "{out}");
    up.ferry(&["user", "enable", "fred"], "");
    assert!(up.sftp("fred", Login::Password("fred-pw"), "pwd\n").0);
}

#[test]
fn a_session_dropped_mid_upload_leaves_no_complete_looking_file() {
    let up = Up::start();
    up.add_user("gina", "gina-pw", &[]);
    let big = up.work.join("big.bin");
    random_file(&big, 200 * 1024 * 1024);
    let mut sftp = up
        .sftp_command(
            "gina",
            Login::Password("gina-pw"),
            &format!("put {} big.bin\n", big.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the upload is under way, then cut the connection.
    let uploads = up.data.join("uploads");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let started = std::fs::read_dir(&uploads)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sftp.kill().unwrap();
    sftp.wait().unwrap();
    // The server notices the drop and moves the upload aside.
    let deadline = Instant::now() + Duration::from_secs(15);
    let partial = up.data.join("partial");
    while Instant::now() < deadline
        && std::fs::read_dir(&partial)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !up.object("gina/big.bin").exists(),
        "no file may appear under the target name"
    );
    let kept: Vec<_> = std::fs::read_dir(&partial).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "the partial upload is kept aside");
    assert!(kept[0].metadata().unwrap().len() < 200 * 1024 * 1024);
}

/// Peak resident memory of a process, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_200_mb_file_goes_up_and_down_byte_exact_while_server_memory_stays_flat() {
    let up = Up::start();
    up.add_user("hana", "hana-pw", &[]);
    // Warm up: one login (Argon2's 19 MiB block) and one small transfer.
    let small = up.work.join("small.bin");
    random_file(&small, 64 * 1024);
    let (ok, out) = up.sftp(
        "hana",
        Login::Password("hana-pw"),
        &format!("put {} small.bin\n", small.display()),
    );
    assert!(ok, "{out}");
    let before = vm_hwm_kib(up.child.id());

    let big = up.work.join("big.bin");
    let back = up.work.join("big.back");
    random_file(&big, 200 * 1024 * 1024);
    let (ok, out) = up.sftp(
        "hana",
        Login::Password("hana-pw"),
        &format!(
            "put {} big.bin\nget big.bin {}\n",
            big.display(),
            back.display()
        ),
    );
    assert!(ok, "{out}");
    let after = vm_hwm_kib(up.child.id());
    assert_eq!(std::fs::metadata(&back).unwrap().len(), 200 * 1024 * 1024);
    assert!(
        std::fs::read(&big).unwrap() == std::fs::read(&back).unwrap(),
        "the round trip changed bytes"
    );
    // Streaming, never the whole file: the peak may grow by buffers, not by the file's size.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "server peak memory grew from {before} KiB to {after} KiB"
    );
}
