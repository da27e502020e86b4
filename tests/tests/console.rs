//! `ferry console` as an operator uses it: the console `ferry up` serves, driven in Debian's
//! headless Chromium (tests/browser/console.mjs over playwright-core), with OpenSSH's `sftp`
//! proving that what the console changed is what the SFTP server enforces. On both stores (the
//! data folder, and `--aws` on DynamoDB Local and moto). Also: a change without the session or
//! without the CSRF token is refused (plain HTTP), and the users page's server time at 100,000
//! users (printed, not asserted: wall-clock figures vary with the machine).
//!
//! Fails, never skips, when chromium or playwright-core is missing: `scripts/test.sh` installs
//! both (scripts/lib/browser.sh).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use ferry_tests::harness::{Store, Up};
use ferry_tests::openssh::Login;
use serde_json::{Value, json};

fn start(store: Store) -> Up {
    Up::start(store)
}

/// The folder of the browser driver.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The driver: one JSON command a line in, one JSON answer a line out.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start(console_url: &str) -> Browser {
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "/usr/bin/chromium is missing: scripts/test.sh installs Debian's chromium (scripts/lib/browser.sh)"
        );
        assert!(
            browser_dir().join("node_modules/playwright-core").is_dir(),
            "playwright-core is missing: scripts/test.sh runs npm ci in tests/browser"
        );
        let mut child = Command::new("node")
            .arg("console.mjs")
            .current_dir(browser_dir())
            .env("CONSOLE_URL", console_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the browser driver");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Browser { child, stdin, out }
    }

    /// Runs one command; its answer must be `ok`.
    fn run(&mut self, command: Value) -> Value {
        let answer = self.try_run(command.clone());
        assert_eq!(answer["ok"], true, "{command}: {answer}");
        answer
    }

    fn try_run(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        let n = self.out.read_line(&mut line).unwrap();
        assert!(n > 0, "the browser driver stopped (see its output above)");
        serde_json::from_str(&line).unwrap()
    }
}

/// OpenSSH's `sftp -b` with `pwd` as `user`; whether it logged in, and what it printed.
fn sftp(up: &Up, user: &str, login: Login<'_>) -> (bool, String) {
    up.sftp(user, login, "pwd\n")
}

/// The console's address and sign-in token, as `ferry up` printed them.
fn console(up: &Up) -> (String, String) {
    up.console
        .clone()
        .expect("ferry up printed no console address and token")
}

/// What a new user needs beyond a name on this store (AWS has no default bucket or policy).
fn placement(up: &Up) -> (Value, Value) {
    match &up.aws {
        None => (Value::Null, Value::Null),
        Some(aws) => (json!(up.bucket), json!(aws.fixture.policy_arn)),
    }
}

