//! The policy validator's checks on one user record: the scope-down policy's static rules, a
//! proof by simulation with the core's IAM evaluator (the user's own home is reachable; a sibling
//! home, the bucket root and another bucket are not), and the rest of the record (role ARN, home
//! targets). Pure: fetching the policy and writing the verdict happen at the edges.

use crate::domain::access::{
    AccessError, Effect, KnownVariable, Piece, Request, SessionPolicy, SessionVariables, Statement,
    Verdict, pieces, read_statements, wildcard,
};
use crate::domain::arn::Arn;
use crate::domain::policy::{MAX_SESSION_POLICY_CHARS, PolicyDocument};
use crate::domain::user::{Home, MappingType, UserRecord};

/// What the record checks allow beyond the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// The only account user roles may live in (`ALLOWED_ROLE_ACCOUNT`); `None`: any.
    pub role_account: Option<String>,
    /// The path user roles must sit under (`ALLOWED_ROLE_PATH`), e.g. `/transfer/`; `None`: any.
    pub role_path: Option<String>,
}

/// Bucket-level calls a user's session must never be allowed.
const BUCKET_MUTATORS: [&str; 20] = [
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutAccelerateConfiguration",
    "s3:PutInventoryConfiguration",
];

/// The home a session's variables come from, as the SFTP front door computes it: the PATH home,
/// or the target of `/` (a chroot), or the first mapping's target.
pub fn variables_home(user: &UserRecord) -> String {
    match &user.home {
        Home::Path(p) => p.clone(),
        Home::Logical(m) => m
            .iter()
            .find(|m| m.entry == "/")
            .or(m.first())
            .map(|m| m.target.clone())
            .unwrap_or_default(),
    }
}

/// All the checks on a record whose policy document is `doc`. `Err` is the first reason found,
/// short enough for `statusReason`.
pub fn check_user(
    user: &UserRecord,
    doc: &PolicyDocument,
    rules: &RecordRules,
) -> Result<(), String> {
    check_record(user, rules)?;
    if doc.chars() > MAX_SESSION_POLICY_CHARS {
        return Err(format!(
            "policy is {} characters minified, over Transfer's 2,048",
            doc.chars()
        ));
    }
    check_static(doc.as_str(), user)?;
    simulate(doc.as_str(), user)
}

/// Role ARN and home targets.
pub fn check_record(user: &UserRecord, rules: &RecordRules) -> Result<(), String> {
    // `UserRecord::from_json` checks both shapes already; checked again because a record's
    // fields are public, and the validator must not pass a record built some other way.
    Arn::iam_policy(&user.policy_arn)
        .map_err(|e| format!("iamPolicyArn is not an IAM policy ARN: {e}"))?;
    if let Some(role) = &user.role_arn {
        let role =
            Arn::iam_role(role).map_err(|e| format!("roleArn is not an IAM role ARN: {e}"))?;
        let account = role.account();
        // Matched against path and name together, as a prefix: `/transfer/` admits every role
        // under that path, and a longer rule can pin a name prefix too.
        let path = role.path_and_name();
        if rules.role_account.as_deref().is_some_and(|a| a != account) {
            return Err(format!(
                "roleArn is outside the allowed account ({account})"
            ));
        }
        if let Some(prefix) = &rules.role_path
            && !path.starts_with(prefix.as_str())
        {
            return Err(format!("roleArn is outside the allowed path {prefix}"));
        }
    }
    let inside = |target: &str| {
        target.starts_with(&format!("/{}/", user.bucket)) || target == format!("/{}", user.bucket)
    };
    if let Home::Logical(mappings) = &user.home
        && let Some(m) = mappings.iter().find(|m| !inside(&m.target))
    {
        return Err(format!(
            "logical target {} is outside the user's bucket",
            m.target
        ));
    }
    Ok(())
}

