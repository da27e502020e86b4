//! `ferry user import FILE.csv`: the core reads and writes each row
//! (`ferry_core::app::admin::import`); this shows progress and reports each failed row with its
//! line number.

use std::process::ExitCode;

use anyhow::{Context, Result};
use ferry_core::app::admin::import::{ImportError, RowDefaults, RowOutcome, read_rows};
use ferry_core::domain::keyring::Keyring;
use ferry_core::ports::{SaltSource, UserAdmin, UserStore};
use indicatif::{ProgressBar, ProgressStyle};

use crate::ImportArgs;
use crate::backend::{Backend, refused};

pub(crate) async fn import<U, S, P>(b: &Backend<U, S, P>, a: ImportArgs) -> Result<ExitCode>
where
    U: UserAdmin + UserStore,
    S: SaltSource,
{
    let file =
        std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
    let defaults = RowDefaults {
        bucket: a.bucket.clone(),
        policy_arn: a.policy_arn.clone(),
    };
    let rows = read_rows(file, &defaults)?;
    let admin = b.admin();
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut keyring: Option<Keyring> = None;
    let (mut created, mut updated, mut skipped, mut failed) = (0, 0, 0, 0);
    for (line, row) in rows {
        let outcome = match row {
            Ok(row) => admin.import_row(row, a.update, &mut keyring).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(RowOutcome::Created) => created += 1,
            Ok(RowOutcome::Updated) => updated += 1,
            Ok(RowOutcome::Skipped) => skipped += 1,
            Err(e) => {
                failed += 1;
                let line = if line == 0 {
                    String::from("?")
                } else {
                    line.to_string()
                };
                let e = match e {
                    ImportError::Admin(e) => refused(e),
                    other => anyhow::anyhow!("{other}"),
                };
                bar.suspend(|| eprintln!("line {line}: {e:#}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "{created} created, {updated} updated, {skipped} skipped (already there), {failed} failed"
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
