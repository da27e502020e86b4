//! The `ferry` command against DynamoDB Local and moto: user administration end to end, and
//! `ferry login` giving the auth handler's answer.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::process::{Command, Output};

use anyhow::Result;
use ferry_tests::Fixture;
use ferry_tests::fixture::SAMPLE_KEY;
use ferry_tests::run_with_stdin;
use ferry_tests::runtime_api::workspace_binary;
use serde_json::Value;

struct Ferry<'a> {
    f: &'a Fixture,
}

impl Ferry<'_> {
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(workspace_binary("ferry").unwrap());
        cmd.args(args)
            .env("USERS_TABLE", &self.f.table)
            .env("SALT_SECRET_ID", &self.f.secret_id);
        run_with_stdin(cmd, stdin).unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "ferry {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ferry login` with a password on stdin: (exit code, stderr).
    fn login(&self, name: &str, password: &str) -> (i32, String) {
        let out = self.run(
            &["login", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn add_args<'a>(f: &'a Fixture, name: &'a str) -> Vec<&'a str> {
    vec![
        "user",
        "add",
        name,
        "--bucket",
        "ferry-cli",
        "--home",
        name,
        "--policy-arn",
        &f.policy_arn,
    ]
}

#[tokio::test]
async fn a_user_added_with_a_password_can_log_in_and_only_with_it() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let mut args = add_args(&f, "Alice");
    args.push("--password-stdin");
    ferry.ok(&args, "s3cret pass\n");
    let out = ferry.run(&["login", "alice", "--password-stdin"], "s3cret pass\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        response["HomeDirectory"], "/ferry-cli/Alice",
        "home as given, username lowercased"
    );
    assert!(
        response["Policy"]
            .as_str()
            .unwrap()
            .contains("transfer:HomeFolder")
    );
    let (code, err) = ferry.login("alice", "wrong");
    assert_eq!(code, 1);
    assert!(err.contains("wrong_password"), "{err}");

    // Adding the same user again is refused unless --update.
    let again = ferry.run(&args, "other\n");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        ferry.login("alice", "s3cret pass").0,
        0,
        "the refused add changed nothing"
    );
    Ok(())
}

#[tokio::test]
async fn show_and_list_never_print_the_hash() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    for name in ["bob", "carol"] {
        let mut args = add_args(&f, name);
        args.extend(["--password-stdin", "--chroot", "--allow-ip", "10.0.0.0/8"]);
        ferry.ok(&args, "pw-123\n");
    }
    let shown = ferry.ok(&["user", "show", "bob"], "");
    assert!(
        shown.contains("password") && shown.contains("set"),
        "{shown}"
    );
    assert!(shown.contains("10.0.0.0/8"));
    let listed = ferry.ok(&["user", "list"], "");
    assert!(
        listed.contains("bob") && listed.contains("carol") && listed.contains("(chroot)"),
        "{listed}"
    );
    let json: Value = serde_json::from_str(&ferry.ok(&["user", "list", "--json"], ""))?;
    assert_eq!(json.as_array().unwrap().len(), 2);
    for text in [
        shown,
        listed,
        json.to_string(),
        ferry.ok(&["user", "show", "carol", "--json"], ""),
    ] {
        assert!(
            !text.contains("argon2") && !text.contains("passwordHash"),
            "{text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn disable_enable_passwd_and_rm_take_effect_at_the_next_login() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let mut args = add_args(&f, "dave");
    args.push("--password-stdin");
    ferry.ok(&args, "first\n");
    ferry.ok(&["user", "disable", "dave"], "");
    let (code, err) = ferry.login("dave", "first");
    assert_eq!(code, 1);
    assert!(err.contains("disabled"), "{err}");
    ferry.ok(&["user", "enable", "dave"], "");
    assert_eq!(ferry.login("dave", "first").0, 0);
    ferry.ok(&["user", "passwd", "dave", "--password-stdin"], "second\n");
    assert_eq!(ferry.login("dave", "first").0, 1);
    assert_eq!(ferry.login("dave", "second").0, 0);
    ferry.ok(&["user", "rm", "dave"], "");
    let (code, err) = ferry.login("dave", "second");
    assert_eq!(code, 1);
    assert!(err.contains("unknown_user"), "{err}");
    assert_eq!(
        ferry.run(&["user", "show", "dave"], "").status.code(),
        Some(2)
    );
    Ok(())
}

#[tokio::test]
async fn keys_are_added_listed_used_for_login_and_removed() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let dir = std::env::temp_dir().join(ferry_tests::fixture::unique("keys"));
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("id.pub");
    std::fs::write(&key_file, format!("{SAMPLE_KEY}\n"))?;
    let key_path = key_file.to_str().unwrap();
    let mut args = add_args(&f, "erin");
    args.push("--no-password");
    ferry.ok(&args, "");
    assert_eq!(
        ferry
            .run(&["login", "erin", "--key", key_path], "")
            .status
            .code(),
        Some(1),
        "no key yet"
    );
    ferry.ok(&["user", "key", "add", "erin", key_path], "");
    ferry.ok(&["user", "key", "add", "erin", key_path], ""); // a duplicate is skipped
    let listed = ferry.ok(&["user", "key", "list", "erin"], "");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"),
        "{listed}"
    );
    let out = ferry.run(&["login", "erin", "--key", key_path], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PublicKeys"));
    // A key-only user has no password to guess.
    assert_eq!(ferry.login("erin", "anything").0, 1);
    ferry.ok(&["user", "key", "rm", "erin", "1"], "");
    assert_eq!(
        ferry
            .run(&["login", "erin", "--key", key_path], "")
            .status
            .code(),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn bad_input_and_missing_resources_get_one_clear_line_and_a_non_zero_exit() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let mut bad_ip = add_args(&f, "frank");
    bad_ip.extend(["--password-stdin", "--allow-ip", "10.0.0.0/99"]);
    let out = ferry.run(&bad_ip, "pw\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowedIps"));
    let missing = ferry.run(
        &[
            "user",
            "add",
            "gina",
            "--bucket",
            "b-1b",
            "--home",
            "h",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--policy-arn"));
    let out = ferry.run(&["user", "show", "x"], "");
    assert_eq!(out.status.code(), Some(2), "bad username");

    let out = Command::new(workspace_binary("ferry")?)
        .args(["user", "list"])
        .env("USERS_TABLE", "no-such-table-anywhere")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("non-existent table") || err.contains("ResourceNotFound"),
        "{err}"
    );

    let out = Command::new(workspace_binary("ferry")?)
        .args(["user", "list"])
        .env_remove("USERS_TABLE")
        .output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("USERS_TABLE"));
    Ok(())
}

#[tokio::test]
async fn import_writes_good_rows_reports_bad_ones_by_line_and_is_safe_to_rerun() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let dir = std::env::temp_dir().join(ferry_tests::fixture::unique("import"));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "username,password,home,chroot,public_keys,allowed_ips,protocols\n\
             imp-one,pass-one,one,,,,\n\
             imp-two,\"pa,ss \"\"two\"\"\",two,true,,10.0.0.0/8;192.0.2.0/24,SFTP;FTPS\n\
             imp-bad,pass,bad,,,10.0.0.0/99,\n\
             imp-keys,,keys,,{SAMPLE_KEY},,\n\
             imp-nothing,,nothing,,,,\n\
             x,pass,x,,,,\n\
             imp-chroot,pass,c,maybe,,,\n"
        ),
    )?;
    let path = csv.to_str().unwrap();
    let args = [
        "user",
        "import",
        path,
        "--bucket",
        "ferry-import",
        "--policy-arn",
        &f.policy_arn,
    ];
    let out = ferry.run(&args, "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (line, why) in [
        (4, "allowedIps"),
        (6, "password or a public key"),
        (7, "username"),
        (8, "chroot"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("line {line}:")) && l.contains(why)),
            "line {line} ({why}) in: {err}"
        );
    }
    assert!(
        err.contains("3 created, 0 updated, 0 skipped (already there), 4 failed"),
        "{err}"
    );
    assert_eq!(ferry.login("imp-one", "pass-one").0, 0);
    // imp-two may only log in from its allowed networks.
    assert_eq!(ferry.login("imp-two", "pa,ss \"two\"").0, 1);
    let from_allowed = ferry.run(
        &[
            "login",
            "imp-two",
            "--password-stdin",
            "--source-ip",
            "10.1.2.3",
        ],
        "pa,ss \"two\"\n",
    );
    assert_eq!(
        from_allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from_allowed.stderr)
    );
    let two: Value = serde_json::from_str(&ferry.ok(&["user", "show", "imp-two", "--json"], ""))?;
    assert_eq!(two["chroot"], true);
    assert_eq!(
        two["allowedIps"],
        serde_json::json!(["10.0.0.0/8", "192.0.2.0/24"])
    );
    assert_eq!(two["protocols"], serde_json::json!(["SFTP", "FTPS"]));
    let key_file = dir.join("k.pub");
    std::fs::write(&key_file, SAMPLE_KEY)?;
    assert_eq!(
        ferry
            .run(
                &["login", "imp-keys", "--key", key_file.to_str().unwrap()],
                ""
            )
            .status
            .code(),
        Some(0)
    );

    // Running it again adds nothing and changes nothing.
    let again = ferry.run(&args, "");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("0 created, 0 updated, 3 skipped (already there), 4 failed"),
        "{err}"
    );
    assert_eq!(ferry.login("imp-one", "pass-one").0, 0);

    // An unknown column is refused before any row is touched.
    std::fs::write(&csv, "username,pasword\nimp-typo,x\n")?;
    let out = ferry.run(&args, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column \"pasword\""));
    assert_eq!(
        ferry.run(&["user", "show", "imp-typo"], "").status.code(),
        Some(2)
    );
    Ok(())
}