/// The roots a user's objects may live under: `bucket/home` for PATH homes, every mapping target
/// for LOGICAL ones (FILE targets exactly).
fn roots(user: &UserRecord) -> Vec<(String, bool)> {
    match &user.home {
        Home::Path(p) => vec![(p.trim_matches('/').to_owned(), false)],
        Home::Logical(m) => m
            .iter()
            .map(|m| {
                (
                    m.target.trim_matches('/').to_owned(),
                    m.kind == Some(MappingType::File),
                )
            })
            .collect(),
    }
}

/// The static rules: the shape of every statement, checked before any variable is substituted
/// for the actions and after for the resources.
pub fn check_static(doc: &str, user: &UserRecord) -> Result<(), String> {
    // Unknown variables would be left in place by Transfer and match nothing, or worse. The whole
    // document is scanned, not only the fields the rules below read, so none hides anywhere.
    for piece in pieces(doc) {
        match piece {
            Piece::Unterminated(_) => return Err("policy has an unterminated ${".to_owned()),
            Piece::Variable(name) if KnownVariable::from_name(name).is_none() => {
                return Err(format!("policy uses the unknown variable ${{{name}}}"));
            }
            Piece::Variable(_) | Piece::Text(_) => {}
        }
    }
    // The evaluator's reader: the validator judges the statements the evaluator will run.
    let statements = read_statements(doc).map_err(|e| match e {
        // Numbered from 1 like the rest of the validator's reasons.
        AccessError::Statement(i, why) => format!("statement {}: {why}", i + 1),
        other => other.to_string(),
    })?;
    let vars = SessionVariables::for_home(&variables_home(user), user.username.as_str());
    let roots = roots(user);
    for (i, s) in statements.iter().enumerate() {
        let n = i + 1;
        let banned = [
            s.principal,
            s.action.negated.then_some("NotAction"),
            s.resource
                .as_ref()
                .is_some_and(|r| r.negated)
                .then_some("NotResource"),
        ];
        if let Some(banned) = banned.into_iter().flatten().next() {
            return Err(format!("statement {n} uses {banned}"));
        }
        let allow = s.effect == Effect::Allow;
        let actions = &s.action.patterns;
        if actions.is_empty() {
            return Err(format!("statement {n} has no Action"));
        }
        if allow
            && let Some(a) = actions
                .iter()
                .find(|a| *a == "*" || a.eq_ignore_ascii_case("s3:*"))
        {
            return Err(format!("statement {n} allows every S3 action ({a})"));
        }
        if let Some(a) = actions
            .iter()
            .find(|a| *a != "*" && !a.to_ascii_lowercase().starts_with("s3:"))
        {
            return Err(format!("statement {n} names a non-S3 action {a}"));
        }
        if !allow {
            // A Deny only narrows the session: any shape of it is safe.
            continue;
        }
        for mutator in BUCKET_MUTATORS {
            if let Some(a) = actions
                .iter()
                .find(|a| wildcard(&a.to_ascii_lowercase(), &mutator.to_ascii_lowercase()))
            {
                return Err(format!("statement {n} allows {mutator} (through {a})"));
            }
        }
        let lists = actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), "s3:listbucket"));
        if lists && !has_prefix_condition(s) {
            return Err(format!(
                "statement {n} allows s3:ListBucket without an s3:prefix condition"
            ));
        }
        let resources = s.resource.as_ref().map(|r| r.patterns.as_slice());
        let Some(resources) = resources.filter(|r| !r.is_empty()) else {
            return Err(format!("statement {n} has no Resource"));
        };
        for r in resources {
            let resolved = substitute(r, &vars);
            confined(&resolved, &user.bucket, &roots)
                .map_err(|why| format!("statement {n}: resource {r} {why}"))?;
        }
    }
    Ok(())
}

fn has_prefix_condition(statement: &Statement) -> bool {
    statement
        .conditions
        .iter()
        .any(|c| c.key.eq_ignore_ascii_case("s3:prefix"))
}