fn an_operator_adds_edits_disables_and_keys_a_user_in_the_browser_and_sftp_obeys(up: Up) {
    let (url, token) = console(&up);
    let mut browser = Browser::start(&url);
    browser.run(json!({"cmd": "signin", "name": "Test Operator", "token": token}));
    let (bucket, policy_arn) = placement(&up);

    // A user with a generated password, shown once; OpenSSH logs in with it.
    let added = browser.run(
        json!({"cmd": "add_user", "name": "webuser", "home": "webuser",
        "bucket": bucket, "policy_arn": policy_arn}),
    );
    let password = added["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 16, "{added}");
    let (ok, out) = sftp(&up, "webuser", Login::Password(&password));
    assert!(ok, "the password the console generated logs in: {out}");
    browser
        .run(json!({"cmd": "logins_has", "user": "webuser", "outcome": "allow", "reason": "ok"}));
    let found = browser.run(json!({"cmd": "search", "prefix": "web"}));
    assert_eq!(found["names"], json!(["webuser"]));

    // Disabled in the console: the next login is refused, and the console says why.
    browser.run(json!({"cmd": "disable", "user": "webuser"}));
    let (ok, out) = sftp(&up, "webuser", Login::Password(&password));
    assert!(!ok, "a disabled user is refused: {out}");
    browser.run(
        json!({"cmd": "logins_has", "user": "webuser", "outcome": "deny", "reason": "disabled"}),
    );
    let page = browser.run(json!({"cmd": "html", "path": "/users/webuser"}));
    assert!(
        page["html"]
            .as_str()
            .unwrap()
            .contains("<code>disabled</code>"),
        "the user's page lists the refusal too: {page}"
    );

    // Enabled again with a key pasted in: the key logs in, and its fingerprint is ssh-keygen's.
    browser.run(json!({"cmd": "enable", "user": "webuser"}));
    let key = up.work.join("id_console");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "console-test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let keyed = browser.run(json!({"cmd": "add_key", "user": "webuser", "key": public.trim()}));
    let listed = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(keyed["fingerprints"], json!([expected]), "{keyed}");
    let (ok, out) = sftp(&up, "webuser", Login::Key(&key));
    assert!(ok, "the key added in the console logs in: {out}");

    // Edited to allow one other network only: refused from here, with its reason; the list
    // emptied again (any source): let in. Each save shows the validator's verdict.
    let sources = "Allowed sources (addresses or CIDRs)";
    let saved = browser
        .run(json!({"cmd": "edit", "user": "webuser", "label": sources, "value": "192.0.2.0/24"}));
    assert_eq!(
        saved["flashes"],
        json!(["Saved.", "Validator: the record passes every check."]),
        "{saved}"
    );
    let (ok, out) = sftp(&up, "webuser", Login::Key(&key));
    assert!(!ok, "a source outside the allowed list is refused: {out}");
    browser.run(json!({"cmd": "logins_has", "user": "webuser", "outcome": "deny", "reason": "ip_not_allowed"}));
    browser.run(json!({"cmd": "edit", "user": "webuser", "label": sources, "value": ""}));
    let (ok, out) = sftp(&up, "webuser", Login::Key(&key));
    assert!(ok, "an emptied list lets every source in again: {out}");

    // Two uploads: one the processor passes, one it quarantines (an empty file); both listed.
    let report = up.work.join("report.csv");
    std::fs::write(&report, "id,amount\n1,100\n").unwrap();
    let empty = up.work.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let (ok, out) = up.sftp(
        "webuser",
        Login::Key(&key),
        &format!(
            "put {} report.csv\nput {} empty.txt\n",
            report.display(),
            empty.display()
        ),
    );
    assert!(ok, "{out}");
    browser.run(json!({"cmd": "uploads_has", "key": "webuser/report.csv", "verdict": "clean"}));
    let quarantined = browser
        .run(json!({"cmd": "uploads_has", "key": "webuser/empty.txt", "verdict": "quarantined"}));
    assert!(
        quarantined["row"].as_str().unwrap().contains("empty"),
        "{quarantined}"
    );

    // The record is shown without its hash, and the generated password is not shown again.
    let page = browser.run(json!({"cmd": "html", "path": "/users/webuser"}));
    let html = page["html"].as_str().unwrap();
    assert!(
        !html.contains("argon2") && !html.contains(&password),
        "{html}"
    );

    // The main pages (from the data folder's run only: one set). Into target/ on every run, so a
    // test run leaves the tree as it was; `FERRY_CONSOLE_SCREENSHOTS=docs/console` refreshes the
    // README's pictures.
    if up.aws.is_none() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = std::env::var_os("FERRY_CONSOLE_SCREENSHOTS")
            .map_or_else(|| root.join("target/console-screenshots"), |d| root.join(d));
        std::fs::create_dir_all(&docs).unwrap();
        for (path, name) in [
            ("/users", "users"),
            ("/users/webuser", "user"),
            ("/logins", "logins"),
            ("/uploads", "uploads"),
            ("/salt", "salt"),
        ] {
            let file = docs.join(format!("{name}.png"));
            browser.run(json!({"cmd": "screenshot", "path": path, "file": file}));
        }
    }
    for path in [
        "/users",
        "/users/new",
        "/logins",
        "/uploads",
        "/salt",
        "/users/webuser",
    ] {
        let page = browser.run(json!({"cmd": "goto", "path": path}));
        assert_eq!(page["status"], 200, "{path}: {page}");
    }
    let errors = browser.run(json!({"cmd": "errors"}));
    assert_eq!(
        errors["errors"],
        json!([]),
        "no page request failed: {errors}"
    );
}

