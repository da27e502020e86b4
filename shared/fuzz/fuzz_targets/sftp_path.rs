//! SFTP paths and logical homes: any path from any working directory normalises to an absolute
//! path with no `.` or `..`, and a chrooted user's path always lands inside their home.
#![no_main]

use ferry_core::domain::sftp_path::{Location, Namespace, normalize};
use ferry_core::domain::user::Mapping;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cwd, path) = text.split_once('\n').unwrap_or(("/", text));
    let Ok(cwd) = normalize("/", cwd) else {
        return;
    };
    let Ok(full) = normalize(&cwd, path) else {
        return;
    };
    assert!(full.starts_with('/'), "{full:?} is not absolute");
    assert!(
        full == "/"
            || full[1..]
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
        "{full:?} is not normal"
    );
    // The chroot of `ferry user add --chroot`: `/` is the home.
    let chroot = Namespace::Logical(vec![Mapping {
        entry: "/".into(),
        target: "/bucket/home/alice".into(),
        kind: None,
    }]);
    match chroot.locate(&full) {
        Ok(Location::Object { bucket, key }) => {
            assert_eq!(bucket, "bucket");
            assert!(
                key == "home/alice" || key.starts_with("home/alice/"),
                "{full:?} left the home: {key:?}"
            );
        }
        Ok(Location::Virtual { .. }) => panic!("a chroot has no virtual folders"),
        Err(_) => {}
    }
    let _ = Namespace::Path.locate(&full);
});
