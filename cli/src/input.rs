//! Reading what operators type: passwords (prompt, stdin, generated), dates, key files.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use ferry_core::domain::password::{Password, generate_password};
use sha2::{Digest, Sha256};

/// How to obtain a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    Prompt,
    Stdin,
    Generate,
}

/// Obtains a password; a generated one is printed once to standard output.
pub(crate) fn read_password(source: PasswordSource, confirm: bool) -> Result<Password> {
    let text = match source {
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        PasswordSource::Generate => {
            let p = generate_password();
            println!("generated password: {p}");
            p
        }
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "no terminal to prompt for a password: use --password-stdin or --generate-password"
                );
            }
            let first = rpassword::prompt_password("Password: ").context("reading the password")?;
            if confirm {
                let again = rpassword::prompt_password("Password again: ")
                    .context("reading the password")?;
                if again != first {
                    bail!("the two passwords differ");
                }
            }
            first
        }
    };
    Password::parse(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Epoch seconds from `YYYY-MM-DD` (UTC midnight), `YYYY-MM-DDTHH:MM:SSZ` or a plain number.
pub(crate) fn parse_date(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let err = || {
        anyhow::anyhow!(
            "{s:?} is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or epoch seconds"
        )
    };
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (s, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().map_err(|_| err()));
    let (y, m, day) = (
        d.next().ok_or_else(err)??,
        d.next().ok_or_else(err)??,
        d.next().ok_or_else(err)??,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(err());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let mut parts = t.split(':').map(|p| p.parse::<i64>().map_err(|_| err()));
        let h = parts.next().ok_or_else(err)??;
        let min = parts.next().unwrap_or(Ok(0))?;
        let sec = parts.next().unwrap_or(Ok(0))?;
        if h > 23 || min > 59 || sec > 60 {
            return Err(err());
        }
        secs += h * 3600 + min * 60 + sec;
    }
    Ok(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The public keys in a file: every non-empty line that is not a comment.
pub(crate) fn read_keys(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        bail!("{} holds no public key", path.display());
    }
    Ok(keys)
}

/// `SHA256:…` as `ssh-keygen -l` prints it, or `None` for a key whose body is not base64.
pub(crate) fn fingerprint(key: &str) -> Option<String> {
    let body = key.split_ascii_whitespace().nth(1)?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let digest = Sha256::digest(&blob);
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

/// The key type and base64 body, which identify a key whatever its comment.
pub(crate) fn key_identity(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split_ascii_whitespace();
    Some((parts.next()?, parts.next()?))
}

/// Whether `offered` is one of `listed`, compared by type and key body as sshd compares them
/// (comments differ freely). An unreadable offered key matches nothing.
pub(crate) fn key_listed(listed: &[String], offered: &str) -> bool {
    let Some(offered) = key_identity(offered) else {
        return false;
    };
    listed.iter().any(|k| key_identity(k) == Some(offered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_as_utc_epoch_seconds() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2026-11-24").unwrap(), 1_795_478_400);
        assert_eq!(
            parse_date("2026-11-24T01:02:03Z").unwrap(),
            1_795_478_400 + 3723
        );
        assert_eq!(parse_date("1795478400").unwrap(), 1_795_478_400);
        for bad in [
            "tomorrow",
            "2026-13-01",
            "2026-11",
            "2026-11-24T25:00:00Z",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_matched_by_type_and_body_not_comment() {
        let listed = vec!["ssh-ed25519 AAAAbody alice@laptop".to_owned()];
        assert!(key_listed(&listed, "ssh-ed25519 AAAAbody other-comment"));
        assert!(!key_listed(&listed, "ssh-ed25519 AAAAother alice@laptop"));
        assert!(!key_listed(&listed, "ssh-rsa AAAAbody"));
        assert!(!key_listed(&listed, ""));
        assert!(!key_listed(&["garbage".to_owned()], "garbage2"));
    }

    #[test]
    fn a_fingerprint_matches_ssh_keygen() {
        // What `ssh-keygen -lf` prints for this key.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x";
        assert_eq!(
            fingerprint(key).unwrap(),
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
        );
        assert_eq!(fingerprint("ssh-ed25519 !!!"), None);
    }
}