fn an_operator_resets_a_password_deletes_a_user_rotates_the_salt_and_lifts_a_ban(up: Up) {
    let (url, token) = console(&up);
    let mut browser = Browser::start(&url);
    browser.run(json!({"cmd": "signin", "name": "Test Operator", "token": token}));
    let (bucket, policy_arn) = placement(&up);
    let added = browser.run(
        json!({"cmd": "add_user", "name": "resetme", "home": "resetme",
        "bucket": bucket, "policy_arn": policy_arn}),
    );
    let first = added["password"].as_str().unwrap().to_owned();

    // A reset shows a new password once; the old one stops working, the new one logs in.
    let reset =
        browser.run(json!({"cmd": "click", "path": "/users/resetme", "name": "Reset password"}));
    let second = reset["password"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(
        !sftp(&up, "resetme", Login::Password(&first)).0,
        "the old password is refused"
    );
    let (ok, out) = sftp(&up, "resetme", Login::Password(&second));
    assert!(ok, "the reset password logs in: {out}");

    // Delete asks first; confirmed, the user is gone and cannot log in.
    let confirm = browser
        .run(json!({"cmd": "click", "path": "/users/resetme", "name": "Delete…", "role": "link"}));
    assert!(
        confirm["url"]
            .as_str()
            .unwrap()
            .ends_with("/users/resetme/delete"),
        "{confirm}"
    );
    let deleted = browser
        .run(json!({"cmd": "click", "path": "/users/resetme/delete", "name": "Delete resetme"}));
    assert!(
        deleted["main"]
            .as_str()
            .unwrap()
            .contains("User resetme deleted."),
        "{deleted}"
    );
    assert!(
        !sftp(&up, "resetme", Login::Password(&second)).0,
        "a deleted user is refused"
    );
    let found = browser.run(json!({"cmd": "search", "prefix": "resetme"}));
    assert_eq!(found["names"], json!([]));

    // The data folder's own: a rotation run in place, and a ban lifted. (On AWS a rotation is
    // RotateSecret, which needs the rotation function; bans from 127.0.0.1 are never made.)
    if up.aws.is_some() {
        return;
    }
    let rotated = browser.run(json!({"cmd": "click", "path": "/salt", "name": "Start a rotation"}));
    assert!(
        rotated["flashes"][0]
            .as_str()
            .unwrap()
            .starts_with("Salt rotated: version"),
        "{rotated}"
    );
    let db = rusqlite::Connection::open(up.data.join("ferry.db")).unwrap();
    let far = 4_000_000_000i64;
    db.execute(
        "INSERT INTO defender (key, window_start, score, until, strikes, expires_at) \
         VALUES ('source#198.51.100.7', 0, 50, ?1, 1, ?1)",
        [far],
    )
    .unwrap();
    let lifted = browser.run(json!({"cmd": "click", "path": "/logins", "name": "Unban source"}));
    assert_eq!(lifted["flashes"], json!(["1 lock(s) lifted."]), "{lifted}");
    let left: i64 = db
        .query_row(
            "SELECT count(*) FROM defender WHERE key = 'source#198.51.100.7'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the ban is gone from the store");
    let audit = std::fs::read_to_string(up.data.join("audit.jsonl")).unwrap();
    for action in [
        "user.password",
        "user.delete",
        "salt.rotate",
        "defender.lift",
    ] {
        assert!(
            audit.lines().any(
                |l| l.contains(&format!("\"{action}\"")) && l.contains("Test Operator (token)")
            ),
            "{action} is an audit event: {audit}"
        );
    }
    let errors = browser.run(json!({"cmd": "errors"}));
    assert_eq!(
        errors["errors"],
        json!([]),
        "no page request failed: {errors}"
    );
}

/// One HTTP/1.1 request to the console; (status, headers, body).
fn http(
    url: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: ferry_console={c}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// The status of `GET /signin` sent with another `Host` header.
fn status_with_host(url: &str, host: &str) -> u16 {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "GET /signin HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `token` with its first character changed, so it is certainly wrong (writing `0` over it was
/// the same token one time in sixteen).
fn wrong_token(token: &str) -> String {
    let first = if token.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &token[1..])
}

/// Signs in over plain HTTP; the session id and the page's CSRF token.
fn sign_in(url: &str, token: &str) -> (String, String) {
    let (status, head, _) = http(
        url,
        "POST",
        "/signin",
        None,
        &format!("name=probe&token={token}"),
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ferry_console="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly; SameSite=Strict; Path=/"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let (_, head, page) = http(url, "GET", "/users", Some(&session), "");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (session, csrf)
}

fn a_change_without_the_session_or_the_csrf_token_is_refused(up: Up) {
    let (url, token) = console(&up);
    up.add_user("victim", "victim-password-1", &[]);
    let (status, _, _) = http(
        &url,
        "POST",
        "/signin",
        None,
        "name=probe&token=not-the-token",
    );
    assert_eq!(status, 401, "a wrong token opens no session");
    assert_eq!(
        status_with_host(&url, "attacker.example:80"),
        421,
        "a page whose name was re-pointed at 127.0.0.1 is refused"
    );
    let (session, csrf) = sign_in(&url, &token);
    let disable = "to=disable";
    let (status, _, _) = http(
        &url,
        "POST",
        "/users/victim/status",
        None,
        &format!("{disable}&csrf={csrf}"),
    );
    assert_eq!(status, 401, "no session, no change");
    let (status, _, _) = http(
        &url,
        "POST",
        "/users/victim/status",
        Some(&session),
        disable,
    );
    assert_eq!(status, 403, "no CSRF token, no change");
    let (status, _, _) = http(
        &url,
        "POST",
        "/users/victim/status",
        Some(&session),
        &format!("{disable}&csrf={}", wrong_token(&csrf)),
    );
    assert_eq!(status, 403, "a wrong CSRF token, no change");
    let (ok, out) = sftp(&up, "victim", Login::Password("victim-password-1"));
    assert!(ok, "the refused requests changed nothing: {out}");
    // The same request with both goes through.
    let (status, _, page) = http(
        &url,
        "POST",
        "/users/victim/status",
        Some(&session),
        &format!("{disable}&csrf={csrf}"),
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("Disabled: every login is refused from now on."),
        "{page}"
    );
    let (ok, _) = sftp(&up, "victim", Login::Password("victim-password-1"));
    assert!(!ok, "the accepted request disabled the user");
    // A name that cannot be a username is the "no such user" page on every user route, and
    // changes nothing.
    let (status, _, page) = http(&url, "GET", "/users/a%2A(b", Some(&session), "");
    assert_eq!(status, 404);
    assert!(page.contains("That is not a username."), "{page}");
    let (status, _, _) = http(
        &url,
        "POST",
        "/users/x/status",
        Some(&session),
        &format!("to=enable&csrf={csrf}"),
    );
    assert_eq!(status, 404, "a two-letter name is no username");
    // The change is an audit event naming the operator.
    let audit = std::fs::read_to_string(up.data.join("audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"ferry admin\"")
            && l.contains("\"user.disable\"")
            && l.contains("probe (token)")
            && l.contains("\"victim\"")),
        "{audit}"
    );
}

ferry_tests::on_both_stores!(
    an_operator_adds_edits_disables_and_keys_a_user_in_the_browser_and_sftp_obeys,
    a_change_without_the_session_or_the_csrf_token_is_refused,
    an_operator_resets_a_password_deletes_a_user_rotates_the_salt_and_lifts_a_ban,
);

/// `ferry console` alone, on a data folder `ferry up` made: it says where it listens and its
/// token, and serves the same users.
#[test]
fn ferry_console_alone_serves_a_data_folder() {
    let up = Up::start(Store::Local);
    let mut child = Command::new(ferry_tests::runtime_api::workspace_binary("ferry").unwrap())
        .arg("--local")
        .arg(&up.data)
        .args(["console", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let said = lines.next().unwrap().unwrap();
    let rest = said
        .strip_prefix("ferry console: http://")
        .unwrap_or_else(|| panic!("{said}"));
    let mut words = rest.split_whitespace();
    let url = format!("http://{}", words.next().unwrap().trim_end_matches('/'));
    let token = words.nth(2).unwrap().to_owned();
    std::thread::spawn(move || for _ in lines {});
    let (session, _) = sign_in(&url, &token);
    let (status, _, page) = http(&url, "GET", "/users?q=demo", Some(&session), "");
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/users/demo\""), "{page}");
    let _ = child.kill();
    let _ = child.wait();
}

/// The users page's search on DynamoDB: pages of at most `limit`, every name with the prefix
/// once across them, no other name.
#[test]
fn a_dynamodb_search_pages_through_the_names_with_its_prefix_only() {
    use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
    use ferry_core::domain::user::UserRecord;
    use ferry_core::ports::UserAdmin;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixture = ferry_tests::Fixture::new().await.unwrap();
        let store = DynamoUserStore::new(fixture.ddb.clone(), &fixture.table);
        for name in ["alice", "bob", "bobby", "bob.smith", "carol", "robert"] {
            let record = UserRecord::from_json(json!({
                "username": name, "bucket": "ferry-data", "home": name, "iamPolicyArn": fixture.policy_arn,
                "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB", "saltVersion": "1"
            }))
            .unwrap();
            store.put_user(&record, false).await.unwrap();
        }
        let mut found = Vec::new();
        let mut start = None;
        for _ in 0..10 {
            let page = store.find_users("bob", start, 2).await.unwrap();
            assert!(page.users.len() <= 2);
            found.extend(
                page.users
                    .iter()
                    .map(|u| u["username"].as_str().unwrap().to_owned()),
            );
            start = page.next;
            if start.is_none() {
                break;
            }
        }
        found.sort();
        assert_eq!(found, ["bob", "bob.smith", "bobby"]);
        let all = store.find_users("", None, 100).await.unwrap();
        assert_eq!(all.users.len(), 6);
        assert!(all.next.is_none());
    });
}