/// Substitutes Transfer's variables only. IAM's escapes stay as written, so that `confined`
/// sees the `*` or `?` in `${*}` and `${?}` and treats them as wildcards: the cautious reading.
/// Unknown and unterminated variables never get here (`check_static` refuses them first).
fn substitute(resource: &str, vars: &SessionVariables) -> String {
    let mut out = String::with_capacity(resource.len());
    for piece in pieces(resource) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable(name) => match KnownVariable::from_name(name) {
                Some(var) if !var.is_escape() => out.push_str(vars.value(var)),
                _ => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
            },
            Piece::Unterminated(rest) => {
                out.push_str("${");
                out.push_str(rest);
            }
        }
    }
    out
}

/// Whether a resource (variables substituted) stays inside the user's bucket (bucket ARNs) or
/// one of the user's roots (object ARNs): its literal part, up to the first wildcard, must be
/// the bucket exactly or lie under a root.
fn confined(resource: &str, bucket: &str, roots: &[(String, bool)]) -> Result<(), &'static str> {
    // Only the aws partition: `simulate` builds its requests there, so a policy naming S3 in
    // another partition could not be proven anyway.
    let path = match Arn::parse(resource) {
        Ok(arn)
            if arn.partition() == "aws"
                && arn.service() == "s3"
                && arn.region().is_empty()
                && arn.account().is_empty() =>
        {
            arn.resource()
        }
        _ => return Err("is not an S3 ARN"),
    };
    let literal = path.split(['*', '?']).next().unwrap_or("");
    let wild = literal.len() < path.len();
    if !path.contains('/') {
        return if !wild && path == bucket {
            Ok(())
        } else {
            Err("is not the user's bucket")
        };
    }
    let inside = roots.iter().any(|(root, is_file)| {
        if *is_file {
            !wild && path == root
        } else {
            literal.starts_with(&format!("{root}/")) || (!wild && path == root)
        }
    });
    if inside {
        Ok(())
    } else {
        Err("reaches outside the user's home")
    }
}

