//! `ferry up` end to end with OpenSSH's own `sftp` client: logins, transfers, every file
//! operation, and the session policy and path rules that keep each user in their home. The
//! suite runs twice: on the data folder (`local::…`) and with `--aws` on DynamoDB Local and moto
//! (`aws::…`), checking storage directly (files, or S3 objects) after each session.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::harness::{Store, Up, random_file};
use ferry_tests::openssh::Login;

fn start(store: Store) -> Up {
    Up::start(store)
}

fn the_demo_user_logs_in_and_a_wrong_password_is_refused(up: Up) {
    let (ok, out) = up.sftp("demo", Login::Password(&up.demo_password), "pwd\n");
    assert!(ok, "{out}");
    assert!(out.contains(&format!("/{}/demo", up.bucket)), "{out}");
    let (ok, out) = up.sftp("demo", Login::Password("not the password"), "pwd\n");
    assert!(!ok, "{out}");
    let (ok, _) = up.sftp("nobody", Login::Password(&up.demo_password), "pwd\n");
    assert!(!ok);
}

fn files_go_up_and_come_back_byte_exact_and_every_operation_works(up: Up) {
    up.add_user("alice", "alice-pw", &[]);
    let src = up.work.join("src.bin");
    random_file(&src, 5 * 1024 * 1024 + 17);
    let back = up.work.join("back.bin");
    let script = format!(
        "put {src} data.bin\nls -l\nmkdir inbox\nrename data.bin inbox/data.bin\nls inbox\nget inbox/data.bin {back}\n\
         put {src} tmp.bin\nrm tmp.bin\nmkdir empty\nrmdir empty\n-rmdir inbox\nls\n",
        src = src.display(),
        back = back.display()
    );
    let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), &script);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(&src).unwrap(),
        std::fs::read(&back).unwrap(),
        "download differs from upload"
    );
    assert_eq!(
        up.read_object("alice/inbox/data.bin"),
        std::fs::read(&src).unwrap(),
        "the stored object differs from the upload"
    );
    assert!(!up.exists("alice/data.bin") && !up.exists("alice/tmp.bin"));
    assert!(!up.exists("alice/empty"));
    // OpenSSH prints only the status code ("Failure"), so the folder itself is the evidence.
    assert!(
        up.is_dir("alice/inbox") && up.is_file("alice/inbox/data.bin"),
        "rmdir of a non-empty folder must be refused: {out}"
    );
}

fn path_users_cannot_leave_their_home_or_read_another(up: Up) {
    up.add_user("alice", "alice-pw", &[]);
    up.add_user("bob", "bob-pw", &[]);
    up.put_object("bob/secret.txt", b"bob's");
    let out_file = up.work.join("stolen");
    let plant = up.work.join("plant.txt");
    std::fs::write(&plant, "planted").unwrap();
    let bucket = &up.bucket;
    // The control: alice can log in and work in her own home.
    let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), "pwd\nls\n");
    assert!(ok && out.contains(&format!("/{bucket}/alice")), "{out}");
    for attempt in [
        "cd ..\n".to_owned(),
        "ls ..\n".to_owned(),
        format!("get ../bob/secret.txt {}\n", out_file.display()),
        format!("get /{bucket}/bob/secret.txt {}\n", out_file.display()),
        format!("get ../../../../etc/passwd {}\n", out_file.display()),
        format!("put {} ../bob/planted.txt\n", plant.display()),
        format!("put {} /{bucket}/planted.txt\n", plant.display()),
        format!("ls /{bucket}\n"),
        "mkdir ../evil\n".to_owned(),
        "rm ../bob/secret.txt\n".to_owned(),
    ] {
        let (ok, out) = up.sftp("alice", Login::Password("alice-pw"), &attempt);
        assert!(!ok, "{attempt:?} should fail: {out}");
    }
    assert!(!out_file.exists());
    assert_eq!(up.read_object("bob/secret.txt"), b"bob's");
    assert!(!up.exists("bob/planted.txt") && !up.exists("planted.txt") && !up.exists("evil"));
}

fn a_chroot_user_sees_only_their_home_as_root(up: Up) {
    up.add_user("carol", "carol-pw", &["--chroot"]);
    let src = up.work.join("c.txt");
    std::fs::write(&src, "carol").unwrap();
    let (ok, out) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("pwd\nput {} c.txt\ncd ..\npwd\nls /\n", src.display()),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Remote working directory: /\n"), "{out}");
    assert_eq!(up.read_object("carol/c.txt"), b"carol");
    let (ok, _) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("get /etc/passwd {}\n", up.work.join("x").display()),
    );
    assert!(!ok);
    let (ok, _) = up.sftp(
        "carol",
        Login::Password("carol-pw"),
        &format!("get ../../demo/x {}\n", up.work.join("x").display()),
    );
    assert!(!ok);
    assert!(!up.work.join("x").exists());
}