/// 100,000 users in the data folder: the users page (first page, a prefix search, a page deep
/// in the list) stays fast. The figures are the console's own `Server-Timing`, printed for the
/// README; the test asserts only that each page answers and holds its users.
#[test]
fn the_users_page_at_100000_users_reports_its_server_time() {
    let up = Up::start(Store::Local);
    let (url, token) = console(&up);
    // The demo user's record, copied under 100,000 names in one transaction (hashing 100,000
    // passwords would take hours; the page never reads a hash).
    let db = rusqlite::Connection::open(up.data.join("ferry.db")).unwrap();
    let demo: String = db
        .query_row(
            "SELECT record FROM users WHERE username = 'demo'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut record: Value = serde_json::from_str(&demo).unwrap();
    db.execute_batch("BEGIN").unwrap();
    {
        let mut insert = db
            .prepare("INSERT INTO users (username, record) VALUES (?1, ?2)")
            .unwrap();
        for i in 0..100_000 {
            let name = format!("user{i:06}");
            record["username"] = json!(name);
            record["home"] = json!(name);
            insert.execute((&name, record.to_string())).unwrap();
        }
    }
    db.execute_batch("COMMIT").unwrap();
    let (session, _) = sign_in(&url, &token);
    let mut figures = Vec::new();
    for path in [
        "/users",
        "/users?q=user0999",
        "/users?q=&after=user090000",
        "/users?q=nobody",
    ] {
        // The first request warms SQLite's page cache; the second is the one reported.
        let mut ms = 0.0;
        for _ in 0..2 {
            let (status, head, page) = http(&url, "GET", path, Some(&session), "");
            assert_eq!(status, 200, "{path}: {head}");
            assert!(page.contains("user0") || path.contains("nobody"), "{path}");
            ms = head
                .lines()
                .find_map(|l| l.strip_prefix("server-timing: app;dur="))
                .unwrap()
                .parse::<f64>()
                .unwrap();
        }
        figures.push(format!("{path}: {ms:.1} ms"));
    }
    // The first page's "Next page" link goes on from its last user.
    let (_, _, first) = http(&url, "GET", "/users", Some(&session), "");
    let next = first
        .split("\" rel=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .unwrap()
        .replace("&amp;", "&");
    let (status, _, second) = http(&url, "GET", &next, Some(&session), "");
    assert_eq!(status, 200, "{next}");
    assert!(
        second.contains(">user000049<") && !second.contains(">user000048<"),
        "{next}"
    );
    eprintln!(
        "users page at 100,000 users, server time: {}",
        figures.join(", ")
    );
}
