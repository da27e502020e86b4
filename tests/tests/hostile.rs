//! `ferry up` against hostile clients, on loopback and bounded in count and time: connection
//! floods past the descriptor limit, too many connections from one source, connections that
//! never log in, parallel password guesses, and a logged-in session that reaches for more
//! channels, handles or file than it may. Every bound refuses one connection or request; the
//! server keeps serving.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_tests::fixture::unique;
use ferry_tests::runtime_api::workspace_binary;
use ferry_tests::up::{peak_memory_kib, start};

/// A running `ferry up` on its own data folder, stopped when dropped.
struct Up {
    child: Child,
    port: u16,
    password: String,
    work: std::path::PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Up {
    /// `ferry up` on the data folder with `bounds` flags, its descriptors limited to `nofile`.
    fn start(bounds: &[&str], nofile: Option<u32>) -> Up {
        let work = std::env::temp_dir().join(unique("ferry-hostile"));
        std::fs::create_dir_all(&work).unwrap();
        let data = work.join("data");
        let ferry = workspace_binary("ferry").unwrap();
        let mut args = vec![
            ferry.to_str().unwrap().to_owned(),
            "up".into(),
            "--data".into(),
            data.to_str().unwrap().to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--no-processing".into(),
            // Descriptors are counted here: the web console's would blur the figures.
            "--no-console".into(),
        ];
        args.extend(bounds.iter().map(|s| (*s).to_owned()));
        let cmd = match nofile {
            Some(n) => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$@\""))
                    .arg("sh")
                    .args(&args);
                cmd
            }
            None => {
                let mut cmd = Command::new(&args[0]);
                cmd.args(&args[1..]);
                cmd
            }
        };
        let started = start(cmd).unwrap();
        assert!(!started.demo_password.is_empty());
        Up {
            child: started.child,
            port: started.port,
            password: started.demo_password,
            work,
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Logs in as demo with `password`; `Ok(true)` when the server accepted it.
async fn login(
    port: u16,
    password: &str,
) -> Result<(
    bool,
    russh::client::Handle<ferry_tests::ssh::TrustingClient>,
)> {
    ferry_tests::ssh::password_login(port, "demo", password).await
}

/// Waits up to `within` for `what`, checking every 100 ms.
async fn eventually(within: Duration, mut what: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if what().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What a fresh connection hears first: `Some(banner)`, or `None` when the server closed it
/// without a word within `wait`.
fn first_words(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_connections_past_the_descriptor_limit_never_stops_the_server() {
    // Caps high enough that only the descriptors run out: 128 of them, 300 connections.
    let mut up = Up::start(
        &[
            "--max-connections",
            "5000",
            "--max-connections-per-source",
            "5000",
            "--login-grace-seconds",
            "5",
        ],
        Some(128),
    );
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", up.port)).ok())
        .collect();
    assert!(flood.len() > 128, "the flood outnumbers the descriptors");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(up.alive(), "ferry up survived running out of descriptors");
    drop(flood);
    let port = up.port;
    let password = up.password.clone();
    assert!(
        eventually(Duration::from_secs(20), async || {
            matches!(login(port, &password).await, Ok((true, _)))
        })
        .await,
        "a real login works once the flood is gone"
    );
    assert!(up.alive());
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_per_source_cap_are_closed_at_once_and_silent_ones_after_the_grace_time()
 {
    let mut up = Up::start(
        &[
            "--max-connections-per-source",
            "4",
            "--login-grace-seconds",
            "2",
        ],
        None,
    );
    let mut conns: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(("127.0.0.1", up.port)).unwrap())
        .collect();
    let greeted: Vec<bool> = conns
        .iter_mut()
        .map(|c| first_words(c, Duration::from_secs(3)).is_some_and(|w| w.starts_with("SSH-2.0")))
        .collect();
    assert_eq!(
        greeted.iter().filter(|g| **g).count(),
        4,
        "only four connections from one address are served: {greeted:?}"
    );
    // The four that were greeted say nothing more, and are closed once the grace time is over.
    let started = Instant::now();
    for (conn, _) in conns.iter_mut().zip(&greeted).filter(|(_, g)| **g) {
        conn.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest).is_ok();
        assert!(closed, "a connection that never logs in is closed");
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed by the grace time, not by the test's own timeout"
    );
    drop(conns);
    assert!(up.alive());
    let (ok, _) = login(up.port, &up.password.clone()).await.unwrap();
    assert!(ok, "the server still serves a real login");
    // ferry up writes every login decision as an audit event in the data folder.
    let audit = up.work.join("data").join("audit.jsonl");
    let logged = eventually(Duration::from_secs(10), async || {
        std::fs::read_to_string(&audit).is_ok_and(|a| {
            a.lines().any(|l| {
                l.contains("\"detailType\":\"ferry login\"")
                    && l.contains("\"outcome\":\"allow\"")
                    && l.contains("\"username\":\"demo\"")
            })
        })
    })
    .await;
    assert!(logged, "no allow event for demo in audit.jsonl");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_passwords_wait_their_turn_instead_of_each_holding_argon2_memory() {
    let mut up = Up::start(
        &[
            "--max-connections-per-source",
            "1000",
            "--max-connections",
            "1000",
        ],
        None,
    );
    let port = up.port;
    let guesses: Vec<_> = (0..150)
        .map(|i| {
            tokio::spawn(async move {
                login(port, &format!("wrong-guess-{i}"))
                    .await
                    .map(|(ok, _)| ok)
            })
        })
        .collect();
    let mut refused = 0;
    for g in guesses {
        if let Ok(Ok(false)) = g.await {
            refused += 1;
        }
    }
    assert_eq!(refused, 150, "every guess is refused");
    let peak_mib = peak_memory_kib(up.pid()).unwrap() / 1024;
    // Unbounded, each guess held its own 19 MiB Argon2 block: 150 of them took this server to
    // 1.9 GiB. Bounded to one check per core, the guesses queue.
    eprintln!("ferry up peak memory after 150 parallel wrong passwords: {peak_mib} MiB");
    assert!(peak_mib < 300, "peak memory {peak_mib} MiB");
    assert!(up.alive());
    let (ok, _) = login(port, &up.password.clone()).await.unwrap();
    assert!(ok, "the right password still logs in");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_held_to_its_channels_handles_and_file_extent() {
    let mut up = Up::start(
        &[
            "--max-handles",
            "8",
            "--max-file-bytes",
            "1048576",
            "--max-write-gap-bytes",
            "65536",
        ],
        None,
    );
    let (ok, session) = login(up.port, &up.password.clone()).await.unwrap();
    assert!(ok);
    // Ten session channels at once, as Transfer Family allows; the eleventh is refused.
    let mut channels = Vec::new();
    for _ in 0..10 {
        channels.push(session.channel_open_session().await.unwrap());
    }
    assert!(
        session.channel_open_session().await.is_err(),
        "an eleventh channel"
    );
    let channel = channels.pop().unwrap();
    drop(channels);
    channel.request_subsystem(true, "sftp").await.unwrap();
    let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    sftp.init().await.unwrap();
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let mut handles = Vec::new();
    for i in 0..8 {
        let h = sftp
            .open(format!("f{i}.bin"), write, FileAttributes::default())
            .await
            .unwrap();
        handles.push(h.handle);
    }
    assert!(
        sftp.open("f8.bin", write, FileAttributes::default())
            .await
            .is_err(),
        "a ninth handle"
    );
    let h = &handles[0];
    // One byte at 2^40 would ask for a 1 TiB file.
    assert!(sftp.write(h, 1 << 40, vec![1]).await.is_err());
    // A gap within the bound is fine; past the largest file is not.
    sftp.write(h, 0, vec![0; 1024]).await.unwrap();
    sftp.write(h, 1024 + 65536, vec![2; 10]).await.unwrap();
    assert!(
        sftp.write(h, 200_000, vec![3; 10]).await.is_err(),
        "a gap too wide"
    );
    // Filling up to the largest file is fine, one byte more is not.
    let chunk = 32 * 1024;
    let mut at = 1024 + 65536 + 10;
    while at + chunk <= 1_048_576 {
        sftp.write(h, at, vec![5; chunk as usize]).await.unwrap();
        at += chunk;
    }
    sftp.write(h, at, vec![6; (1_048_576 - at) as usize])
        .await
        .unwrap();
    assert!(
        sftp.write(h, 1_048_576, vec![7]).await.is_err(),
        "past the largest file"
    );
    // A handle given back makes room for another.
    sftp.close(handles.pop().unwrap()).await.unwrap();
    sftp.open("f9.bin", write, FileAttributes::default())
        .await
        .unwrap();
    assert!(up.alive());
}

/// Waits up to five seconds for the server's answer to a channel request.
async fn reply_to_request(channel: &mut russh::Channel<russh::client::Msg>) -> Option<bool> {
    let answer = async {
        loop {
            match channel.wait().await? {
                russh::ChannelMsg::Success => return Some(true),
                russh::ChannelMsg::Failure => return Some(false),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_shell_pty_and_other_subsystems_are_refused_at_once_and_sftp_still_works() {
    let mut up = Up::start(&[], None);
    let (ok, session) = login(up.port, &up.password.clone()).await.unwrap();
    assert!(ok);
    // rclone's shell probe: unanswered, it would wait forever.
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "md5sum").await.unwrap();
    assert_eq!(reply_to_request(&mut channel).await, Some(false), "exec");
    channel.request_shell(true).await.unwrap();
    assert_eq!(reply_to_request(&mut channel).await, Some(false), "shell");
    channel
        .request_pty(true, "xterm", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    assert_eq!(reply_to_request(&mut channel).await, Some(false), "pty");
    channel.request_subsystem(true, "netconf").await.unwrap();
    assert_eq!(
        reply_to_request(&mut channel).await,
        Some(false),
        "another subsystem"
    );
    // The same channel, and so the connection, still serves SFTP.
    channel.request_subsystem(true, "sftp").await.unwrap();
    assert_eq!(reply_to_request(&mut channel).await, Some(true), "sftp");
    let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    sftp.init().await.unwrap();
    let home = sftp.realpath(".").await.unwrap();
    assert!(
        home.files[0].filename.ends_with("/demo"),
        "{:?}",
        home.files[0].filename
    );
    assert!(up.alive());
}

/// Logs in as demo on `up` and starts an SFTP session; the connection lives as long as the
/// handle returned with it.
async fn sftp_session(
    up: &Up,
) -> (
    russh::client::Handle<ferry_tests::ssh::TrustingClient>,
    russh_sftp::client::RawSftpSession,
) {
    let (ok, session) = login(up.port, &up.password.clone()).await.unwrap();
    assert!(ok);
    let channel = session.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    sftp.init().await.unwrap();
    (session, sftp)
}

/// Uploads `body` as `name` through `sftp`.
async fn upload(sftp: &russh_sftp::client::RawSftpSession, name: &str, body: &[u8]) {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let h = sftp
        .open(name, write, FileAttributes::default())
        .await
        .unwrap()
        .handle;
    sftp.write(&h, 0, body.to_vec()).await.unwrap();
    sftp.close(h).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn setstat_is_ignored_by_default_and_refused_when_asked() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
    let up = Up::start(&[], None);
    let (_connection, sftp) = sftp_session(&up).await;
    upload(&sftp, "kept.txt", b"as uploaded").await;
    let before = sftp.stat("kept.txt").await.unwrap().attrs;
    // What rclone and WinSCP send after an upload: a time (here 2001) and a mode.
    let attrs = FileAttributes {
        permissions: Some(0o600),
        atime: Some(1_000_000_000),
        mtime: Some(1_000_000_000),
        ..FileAttributes::default()
    };
    let status = sftp.setstat("kept.txt", attrs.clone()).await.unwrap();
    assert_eq!(status.status_code, StatusCode::Ok);
    let h = sftp
        .open("kept.txt", OpenFlags::READ, FileAttributes::default())
        .await
        .unwrap()
        .handle;
    let status = sftp.fsetstat(&h, attrs.clone()).await.unwrap();
    assert_eq!(status.status_code, StatusCode::Ok);
    let data = sftp.read(&h, 0, 1024).await.unwrap().data;
    assert_eq!(data, b"as uploaded", "the content is unchanged");
    sftp.close(h).await.unwrap();
    let after = sftp.stat("kept.txt").await.unwrap().attrs;
    assert_eq!(
        (after.size, after.permissions, after.mtime),
        (before.size, before.permissions, before.mtime),
        "nothing changed"
    );
    assert_ne!(after.mtime, Some(1_000_000_000));

    let refusing = Up::start(&["--setstat", "refuse"], None);
    let (_connection, sftp) = sftp_session(&refusing).await;
    upload(&sftp, "kept.txt", b"as uploaded").await;
    match sftp.setstat("kept.txt", attrs).await {
        Err(russh_sftp::client::error::Error::Status(s)) => {
            assert_eq!(s.status_code, StatusCode::OpUnsupported);
        }
        other => panic!("setstat with --setstat refuse: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keyboard_interactive_is_a_password_login_and_only_ferrys_methods_are_offered() {
    use russh::client::KeyboardInteractiveAuthResponse as Reply;
    let mut up = Up::start(&[], None);
    let password = up.password.clone();
    for (answer, allowed) in [("not-the-password", false), (password.as_str(), true)] {
        let mut session = ferry_tests::ssh::connect(up.port).await.unwrap();
        let reply = session
            .authenticate_keyboard_interactive_start("demo", None)
            .await
            .unwrap();
        let Reply::InfoRequest { prompts, .. } = reply else {
            panic!("expected a prompt, got {reply:?}");
        };
        assert_eq!(prompts.len(), 1, "one prompt: the password");
        let reply = session
            .authenticate_keyboard_interactive_respond(vec![answer.to_owned()])
            .await
            .unwrap();
        match (reply, allowed) {
            (Reply::Success, true) => {}
            (
                Reply::Failure {
                    remaining_methods, ..
                },
                false,
            ) => {
                let offered: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
                assert_eq!(
                    offered,
                    ["publickey", "password", "keyboard-interactive"],
                    "only the methods ferry implements"
                );
            }
            (other, _) => panic!("{answer}: {other:?}"),
        }
    }
    assert!(up.alive());
}