fn a_read_only_policy_refuses_uploads_but_allows_downloads(up: Up) {
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}]}"#;
    let arn = up.add_policy("read-only", policy);
    up.add_user("dora", "dora-pw", &["--policy-arn", &arn]);
    up.put_object("dora/report.csv", b"a,b\n");
    let got = up.work.join("report.csv");
    let (ok, out) = up.sftp(
        "dora",
        Login::Password("dora-pw"),
        &format!("get report.csv {}\n", got.display()),
    );
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "a,b\n");
    let (ok, out) = up.sftp(
        "dora",
        Login::Password("dora-pw"),
        &format!("put {} new.csv\n", got.display()),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("ermission denied"), "{out}");
    assert!(!up.exists("dora/new.csv"));
    let (ok, _) = up.sftp("dora", Login::Password("dora-pw"), "rm report.csv\n");
    assert!(!ok);
    assert!(up.is_file("dora/report.csv"));
}

fn an_ed25519_key_logs_in_and_another_key_does_not(up: Up) {
    let key = up.work.join("id_ed25519");
    let other = up.work.join("other_ed25519");
    for k in [&key, &other] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f", k.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    up.add(
        "erin",
        &["--no-password", "--key", &format!("{}.pub", key.display())],
        "",
    );
    let (ok, out) = up.sftp("erin", Login::Key(&key), "pwd\n");
    assert!(ok, "{out}");
    let (ok, out) = up.sftp("erin", Login::Key(&other), "pwd\n");
    assert!(!ok, "{out}");
}

fn a_user_disabled_while_the_server_runs_is_refused_at_the_next_login(up: Up) {
    up.add_user("fred", "fred-pw", &[]);
    assert!(up.sftp("fred", Login::Password("fred-pw"), "pwd\n").0);
    up.ferry(&["user", "disable", "fred"], "");
    let (ok, out) = up.sftp("fred", Login::Password("fred-pw"), "pwd\n");
    assert!(!ok, "{out}");
    up.ferry(&["user", "enable", "fred"], "");
    assert!(up.sftp("fred", Login::Password("fred-pw"), "pwd\n").0);
}

fn a_session_dropped_mid_upload_leaves_no_complete_looking_file(up: Up) {
    up.add_user("gina", "gina-pw", &[]);
    let big = up.work.join("big.bin");
    random_file(&big, 200 * 1024 * 1024);
    let mut sftp = up
        .sftp_command(
            "gina",
            Login::Password("gina-pw"),
            &format!("put {} big.bin\n", big.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the upload is under way, then cut the connection.
    let uploads = up.data.join("uploads");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let started = std::fs::read_dir(&uploads)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sftp.kill().unwrap();
    sftp.wait().unwrap();
    // The server notices the drop and moves the upload aside.
    let deadline = Instant::now() + Duration::from_secs(15);
    let partial = up.data.join("partial");
    while Instant::now() < deadline
        && std::fs::read_dir(&partial)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !up.exists("gina/big.bin"),
        "no file may appear under the target name"
    );
    let kept: Vec<_> = std::fs::read_dir(&partial).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "the partial upload is kept aside");
    assert!(kept[0].metadata().unwrap().len() < 200 * 1024 * 1024);
}

fn vm_hwm_kib(pid: u32) -> u64 {
    ferry_tests::up::peak_memory_kib(pid).unwrap()
}

fn a_200_mb_file_goes_up_and_down_byte_exact_while_server_memory_stays_flat(up: Up) {
    up.add_user("hana", "hana-pw", &[]);
    // Warm up: one login (Argon2's 19 MiB block) and one small transfer.
    let small = up.work.join("small.bin");
    random_file(&small, 64 * 1024);
    let (ok, out) = up.sftp(
        "hana",
        Login::Password("hana-pw"),
        &format!("put {} small.bin\n", small.display()),
    );
    assert!(ok, "{out}");
    let before = vm_hwm_kib(up.child.id());

    let big = up.work.join("big.bin");
    let back = up.work.join("big.back");
    random_file(&big, 200 * 1024 * 1024);
    let (ok, out) = up.sftp(
        "hana",
        Login::Password("hana-pw"),
        &format!(
            "put {} big.bin\nget big.bin {}\n",
            big.display(),
            back.display()
        ),
    );
    assert!(ok, "{out}");
    let after = vm_hwm_kib(up.child.id());
    assert!(up.is_file("hana/big.bin"), "the upload is stored");
    assert_eq!(std::fs::metadata(&back).unwrap().len(), 200 * 1024 * 1024);
    assert!(
        std::fs::read(&big).unwrap() == std::fs::read(&back).unwrap(),
        "the round trip changed bytes"
    );
    // Streaming, never the whole file: the peak may grow by buffers, not by the file's size.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "server peak memory grew from {before} KiB to {after} KiB"
    );
}

