//! `ferry user validate`: the policy validator's checks, on demand (for tables that existed
//! before the validator, or to see why a user was marked invalid), and on the default profiles
//! of directory sources (`--directory FILE`), which no record holds for the validator to see.

use std::process::ExitCode;

use anyhow::{Result, bail};
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::app::now_epoch;
use ferry_core::app::verdicts::{VALIDATED_FIELDS, judge_record};
use ferry_core::domain::policy_checks::RecordRules;
use ferry_core::domain::user::{Status, attr};
use ferry_core::domain::username::Username;
use ferry_core::ports::VerdictWriter;
use ferry_core::ports::{PolicySource, UserAdmin};
use serde_json::Value;

use crate::ValidateArgs;
use crate::backend::{parse_name, store};

pub(crate) async fn validate<U: UserAdmin, P: PolicySource>(
    users: &U,
    policies: &P,
    verdicts: Option<&DynamoUserStore>,
    args: ValidateArgs,
) -> Result<ExitCode> {
    if args.write && verdicts.is_none() {
        bail!(
            "--write records verdicts in a DynamoDB users table; the local stack has no validator"
        );
    }
    let rules = RecordRules {
        role_account: args.role_account,
        role_path: args.role_path,
    };
    let mut invalid = 0;
    let mut checked = 0;
    if let Some(path) = &args.directory {
        for (source, verdict) in profile_verdicts(path, policies, &rules).await? {
            checked += 1;
            match verdict {
                Ok(()) => println!("directory source {source} (default profile): valid"),
                Err(reason) => {
                    invalid += 1;
                    println!("directory source {source} (default profile): INVALID: {reason}");
                }
            }
        }
    }
    let mut records = Vec::new();
    if let Some(name) = &args.name {
        let username = parse_name(name)?;
        match users.get_raw(&username).await.map_err(store)? {
            Some(r) => records.push(r),
            None => bail!("no user {username}"),
        }
    } else if args.all {
        let mut start = None;
        loop {
            let page = users.list_users(start).await.map_err(store)?;
            records.extend(page.users);
            match page.next {
                Some(n) => start = Some(n),
                None => break,
            }
        }
    }
    for listed in &records {
        let name = listed
            .get(attr::USERNAME)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        // With --write, judge the item as it is now, and pin exactly that item, with DynamoDB's
        // own types, in the conditional write: rebuilt from plain JSON, a string set would read
        // as a list and the condition would never match.
        let writing = match verdicts.filter(|_| args.write) {
            Some(writer) => {
                let Ok(username) = Username::parse(&name) else {
                    eprintln!("{name}: not a valid username; verdict not written");
                    continue;
                };
                match writer.get_item(&username).await.map_err(store)? {
                    Some(item) => Some((writer, item)),
                    None => {
                        eprintln!("{name}: deleted while being checked");
                        continue;
                    }
                }
            }
            None => None,
        };
        let record = match &writing {
            Some((_, item)) => serde_dynamo::from_item(item.clone()).map_err(|e| {
                anyhow::anyhow!("{name}: the item does not fit the data model: {e}")
            })?,
            None => listed.clone(),
        };
        let verdict = judge_record(record.clone(), policies, &rules)
            .await
            .map_err(store)?;
        match &verdict {
            Ok(()) => println!("{name}: valid"),
            Err(reason) => {
                invalid += 1;
                println!("{name}: INVALID: {reason}");
            }
        }
        if let Some((writer, item)) = &writing {
            let status = record
                .get(attr::STATUS)
                .and_then(Value::as_str)
                .and_then(Status::parse);
            let next = match (&verdict, status) {
                (_, Some(Status::Disabled)) => None,
                (Ok(()), _) => Some(Status::Active),
                (Err(_), _) => Some(Status::Invalid),
            };
            let reason = verdict.as_ref().err().map_or("ok", String::as_str);
            let seen: Vec<_> = VALIDATED_FIELDS
                .iter()
                .chain([&attr::STATUS])
                .map(|f| {
                    (
                        *f,
                        item.get(*f)
                            .cloned()
                            .map(serde_dynamo::AttributeValue::from),
                    )
                })
                .collect();
            if !writer
                .write_verdict(&name, &seen, next, reason, now_epoch())
                .await
                .map_err(store)?
            {
                eprintln!("{name}: changed while being checked; verdict not written");
            }
        }
    }
    eprintln!("{} checked, {invalid} invalid", records.len() + checked);
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Each directory source's default profile, judged as the validator judges a record: the record
/// the profile makes for a sample username (the home template filled in), its policy loaded and
/// checked. Sources without a default profile admit no one without a record: nothing to judge.
async fn profile_verdicts<P: PolicySource>(
    path: &std::path::Path,
    policies: &P,
    rules: &RecordRules,
) -> Result<Vec<(String, Result<(), String>)>> {
    use ferry_core::domain::directory::{DirectoryUser, parse_sources, profile_record};
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let sources = parse_sources(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let sample = Username::parse("sample-user").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for source in sources {
        let Some(profile) = &source.default_profile else {
            continue;
        };
        let verdict = match profile_record(
            profile,
            &sample,
            Some(&source.name),
            &DirectoryUser::default(),
        ) {
            Ok(record) => judge_record(record.to_json(), policies, rules)
                .await
                .map_err(store)?,
            Err(e) => Err(e.to_string()),
        };
        out.push((source.name.to_string(), verdict));
    }
    Ok(out)
}
