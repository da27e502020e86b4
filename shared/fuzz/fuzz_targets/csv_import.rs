//! CSV files for `ferry user import`: any bytes are rows, each read or refused on its own, or
//! a refusal of the whole file (its header), never a panic.
#![no_main]

use ferry_core::app::admin::import::{RowDefaults, read_rows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let defaults = RowDefaults {
        bucket: Some("bucket".into()),
        policy_arn: None,
    };
    if let Ok(rows) = read_rows(data, &defaults) {
        for (line, row) in rows {
            assert!(line >= 1);
            let _ = row.map(|r| r.username);
        }
    }
});