fn every_upload_is_processed_copied_to_its_area_and_announced(up: Up) {
    use sha2::Digest;
    up.add_user("ivy", "ivy-pw", &[]);
    let csv = up.work.join("r.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let fake = up.work.join("bad.pdf");
    std::fs::write(&fake, "this is no pdf").unwrap();
    let (ok, out) = up.sftp(
        "ivy",
        Login::Password("ivy-pw"),
        &format!(
            "put {} r.csv\nput {} bad.pdf\n",
            csv.display(),
            fake.display()
        ),
    );
    assert!(ok, "{out}");
    // Processing runs in the background: wait for both notices.
    let notices = up.data.join("notifications.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&notices).unwrap_or_default();
        // Only finished lines: the file may be read while a notice is being appended.
        let finished = text.rfind('\n').map_or("", |end| &text[..end]);
        lines = finished
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if lines.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    let notice = |key: &str| {
        lines
            .iter()
            .find(|l| l["sourceKey"] == key)
            .unwrap()
            .clone()
    };
    let clean = notice("ivy/r.csv");
    assert_eq!(clean["verdict"], "clean");
    assert_eq!(clean["user"], "ivy");
    let digest: String = sha2::Sha256::digest(b"a,b\n1,2\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(clean["sha256"], digest);
    assert_eq!(clean["destinationKey"], "processed/ivy/r.csv");
    let bad = notice("ivy/bad.pdf");
    assert_eq!(bad["verdict"], "quarantined");
    assert_eq!(bad["destinationKey"], "quarantine/ivy/bad.pdf");
    assert_eq!(up.read_object("processed/ivy/r.csv"), b"a,b\n1,2\n");
    assert!(up.is_file("quarantine/ivy/bad.pdf"));
    // ferry up keeps the user's own file where they put it.
    assert!(up.is_file("ivy/r.csv") && up.is_file("ivy/bad.pdf"));
}

fn a_folder_of_4000_files_is_listed_completely_by_openssh(up: Up) {
    up.add_user("kim", "kim-pw", &[]);
    let keys: Vec<String> = (0..4000)
        .map(|i| format!("kim/many/file-{i:04}.txt"))
        .collect();
    up.put_objects(&keys, b"x");
    // In one reply these names came to more than the 256 KiB OpenSSH's sftp accepts ("Received
    // message too long"); the server pages them.
    let (ok, out) = up.sftp("kim", Login::Password("kim-pw"), "ls -1 many\nls -l many\n");
    assert!(ok, "{}", out.lines().take(5).collect::<Vec<_>>().join("\n"));
    let short: std::collections::BTreeSet<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("many/file-"))
        .collect();
    assert_eq!(short.len(), 4000, "names listed by ls -1");
    let long = out
        .lines()
        // The server's own long names: `-rw-r--r-- … file-0000.txt`.
        .filter(|l| l.starts_with('-') && l.contains(" file-"))
        .count();
    assert_eq!(long, 4000, "names listed by ls -l");
}

fn a_renamed_file_is_processed_under_its_new_name(up: Up) {
    up.add_user("lee", "lee-pw", &[]);
    let tool = up.work.join("tool.bin");
    std::fs::write(&tool, "#!/bin/sh\necho not a pdf\n").unwrap();
    let (ok, out) = up.sftp(
        "lee",
        Login::Password("lee-pw"),
        &format!(
            "put {} tool.bin\nrename tool.bin invoice.pdf\n",
            tool.display()
        ),
    );
    assert!(ok, "{out}");
    // On S3 the rename is a copy, an ObjectCreated:Copy the processor judges by the new name.
    let notice = up
        .notice("lee/invoice.pdf")
        .expect("a notice for the renamed file");
    assert_eq!(notice["verdict"], "quarantined");
    assert_eq!(notice["destinationKey"], "quarantine/lee/invoice.pdf");
    assert!(up.is_file("quarantine/lee/invoice.pdf"));
    assert!(up.is_file("lee/invoice.pdf") && !up.exists("lee/tool.bin"));
}

ferry_tests::on_both_stores!(
    the_demo_user_logs_in_and_a_wrong_password_is_refused,
    files_go_up_and_come_back_byte_exact_and_every_operation_works,
    path_users_cannot_leave_their_home_or_read_another,
    a_chroot_user_sees_only_their_home_as_root,
    a_read_only_policy_refuses_uploads_but_allows_downloads,
    an_ed25519_key_logs_in_and_another_key_does_not,
    a_user_disabled_while_the_server_runs_is_refused_at_the_next_login,
    a_session_dropped_mid_upload_leaves_no_complete_looking_file,
    a_200_mb_file_goes_up_and_down_byte_exact_while_server_memory_stays_flat,
    every_upload_is_processed_copied_to_its_area_and_announced,
    a_folder_of_4000_files_is_listed_completely_by_openssh,
    a_renamed_file_is_processed_under_its_new_name,
);
