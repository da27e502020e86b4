//! OpenSSH's `sftp` client in batch mode against a local SFTP port, for the suites that check
//! what a real client sees (the SFTP, console and directory suites).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::fixture::unique;

/// How `sftp` logs in.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// Typed at the password prompt (through an askpass script).
    Password(&'a str),
    /// A private key file.
    Key(&'a Path),
}

/// `sftp -b` with `commands` as `user` on 127.0.0.1:`port`, ready to run; its batch and askpass
/// files go in `work`.
pub fn sftp_command(
    port: u16,
    work: &Path,
    user: &str,
    login: Login<'_>,
    commands: &str,
) -> Command {
    let batch = work.join(unique("batch"));
    std::fs::write(&batch, commands).expect("the batch file is written");
    let mut cmd = Command::new("sftp");
    // Options go before -b: sftp adds BatchMode=yes for -b, and ssh keeps an option's first
    // value.
    cmd.args(["-P", &port.to_string()]).args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "NumberOfPasswordPrompts=1",
    ]);
    match login {
        Login::Password(pw) => {
            let askpass = work.join(unique("askpass"));
            std::fs::write(
                &askpass,
                format!(
                    "#!/bin/sh\nprintf '%s\\n' '{}'\n",
                    pw.replace('\'', "'\\''")
                ),
            )
            .expect("the askpass script is written");
            std::fs::set_permissions(
                &askpass,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .expect("the askpass script is made executable");
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
            cmd.arg("-i").arg(key).args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
            ]);
        }
    }
    cmd.arg("-b")
        .arg(&batch)
        .arg(format!("{user}@127.0.0.1"))
        .stdin(Stdio::null());
    cmd
}

/// Runs [`sftp_command`]; whether it succeeded, and everything it printed.
pub fn sftp(
    port: u16,
    work: &Path,
    user: &str,
    login: Login<'_>,
    commands: &str,
) -> (bool, String) {
    let out = sftp_command(port, work, user, login, commands)
        .output()
        .expect("sftp runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
