//! A short load run on `ferry up`, on both stores: ten SFTP sessions at once for ten seconds,
//! each uploading and reading back random files, while another task logs in and out. No
//! operation may fail and no byte may come back different (the long run with figures is
//! scripts/load.sh).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::time::Duration;

use ferry_tests::harness::{Store, Up};
use ferry_tests::load::{Plan, run};

fn start(store: Store) -> Up {
    Up::start_with(
        store,
        &["--no-processing", "--max-connections-per-source", "32"],
    )
}

fn ten_sessions_for_ten_seconds_lose_no_byte_and_fail_no_operation(up: Up) {
    let plan = Plan {
        port: up.port,
        pid: up.child.id(),
        user: "demo".into(),
        password: up.demo_password.clone(),
        sessions: 10,
        duration: Duration::from_secs(10),
        // Smaller than the long run's: the test binary hashes without optimisation.
        sizes: (64 * 1024, 512 * 1024),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(run(&plan)).unwrap();
    println!(
        "{} files round-tripped ({} MiB each way), {} logins beside them, VmRSS at the end {} KiB",
        r.files,
        r.bytes_up / (1024 * 1024),
        r.logins,
        r.rss_last().unwrap_or(0)
    );
    assert_eq!(r.errors, 0, "failed operations: {:?}", r.first_errors);
    assert_eq!(r.corrupt, 0, "files that came back different");
    assert!(r.files >= 10, "every session round-tripped files: {r:?}");
    assert_eq!((r.logins_refused, r.login_errors), (0, 0), "{r:?}");
    assert!(r.logins > 0, "logins ran beside the load");
}

ferry_tests::on_both_stores!(ten_sessions_for_ten_seconds_lose_no_byte_and_fail_no_operation);
