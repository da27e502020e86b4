//! `ferry user validate`: the policy validator's checks, on demand (for tables that existed
//! before the validator, or to see why a user was marked invalid).

use std::process::ExitCode;

use anyhow::{Result, bail};
use ferry_core::auth::now_epoch;
use ferry_core::aws::dynamodb::{DynamoUserStore, json_to_item};
use ferry_core::ports::{PolicySource, UserAdmin};
use ferry_core::validate::RecordRules;
use ferry_core::validator::{VALIDATED_FIELDS, VerdictWriter, judge_record};
use serde_json::Value;

use crate::ValidateArgs;
use crate::commands::{parse_name, store};

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
    let mut records = Vec::new();
    if let Some(name) = &args.name {
        let username = parse_name(name)?;
        match users.get_raw(&username).await.map_err(store)? {
            Some(r) => records.push(r),
            None => bail!("no user {username}"),
        }
    } else {
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
    let mut invalid = 0;
    for record in &records {
        let name = record
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
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
        if args.write
            && let Some(writer) = verdicts
        {
            let status = record.get("status").and_then(Value::as_str);
            let next = match (&verdict, status) {
                (_, Some("disabled")) => None,
                (Ok(()), _) => Some("active"),
                (Err(_), _) => Some("invalid"),
            };
            let reason = verdict.as_ref().err().map_or("ok", String::as_str);
            let seen = seen_fields(record)?;
            if !writer
                .write_verdict(&name, &seen, next, reason, now_epoch())
                .await
                .map_err(store)?
            {
                eprintln!("{name}: changed while being checked; verdict not written");
            }
        }
    }
    eprintln!("{} checked, {invalid} invalid", records.len());
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The validated fields as they were read, in wire format, for the conditional write.
fn seen_fields(record: &Value) -> Result<Vec<(&'static str, Option<Value>)>> {
    let item = json_to_item(record).unwrap_or_default();
    Ok(VALIDATED_FIELDS
        .iter()
        .map(|f| (*f, item.get(*f).map(wire)))
        .collect())
}

fn wire(v: &aws_sdk_dynamodb::types::AttributeValue) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => serde_json::json!({"S": s}),
        A::N(n) => serde_json::json!({"N": n}),
        A::Bool(b) => serde_json::json!({"BOOL": b}),
        A::Ss(ss) => serde_json::json!({"SS": ss}),
        A::Ns(ns) => serde_json::json!({"NS": ns}),
        A::L(l) => serde_json::json!({"L": l.iter().map(wire).collect::<Vec<_>>()}),
        A::M(m) => {
            serde_json::json!({"M": m.iter().map(|(k, v)| (k.clone(), wire(v))).collect::<serde_json::Map<_, _>>()})
        }
        _ => serde_json::json!({"NULL": true}),
    }
}