/// The proof by simulation: evaluated with the user's variables, the policy allows reading,
/// writing and listing inside the home, and refuses them in a sibling home, at the bucket's
/// root and in another bucket.
pub fn simulate(doc: &str, user: &UserRecord) -> Result<(), String> {
    let home = variables_home(user);
    let vars = SessionVariables::for_home(&home, user.username.as_str());
    let policy =
        SessionPolicy::parse(doc, &vars).map_err(|e| format!("policy cannot be evaluated: {e}"))?;
    let bucket = vars.home_bucket.as_str();
    let folder = vars.home_folder.as_str();
    let allowed = |action: &str, resource: String, prefix: Option<String>| {
        let context: Vec<(&str, &str)> = prefix
            .as_deref()
            .map(|p| vec![("s3:prefix", p)])
            .unwrap_or_default();
        policy.evaluate(&Request {
            action,
            resource: &resource,
            context: &context,
        }) == Verdict::Allow
    };
    let object = |b: &str, key: &str| format!("arn:aws:s3:::{b}/{key}");
    let folder_prefix = |f: &str| {
        if f.is_empty() {
            String::new()
        } else {
            format!("{f}/")
        }
    };
    let inside = format!("{}ferry-probe.bin", folder_prefix(folder));
    for action in ["s3:GetObject", "s3:PutObject"] {
        if !allowed(action, object(bucket, &inside), None) {
            return Err(format!("simulation: {action} is refused inside the home"));
        }
    }
    if !allowed(
        "s3:ListBucket",
        format!("arn:aws:s3:::{bucket}"),
        Some(folder_prefix(folder)),
    ) {
        return Err("simulation: listing the home is refused".into());
    }
    // A sibling of the home: same parent, another name.
    let sibling = match folder.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/ferry-sibling-probe"),
        None => "ferry-sibling-probe".to_owned(),
    };
    // A sibling whose name starts with the home's (`alice2` next to `alice`): a condition such
    // as `"s3:prefix": "${transfer:HomeFolder}*"` lets the user reach it, which a sibling with an
    // unrelated name does not reveal.
    let namesake = format!("{folder}ferry-namesake");
    let mut outside = vec![
        (
            "a sibling home",
            bucket.to_owned(),
            format!("{sibling}/x.bin"),
            format!("{sibling}/"),
        ),
        (
            "another bucket",
            format!("{bucket}-ferry-probe-other"),
            inside.clone(),
            folder_prefix(folder),
        ),
    ];
    if !folder.is_empty() {
        outside.push((
            "a sibling home whose name starts with the home's",
            bucket.to_owned(),
            format!("{namesake}/x.bin"),
            format!("{namesake}/"),
        ));
        outside.push((
            "the bucket root",
            bucket.to_owned(),
            "x.bin".into(),
            String::new(),
        ));
    }
    for (place, b, key, prefix) in outside {
        for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
            if allowed(action, object(&b, &key), None) {
                return Err(format!("simulation: {action} is allowed in {place}"));
            }
        }
        if allowed("s3:ListBucket", format!("arn:aws:s3:::{b}"), Some(prefix)) {
            return Err(format!("simulation: listing {place} is allowed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::CANONICAL_SCOPE_DOWN;
    use serde_json::Value;

    fn user(extra: Value) -> UserRecord {
        let mut base = serde_json::json!({
            "username": "alice",
            "bucket": "bkt",
            "home": "partners/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/scope",
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        UserRecord::from_json(base).unwrap()
    }

    fn check(policy: &str, u: &UserRecord) -> Result<(), String> {
        check_user(
            u,
            &PolicyDocument::from_json(policy).unwrap(),
            &RecordRules::default(),
        )
    }

    fn stmt(s: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#)
    }

    const LIST: &str = r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}}"#;

    #[test]
    fn the_canonical_policy_passes_for_path_and_chroot_users() {
        check(CANONICAL_SCOPE_DOWN, &user(serde_json::json!({}))).unwrap();
        check(
            CANONICAL_SCOPE_DOWN,
            &user(serde_json::json!({"chroot": true})),
        )
        .unwrap();
    }

    #[test]
    fn a_listing_condition_that_reaches_a_namesake_sibling_is_refused() {
        let objects = r#"{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}"#;
        let loose = r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":"${transfer:HomeFolder}*"}}}"#;
        let err = check(
            &stmt(&format!("{loose},{objects}")),
            &user(serde_json::json!({})),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "simulation: listing a sibling home whose name starts with the home's is allowed"
        );
        // The same listing with the slash is fine.
        check(
            &stmt(&format!("{LIST},{objects}")),
            &user(serde_json::json!({})),
        )
        .unwrap();
    }

    #[test]
    fn each_static_rule_refuses_its_kind_of_policy() {
        let u = user(serde_json::json!({}));
        let objects = |action: &str, resource: &str| {
            format!(r#"{{"Effect":"Allow","Action":{action},"Resource":"{resource}"}}"#)
        };
        let home = "arn:aws:s3:::${transfer:HomeDirectory}/*";
        let cases = [
            (
                stmt(&format!("{LIST},{}", objects(r#""*""#, home))),
                "every S3 action",
            ),
            (
                stmt(&format!("{LIST},{}", objects(r#""s3:*""#, home))),
                "every S3 action",
            ),
            (
                stmt(&format!("{LIST},{}", objects(r#""s3:Put*""#, home))),
                "PutBucket",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#"["s3:GetObject","iam:PassRole"]"#, home)
                )),
                "non-S3",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","NotAction":"s3:DeleteObject","Resource":"{home}"}}"#
                )),
                "NotAction",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","Action":"s3:GetObject","NotResource":"{home}"}}"#
                )),
                "NotResource",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{home}"}}"#
                )),
                "Principal",
            ),
            (
                stmt(
                    r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}"}"#,
                ),
                "without an s3:prefix",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::bkt/*")
                )),
                "outside the user's home",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::bkt/partners/alice*")
                )),
                "outside the user's home",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::${aws:username}/*")
                )),
                "unknown variable",
            ),
        ];
        for (policy, why) in cases {
            let err = check(&policy, &u).unwrap_err();
            assert!(err.contains(why), "{policy}: {err}");
        }
    }

    #[test]
    fn literal_paths_inside_the_home_pass_and_the_simulation_catches_what_rules_cannot() {
        let u = user(serde_json::json!({}));
        let literal = stmt(&format!(
            r#"{LIST},{{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bkt/partners/alice/*"}}"#
        ));
        check(&literal, &u).unwrap();
        // Read-only: the home cannot be written, which the simulation reports.
        let read_only = stmt(&format!(
            r#"{LIST},{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${{transfer:HomeDirectory}}/*"}}"#
        ));
        let err = check(&read_only, &u).unwrap_err();
        assert!(
            err.contains("PutObject is refused inside the home"),
            "{err}"
        );
        // A list condition that also matches a sibling home.
        let loose = stmt(
            r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["*"]}}},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}"#,
        );
        let err = check(&loose, &u).unwrap_err();
        assert!(err.contains("listing"), "{err}");
    }

    #[test]
    fn role_arns_and_targets_are_held_to_the_configured_account_path_and_bucket() {
        let rules = RecordRules {
            role_account: Some("123456789012".into()),
            role_path: Some("/transfer/".into()),
        };
        let ok = user(serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/transfer/u"}));
        check_record(&ok, &rules).unwrap();
        for (role, why) in [
            ("arn:aws:iam::999999999999:role/transfer/u", "account"),
            ("arn:aws:iam::123456789012:role/admin", "path"),
        ] {
            let err =
                check_record(&user(serde_json::json!({"roleArn": role})), &rules).unwrap_err();
            assert!(err.contains(why), "{role}: {err}");
        }
        let outside = user(serde_json::json!({
            "homeDirectoryType": "LOGICAL",
            "homeDirectoryDetails": [{"Entry": "/", "Target": "/other-bucket/x"}],
        }));
        assert!(
            check_record(&outside, &RecordRules::default())
                .unwrap_err()
                .contains("outside")
        );
        assert!(Arn::iam_policy("arn:aws:iam::123456789012:policy/a/b-c").is_ok());
        for bad in [
            "arn:aws:iam::1234:policy/x",
            "arn:aws:s3:::x",
            "arn:aws:iam::123456789012:policy/",
            "nope",
        ] {
            assert!(Arn::iam_policy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_in_aws_cn_and_aws_us_gov_pass_the_record_check_like_their_policies() {
        // The role check used to accept only `arn:aws:iam::`, while policy ARNs in every
        // partition passed: a China or GovCloud user with a role was marked invalid.
        for partition in ["aws-cn", "aws-us-gov"] {
            let u = user(serde_json::json!({
                "iamPolicyArn": format!("arn:{partition}:iam::123456789012:policy/scope"),
                "roleArn": format!("arn:{partition}:iam::123456789012:role/transfer/u"),
            }));
            check_record(&u, &RecordRules::default()).unwrap();
            let rules = RecordRules {
                role_account: Some("123456789012".into()),
                role_path: Some("/transfer/".into()),
            };
            check_record(&u, &rules).unwrap();
            let mut elsewhere = u.clone();
            elsewhere.role_arn = Some(format!("arn:{partition}:iam::123456789012:role/admin"));
            assert!(
                check_record(&elsewhere, &rules)
                    .unwrap_err()
                    .contains("path")
            );
        }
    }

    #[test]
    fn a_record_built_around_the_parser_is_still_refused_with_the_field_at_fault() {
        let mut u = user(serde_json::json!({}));
        u.role_arn = Some("arn:aws:iam::123456789012:user/x".into());
        assert_eq!(
            check_record(&u, &RecordRules::default()).unwrap_err(),
            "roleArn is not an IAM role ARN: resource is not role/<name>"
        );
        u.role_arn = None;
        u.policy_arn = "arn:aws:iam::1234:policy/x".into();
        assert_eq!(
            check_record(&u, &RecordRules::default()).unwrap_err(),
            "iamPolicyArn is not an IAM policy ARN: account is not empty, 12 digits or aws"
        );
    }

    #[test]
    fn the_validator_reads_statements_as_the_evaluator_does() {
        let u = user(serde_json::json!({}));
        // A single object for Statement and a single string for Action and Resource.
        let single = r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}}"#;
        check_static(single, &u).unwrap();
        // What the evaluator cannot read is refused by the static rules too, numbered from 1.
        for (policy, why) in [
            (
                stmt(r#"{"Effect":"Allow","Action":["s3:GetObject",5],"Resource":"*"}"#),
                "statement 1: Action must be a string or a list of strings",
            ),
            (
                stmt(&format!(r#"{LIST},{{"Effect":"Allow","Resource":"*"}}"#)),
                "statement 2: exactly one of Action and NotAction is required",
            ),
            (
                stmt(
                    r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":"x"}}"#,
                ),
                "statement 1: a condition operator must map keys to values",
            ),
            (
                stmt(r#"{"Effect":"Allow","Action":"s3:GetObject"}"#),
                "statement 1 has no Resource",
            ),
            (
                stmt(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
                "statement 1 has no Action",
            ),
            (
                r#"{"Version":"2012-10-17"}"#.to_owned(),
                "policy has no Statement",
            ),
        ] {
            assert_eq!(check_static(&policy, &u).unwrap_err(), why, "{policy}");
        }
    }

    #[test]
    fn variables_are_judged_anywhere_in_the_document_by_the_shared_scanner() {
        let u = user(serde_json::json!({}));
        for (policy, why) in [
            (
                stmt(r#"{"Sid":"${aws:username}","Effect":"Deny","Action":"s3:*","Resource":"*"}"#),
                "unknown variable ${aws:username}",
            ),
            // The whole document is scanned, so the name runs to the next `}` of the JSON.
            (
                stmt(r#"{"Effect":"Deny","Action":"s3:*","Resource":"${transfer:HomeBucket"}"#),
                "unknown variable ${transfer:HomeBucket\"}",
            ),
            // Only a document cut short has no `}` after its `${`.
            (r#"{"Statement":"${"#.to_owned(), "unterminated ${"),
            (
                stmt(r#"{"Effect":"Deny","Action":"s3:*","Resource":"${}"}"#),
                "unknown variable ${}",
            ),
        ] {
            let err = check_static(&policy, &u).unwrap_err();
            assert!(err.contains(why), "{policy}: {err}");
        }
        // The escapes are known, and stay wildcards for the confinement rule.
        let escaped = stmt(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/partners/alice${*}"}"#,
        );
        assert!(
            check_static(&escaped, &u)
                .unwrap_err()
                .contains("outside the user's home")
        );
        let vars = SessionVariables::for_home("/bkt/partners/alice", "alice");
        assert_eq!(
            substitute("${transfer:HomeDirectory}/${*}/${transfer:UserName}", &vars),
            "bkt/partners/alice/${*}/alice"
        );
    }

    #[test]
    fn only_s3_arns_in_the_aws_partition_count_as_confined_resources() {
        let roots = [("bkt/home".to_owned(), false)];
        assert_eq!(confined("arn:aws:s3:::bkt/home/x", "bkt", &roots), Ok(()));
        assert_eq!(confined("arn:aws:s3:::bkt", "bkt", &roots), Ok(()));
        for bad in [
            "*",
            "arn:aws:s3:us-east-1::bkt/home/x",
            "arn:aws:s3::123456789012:bkt/home/x",
            "arn:aws:iam:::bkt/home/x",
            "arn:aws-cn:s3:::bkt/home/x",
            "arn:*:s3:::bkt/home/x",
            "arn:aws:s3:::",
        ] {
            assert_eq!(
                confined(bad, "bkt", &roots),
                Err("is not an S3 ARN"),
                "{bad}"
            );
        }
    }
}
