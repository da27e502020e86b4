//! A short soak of the real `auth` binary: 2,000 logins of mixed kinds (right and wrong
//! passwords, unknown users, key logins, malformed payloads) through the Lambda Runtime API, and
//! every answer is the one its kind must get (the long run with memory figures is
//! scripts/soak.sh).

use anyhow::Result;

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_mixed_logins_through_the_auth_binary_are_each_answered_right() -> Result<()> {
    let f = ferry_tests::soak::fixture().await?;
    let soak =
        tokio::task::spawn_blocking(move || ferry_tests::soak::run(&f, 2_000, 1_000, &|_| {}))
            .await??;
    assert_eq!(soak.logins, 2_000);
    assert_eq!(soak.wrong_answers, 0, "{:?}", soak.first_wrong);
    println!(
        "auth VmRSS {} KiB after 1,000 logins, {} KiB after 2,000",
        soak.rss_early_kib, soak.rss_end_kib
    );
    Ok(())
}
