//! Reading what operators type: passwords (prompt, stdin, generated), dates, key files.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result, bail};
use ferry_core::domain::dates;
use ferry_core::domain::password::{Password, generate_password};

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

/// Epoch seconds of a date an operator typed; the accepted forms are
/// [`ferry_core::domain::dates`]'s, shared with every other entry point.
pub(crate) fn parse_date(s: &str) -> Result<i64> {
    Ok(dates::parse_date(s)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_by_the_core_parser_and_its_errors_kept() {
        // The forms themselves are tested in ferry_core::domain::dates; this checks the wiring.
        assert_eq!(parse_date("2026-11-24").unwrap(), 1_795_478_400);
        assert_eq!(
            parse_date("2031-03-01T10:00:00+02:00").unwrap(),
            parse_date("2031-03-01T08:00:00Z").unwrap()
        );
        let err = parse_date("2026-02-31").unwrap_err().to_string();
        assert!(err.contains("no day 31 in February 2026"), "{err}");
    }
}
