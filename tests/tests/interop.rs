//! `ferry up` with the SFTP clients people really use, each on its own defaults: OpenSSH `sftp`,
//! PuTTY `psftp` (password and key), lftp, rclone, curl (libssh2) and paramiko. Each logs in,
//! uploads a 1 MiB file, lists it, downloads it byte-exact, makes a folder, renames the file into
//! it and deletes it; storage is checked directly between the sessions. A folder of 5,000 files
//! is listed completely by every client. Like `sftp.rs`, every case runs on the data folder
//! (`local::…`) and with `--aws` on DynamoDB Local and moto (`aws::…`). The clients come from
//! Debian's packages (`ferry_clients_install` in scripts/lib/services.sh).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_tests::fixture::unique;
use ferry_tests::harness::{Store, Up, random_file};

const USER: &str = "alice";
const PASSWORD: &str = "alice-interop-pw";

/// `ferry up` with the suite's user, who logs in with a password.
fn start(store: Store) -> Up {
    let up = Up::start(store);
    up.add_user(USER, PASSWORD, &[]);
    up
}

/// What the client drivers need of a started `ferry up`.
trait Clients {
    fn home(&self) -> String;
    fn file(&self, name: &str, text: &str) -> PathBuf;
    fn host_key_fingerprints(&self) -> Vec<String>;
}

impl Clients for Up {
    /// The user's home as an absolute SFTP path.
    fn home(&self) -> String {
        format!("/{}/{USER}", self.bucket)
    }

    /// A file in the work folder holding `text`.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.join(unique(name));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The server's host key fingerprints (`SHA256:…`), from the data folder's keys.
    fn host_key_fingerprints(&self) -> Vec<String> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ssh-keyscan -T 10 -p {} 127.0.0.1 2>/dev/null | ssh-keygen -lf -",
                self.port
            ))
            .output()
            .unwrap();
        let fps: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .filter(|f| f.starts_with("SHA256:"))
            .collect();
        assert!(!fps.is_empty(), "no host key fingerprint from ssh-keyscan");
        fps
    }
}

/// Runs `cmd` without input; panics with everything it printed unless it succeeds.
fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}): {text}",
        out.status
    );
    text
}

/// One client driven through a [`Session`]; returns everything it printed.
type Client = fn(&Up, Session<'_>) -> String;

/// Whether a listing in `out` names `name`: a line ending in it that is not a client echoing a
/// command (`sftp> put … data.bin`, psftp's `local:… => remote:…`, `rm …: OK`).
fn listed(out: &str, name: &str) -> bool {
    out.lines().any(|l| {
        let last = l.split_whitespace().last().unwrap_or_default();
        last.rsplit('/').next() == Some(name)
            && !["sftp>", "=>", "put ", "rm ", "mv ", "rename "]
                .iter()
                .any(|echo| l.contains(echo))
    })
}

/// What a client is asked to do in one session.
enum Session<'a> {
    /// Upload `src` as `data.bin`, list the home, download it to `back`, `mkdir box`, rename
    /// `data.bin` to `box/moved.bin`.
    Transfer { src: &'a Path, back: &'a Path },
    /// Delete `box/moved.bin`, list `box`.
    Delete,
    /// List `many` (names only where the client can).
    List,
}

/// The whole round trip with one client, checking storage between its two sessions.
fn round_trip(up: &Up, client: Client) {
    let src = up.work.join("src.bin");
    random_file(&src, 1024 * 1024);
    let back = up.work.join("back.bin");
    let out = client(
        up,
        Session::Transfer {
            src: &src,
            back: &back,
        },
    );
    assert!(
        listed(&out, "data.bin"),
        "the listing lacks data.bin: {out}"
    );
    let sent = std::fs::read(&src).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == sent,
        "the download differs from the upload"
    );
    assert!(
        up.object(&format!("{USER}/box/moved.bin")).as_ref() == Some(&sent),
        "box/moved.bin is not the uploaded bytes: {out}"
    );
    assert!(up.is_dir(&format!("{USER}/box")));
    assert!(
        up.object(&format!("{USER}/data.bin")).is_none(),
        "data.bin still there"
    );
    let out = client(up, Session::Delete);
    assert!(!listed(&out, "moved.bin"), "moved.bin still listed: {out}");
    assert!(
        up.object(&format!("{USER}/box/moved.bin")).is_none(),
        "box/moved.bin not deleted: {out}"
    );
}