/// `ferry --local DIR …` with `stdin`: (exit code, stdout, stderr).
fn local(dir: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut cmd = Command::new(workspace_binary("ferry").unwrap());
    cmd.arg("--local")
        .arg(dir)
        .args(args)
        .env_remove("USERS_TABLE")
        .env_remove("SALT_SECRET_ID");
    let out = run_with_stdin(cmd, stdin).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_local_data_folder_works_without_any_service_and_defaults_bucket_and_policy() {
    let dir = std::env::temp_dir().join(ferry_tests::fixture::unique("local-data"));
    let (code, _, err) = local(
        &dir,
        &[
            "user",
            "add",
            "Lena",
            "--home",
            "partners/lena",
            "--password-stdin",
        ],
        "local pw\n",
    );
    assert_eq!(code, 0, "{err}");
    for file in ["ferry.db", "keyring.json", "policies/ferry-scope-down.json"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    let (code, out, err) = local(&dir, &["login", "lena", "--password-stdin"], "local pw\n");
    assert_eq!(code, 0, "{err}");
    let response: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(response["HomeDirectory"], "/ferry-local/partners/lena");
    assert_eq!(
        response["Policy"],
        ferry_core::domain::policy::CANONICAL_SCOPE_DOWN
    );
    assert_eq!(
        local(&dir, &["login", "lena", "--password-stdin"], "nope\n").0,
        1
    );

    let (_, out, _) = local(&dir, &["user", "list"], "");
    assert!(
        out.contains("lena") && out.contains("/ferry-local/partners/lena"),
        "{out}"
    );
    assert!(
        !std::fs::read_to_string(dir.join("keyring.json"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(local(&dir, &["user", "disable", "lena"], "").0, 0);
    let (code, _, err) = local(&dir, &["login", "lena", "--password-stdin"], "local pw\n");
    assert_eq!(code, 1);
    assert!(err.contains("disabled"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn salt_status_counts_users_per_version_and_never_prints_a_salt() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    f.put_user("old", Some("old-pw"), serde_json::json!({}))
        .await?;
    f.put_user(
        "older",
        None,
        serde_json::json!({"passwordHash": f.hash("older-pw", "1").await?, "saltVersion": "1"}),
    )
    .await?;
    let mut args = add_args(&f, "new");
    args.push("--password-stdin");
    ferry.ok(&args, "new-pw\n");
    let out = ferry.ok(&["salt", "status"], "");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [vec!["1", "1"], vec!["2", "*", "2"]], "{out}");
    for salt in ["old-salt-one", "current-salt-two"] {
        assert!(!out.contains(salt));
    }
    // On AWS, rotate is one RotateSecret call (moto cannot run the rotation Lambda it would
    // start): a secret that is not there is one clear line and a failure.
    let failed = ferry.run(&["--salt-secret", "no-such-secret", "salt", "rotate"], "");
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("RotateSecret failed") && err.lines().count() == 1,
        "{err}"
    );
    Ok(())
}

#[test]
fn salt_rotate_local_runs_the_four_steps_and_users_keep_logging_in() {
    let dir = std::env::temp_dir().join(ferry_tests::fixture::unique("local-rotate"));
    let add = |name: &str| {
        let (code, _, err) = local(
            &dir,
            &["user", "add", name, "--home", name, "--password-stdin"],
            &format!("{name}-pw\n"),
        );
        assert_eq!(code, 0, "{err}");
    };
    add("ria");
    add("sol");
    let (code, out, err) = local(&dir, &["salt", "rotate"], "");
    assert_eq!(code, 0, "{err}");
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        assert!(out.contains(step), "{out}");
    }
    assert!(out.contains("version 2 is current"), "{out}");
    // ria logs in (and moves to version 2); sol stays on 1 through two more rotations.
    let (code, _, err) = local(&dir, &["login", "ria", "--password-stdin"], "ria-pw\n");
    assert_eq!(code, 0, "{err}");
    for _ in 0..2 {
        assert_eq!(local(&dir, &["salt", "rotate"], "").0, 0);
    }
    let (_, status, _) = local(&dir, &["salt", "status"], "");
    let rows: Vec<Vec<&str>> = status
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["1", "1"],
            vec!["2", "1"],
            vec!["3", "0"],
            vec!["4", "*", "0"]
        ],
        "{status}"
    );
    let (code, _, err) = local(&dir, &["login", "sol", "--password-stdin"], "sol-pw\n");
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn user_validate_reports_each_verdict_and_write_backfills_the_status() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let wide = f
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .await?;
    f.put_user("good", Some("pw"), serde_json::json!({}))
        .await?;
    f.put_user(
        "wide",
        Some("pw"),
        serde_json::json!({"iamPolicyArn": wide}),
    )
    .await?;
    let out = ferry.ok(&["user", "validate", "good"], "");
    assert_eq!(out.trim(), "good: valid");
    let checked = ferry.run(&["user", "validate", "--all", "--write"], "");
    assert_eq!(checked.status.code(), Some(1));
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(out.contains("good: valid"), "{out}");
    assert!(
        out.contains("wide: INVALID: statement 1 allows every S3 action"),
        "{out}"
    );
    let shown: Value = serde_json::from_str(&ferry.ok(&["user", "show", "wide", "--json"], ""))?;
    assert_eq!(shown["status"], "invalid", "{shown}");
    let shown: Value = serde_json::from_str(&ferry.ok(&["user", "show", "good", "--json"], ""))?;
    assert_eq!(shown["status"], "active", "{shown}");
    Ok(())
}

#[tokio::test]
async fn user_validate_write_records_the_verdict_of_a_user_whose_fields_are_string_sets()
-> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    f.put_user("setsy", Some("pw"), serde_json::json!({}))
        .await?;
    // Written by another tool as a string set, which reads as the same JSON list as an L would.
    f.ddb
        .update_item()
        .table_name(&f.table)
        .key("username", AttributeValue::S("setsy".into()))
        .update_expression("SET allowedIps = :ips")
        .expression_attribute_values(
            ":ips",
            AttributeValue::Ss(vec!["203.0.113.0/24".into(), "2001:db8::/32".into()]),
        )
        .send()
        .await?;
    let checked = ferry.run(&["user", "validate", "setsy", "--write"], "");
    let (out, err) = (
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
    );
    assert_eq!(checked.status.code(), Some(0), "{out}{err}");
    assert_eq!(out.trim(), "setsy: valid");
    assert!(!err.contains("not written"), "{err}");
    let item = f.item("setsy").await?.unwrap();
    assert_eq!(item["status"], "active", "{item}");
    assert_eq!(item["statusReason"], "ok", "{item}");
    Ok(())
}

#[tokio::test]
async fn user_list_shows_last_logins_and_inactive_lists_users_without_a_sign_of_life_for_that_long()
-> Result<()> {
    const DAY: i64 = 86_400;
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    f.put_user(
        "busy",
        Some("pw"),
        serde_json::json!({"lastLoginAt": now - 10 * DAY}),
    )
    .await?;
    f.put_user(
        "idle",
        Some("pw"),
        serde_json::json!({"lastLoginAt": now - 100 * DAY}),
    )
    .await?;
    // Never logged in: judged from when the password was set.
    f.put_user(
        "unused",
        Some("pw"),
        serde_json::json!({"passwordChangedAt": now - 120 * DAY}),
    )
    .await?;
    // A record from before these dates existed: not judged.
    f.put_user("undated", Some("pw"), serde_json::json!({}))
        .await?;

    let listed = ferry.ok(&["user", "list"], "");
    let row = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        listed.lines().next().unwrap().contains("LAST LOGIN"),
        "{listed}"
    );
    assert!(row("undated").contains(" never "), "{listed}");
    assert!(row("unused").contains(" never "), "{listed}");
    let idle_date = ferry_core::domain::dates::format_date(now - 100 * DAY);
    assert!(row("idle").contains(&idle_date), "{listed}");

    let out = ferry.run(&["user", "list", "--inactive", "90d"], "");
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let names: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["idle", "unused"], "{stdout}");
    assert!(stderr.contains("2 user(s)"), "{stderr}");
    assert!(stderr.contains("1 user(s) not judged"), "{stderr}");

    let json: Value =
        serde_json::from_str(&ferry.ok(&["user", "list", "--inactive", "9d", "--json"], ""))?;
    assert_eq!(json.as_array().unwrap().len(), 3, "{json}");
    let json: Value =
        serde_json::from_str(&ferry.ok(&["user", "list", "--inactive", "2400h", "--json"], ""))?;
    assert_eq!(json.as_array().unwrap().len(), 2, "100 days: {json}");

    let bad = ferry.run(&["user", "list", "--inactive", "90"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an age"));

    // `ferry login` judges as the auth function does, with its environment's default limits.
    let login = |name: &str, limit: &str| {
        let mut cmd = Command::new(workspace_binary("ferry").unwrap());
        cmd.args(["login", name, "--password-stdin"])
            .env("USERS_TABLE", &f.table)
            .env("SALT_SECRET_ID", &f.secret_id)
            .env("DISABLE_AFTER_INACTIVE_DAYS", limit);
        let out = run_with_stdin(cmd, "pw\n").unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = login("idle", "90");
    assert_eq!(code, Some(1));
    assert!(err.contains("denied: inactive"), "{err}");
    assert_eq!(login("busy", "90").0, Some(0));
    assert_eq!(login("idle", "0").0, Some(0), "0: no limit");
    // That login was recorded: idle is no longer inactive.
    let json: Value =
        serde_json::from_str(&ferry.ok(&["user", "list", "--inactive", "90d", "--json"], ""))?;
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["unused"], "{json}");
    Ok(())
}

#[tokio::test]
async fn user_add_sets_and_removes_a_users_own_lifecycle_limits() -> Result<()> {
    let f = Fixture::new().await?;
    let ferry = Ferry { f: &f };
    let mut args = add_args(&f, "lim");
    args.extend([
        "--password-stdin",
        "--disable-after-inactive-days",
        "30",
        "--password-max-age-days",
        "0",
    ]);
    ferry.ok(&args, "lim-pass\n");
    let shown: Value = serde_json::from_str(&ferry.ok(&["user", "show", "lim", "--json"], ""))?;
    assert_eq!(shown["disableAfterInactiveDays"], 30, "{shown}");
    assert_eq!(shown["passwordMaxAgeDays"], 0, "{shown}");
    assert!(shown["passwordChangedAt"].is_i64(), "{shown}");
    assert!(shown["enabledAt"].is_i64(), "{shown}");
    ferry.ok(
        &[
            "user",
            "add",
            "lim",
            "--update",
            "--disable-after-inactive-days",
            "default",
        ],
        "",
    );
    let shown: Value = serde_json::from_str(&ferry.ok(&["user", "show", "lim", "--json"], ""))?;
    assert!(shown.get("disableAfterInactiveDays").is_none(), "{shown}");
    assert_eq!(shown["passwordMaxAgeDays"], 0, "{shown}");
    let bad = ferry.run(
        &[
            "user",
            "add",
            "lim",
            "--update",
            "--password-max-age-days",
            "soon",
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a whole number of days or `default`")
    );
    Ok(())
}