// ---- the clients ----

fn openssh(up: &Up, session: Session<'_>) -> String {
    let script = match session {
        Session::Transfer { src, back } => format!(
            "put {} data.bin\nls -1\nget data.bin {}\nmkdir box\nrename data.bin box/moved.bin\n",
            src.display(),
            back.display()
        ),
        Session::Delete => "rm box/moved.bin\nls -1 box\n".to_owned(),
        Session::List => "ls -1 many\n".to_owned(),
    };
    let batch = up.file("batch", &script);
    let askpass = up.file(
        "askpass",
        &format!("#!/bin/sh\nprintf '%s\\n' '{PASSWORD}'\n"),
    );
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut cmd = Command::new("sftp");
    cmd.args(["-P", &up.port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args([
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .args(["-b", batch.to_str().unwrap(), &format!("{USER}@127.0.0.1")]);
    run("sftp", &mut cmd)
}

/// PuTTY's psftp with the password.
fn psftp_password(up: &Up, session: Session<'_>) -> String {
    let script = match session {
        Session::Transfer { src, back } => format!(
            "put {} data.bin\nls\nget data.bin {}\nmkdir box\nmv data.bin box/moved.bin\n",
            src.display(),
            back.display()
        ),
        Session::Delete => "rm box/moved.bin\nls box\n".to_owned(),
        Session::List => "ls many\n".to_owned(),
    };
    let batch = up.file("psftp", &script);
    let mut cmd = Command::new("psftp");
    cmd.args(["-batch", "-P", &up.port.to_string(), "-l", USER]);
    for fp in up.host_key_fingerprints() {
        cmd.args(["-hostkey", &fp]);
    }
    cmd.args(["-pw", PASSWORD]);
    cmd.args(["-b", batch.to_str().unwrap(), "-be", "127.0.0.1"]);
    let out = run("psftp", &mut cmd);
    // psftp stops at a failed command only with -be off; make failures visible either way.
    assert!(
        !out.contains("failure") && !out.contains("unable"),
        "psftp: {out}"
    );
    out
}

fn lftp(up: &Up, session: Session<'_>) -> String {
    let commands = match session {
        Session::Transfer { src, back } => format!(
            "put {} -o data.bin; cls -1; get data.bin -o {}; mkdir box; mv data.bin box/moved.bin",
            src.display(),
            back.display()
        ),
        Session::Delete => "rm box/moved.bin; cls -1 box/".to_owned(),
        Session::List => "cls -1 many/".to_owned(),
    };
    let mut cmd = Command::new("lftp");
    cmd.arg("-e")
        .arg(format!(
            "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 15; \
             set sftp:auto-confirm yes; set xfer:clobber yes; \
             set sftp:connect-program 'ssh -a -x -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'; \
             {commands}; bye"
        ))
        .args(["-u", &format!("{USER},{PASSWORD}")])
        .arg(format!("sftp://127.0.0.1:{}", up.port))
        // lftp keeps its bookmarks, cache and history under the home folder.
        .env("HOME", &up.work);
    run("lftp", &mut cmd)
}

fn rclone(up: &Up, session: Session<'_>) -> String {
    let pass = run(
        "rclone obscure",
        Command::new("rclone")
            .args(["obscure", PASSWORD])
            .env("RCLONE_CONFIG", "/dev/null"),
    );
    let (src, back) = match &session {
        Session::Transfer { src, back } => (src.display().to_string(), back.display().to_string()),
        _ => (String::new(), String::new()),
    };
    let steps: Vec<Vec<&str>> = match session {
        Session::Transfer { .. } => vec![
            vec!["copyto", &src, "ferry:data.bin"],
            vec!["lsf", "ferry:"],
            vec!["copyto", "ferry:data.bin", &back],
            vec!["mkdir", "ferry:box"],
            vec!["moveto", "ferry:data.bin", "ferry:box/moved.bin"],
        ],
        Session::Delete => vec![
            vec!["deletefile", "ferry:box/moved.bin"],
            vec!["lsf", "ferry:box"],
        ],
        Session::List => vec![vec!["lsf", "ferry:many"]],
    };
    let mut out = String::new();
    for args in steps {
        let mut cmd = Command::new("rclone");
        cmd.args(&args)
            .args([
                "--contimeout",
                "15s",
                "--low-level-retries",
                "1",
                "--retries",
                "1",
            ])
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_FERRY_TYPE", "sftp")
            .env("RCLONE_CONFIG_FERRY_HOST", "127.0.0.1")
            .env("RCLONE_CONFIG_FERRY_PORT", up.port.to_string())
            .env("RCLONE_CONFIG_FERRY_USER", USER)
            .env("RCLONE_CONFIG_FERRY_PASS", pass.trim());
        out.push_str(&run(&format!("rclone {args:?}"), &mut cmd));
    }
    out
}

fn curl(up: &Up, session: Session<'_>) -> String {
    let home = up.home();
    let base = format!("sftp://127.0.0.1:{}{home}", up.port);
    let calls: Vec<Vec<String>> = match session {
        Session::Transfer { src, back } => vec![
            vec![
                "-T".into(),
                src.display().to_string(),
                format!("{base}/data.bin"),
            ],
            vec!["-l".into(), format!("{base}/")],
            vec![
                "-o".into(),
                back.display().to_string(),
                format!("{base}/data.bin"),
            ],
            vec![
                "-Q".into(),
                format!("mkdir {home}/box"),
                "-Q".into(),
                format!("rename {home}/data.bin {home}/box/moved.bin"),
                "-l".into(),
                format!("{base}/"),
            ],
        ],
        Session::Delete => vec![vec![
            "-Q".into(),
            format!("rm {home}/box/moved.bin"),
            "-l".into(),
            format!("{base}/box/"),
        ]],
        Session::List => vec![vec!["-l".into(), format!("{base}/many/")]],
    };
    let mut out = String::new();
    for args in calls {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-k", "--connect-timeout", "15", "--user"])
            .arg(format!("{USER}:{PASSWORD}"))
            .args(&args);
        out.push_str(&run(&format!("curl {args:?}"), &mut cmd));
    }
    out
}

const PARAMIKO: &str = r#"
import sys, paramiko
port, user, password, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username=user, password=password,
               look_for_keys=False, allow_agent=False, timeout=15, auth_timeout=15)
sftp = client.open_sftp()
if phase == "transfer":
    src, back = sys.argv[5], sys.argv[6]
    sftp.put(src, "data.bin")
    print("\n".join(sftp.listdir(".")))
    sftp.get("data.bin", back)
    sftp.mkdir("box")
    sftp.rename("data.bin", "box/moved.bin")
elif phase == "delete":
    sftp.remove("box/moved.bin")
    print("\n".join(sftp.listdir("box")))
else:
    print("\n".join(sftp.listdir("many")))
sftp.close()
client.close()
"#;

fn paramiko(up: &Up, session: Session<'_>) -> String {
    let script = up.file("paramiko.py", PARAMIKO);
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script)
        .args([&up.port.to_string(), USER, PASSWORD]);
    match session {
        Session::Transfer { src, back } => cmd.arg("transfer").arg(src).arg(back),
        Session::Delete => cmd.arg("delete"),
        Session::List => cmd.arg("list"),
    };
    run("paramiko", &mut cmd)
}

// ---- the cases ----

fn openssh_sftp_round_trip(up: Up) {
    round_trip(&up, openssh);
}

fn psftp_with_a_password_round_trip(up: Up) {
    round_trip(&up, psftp_password);
}

fn psftp_with_a_key_round_trip(up: Up) {
    let key = up.work.join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let ppk = up.work.join("id_ed25519.ppk");
    let mut conv = Command::new("puttygen");
    conv.arg(&key).args(["-O", "private", "-o"]).arg(&ppk);
    run("puttygen", &mut conv);
    // A key-only user: psftp offers only the key (no -pw).
    up.add(
        "kay",
        &["--no-password", "--key", &format!("{}.pub", key.display())],
        "",
    );
    round_trip_as_key_user(&up, &ppk);
}

/// The round trip for psftp with a key, as the key-only user `kay` (home `kay`).
fn round_trip_as_key_user(up: &Up, ppk: &Path) {
    let src = up.work.join("src.bin");
    random_file(&src, 1024 * 1024);
    let back = up.work.join("back.bin");
    let script = format!(
        "put {} data.bin\nls\nget data.bin {}\nmkdir box\nmv data.bin box/moved.bin\n",
        src.display(),
        back.display()
    );
    let out = psftp_as(up, "kay", ppk, &script);
    assert!(listed(&out, "data.bin"), "{out}");
    let sent = std::fs::read(&src).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == sent,
        "the download differs"
    );
    assert!(
        up.object("kay/box/moved.bin").as_ref() == Some(&sent),
        "{out}"
    );
    assert!(up.object("kay/data.bin").is_none());
    let out = psftp_as(up, "kay", ppk, "rm box/moved.bin\nls box\n");
    assert!(!listed(&out, "moved.bin"), "{out}");
    assert!(up.object("kay/box/moved.bin").is_none(), "{out}");
}

fn psftp_as(up: &Up, user: &str, ppk: &Path, script: &str) -> String {
    let batch = up.file("psftp", script);
    let mut cmd = Command::new("psftp");
    cmd.args(["-batch", "-P", &up.port.to_string(), "-l", user]);
    for fp in up.host_key_fingerprints() {
        cmd.args(["-hostkey", &fp]);
    }
    cmd.arg("-i")
        .arg(ppk)
        .args(["-b", batch.to_str().unwrap(), "-be", "127.0.0.1"]);
    run("psftp -i", &mut cmd)
}

fn lftp_round_trip(up: Up) {
    round_trip(&up, lftp);
}

fn rclone_on_its_defaults_round_trip(up: Up) {
    round_trip(&up, rclone);
}

fn curl_round_trip(up: Up) {
    round_trip(&up, curl);
}

fn paramiko_round_trip(up: Up) {
    round_trip(&up, paramiko);
}

/// 5,000 files written straight into storage, then listed by every client in turn.
fn a_folder_of_5000_files_is_listed_completely_by_every_client(up: Up) {
    const N: usize = 5000;
    let keys: Vec<String> = (0..N)
        .map(|i| format!("{USER}/many/file-{i:04}.txt"))
        .collect();
    up.put_objects(&keys, b"x");
    let clients: [(&str, Client); 6] = [
        ("openssh", openssh),
        ("psftp", psftp_password),
        ("lftp", lftp),
        ("rclone", rclone),
        ("curl", curl),
        ("paramiko", paramiko),
    ];
    for (name, client) in clients {
        let out = client(&up, Session::List);
        let names: std::collections::BTreeSet<&str> = out
            .split_whitespace()
            .map(|w| w.rsplit('/').next().unwrap())
            .filter(|w| w.starts_with("file-") && w.ends_with(".txt"))
            .collect();
        assert_eq!(names.len(), N, "{name} listed {} names", names.len());
    }
}

ferry_tests::on_both_stores!(
    openssh_sftp_round_trip,
    psftp_with_a_password_round_trip,
    psftp_with_a_key_round_trip,
    lftp_round_trip,
    rclone_on_its_defaults_round_trip,
    curl_round_trip,
    paramiko_round_trip,
    a_folder_of_5000_files_is_listed_completely_by_every_client,
);
