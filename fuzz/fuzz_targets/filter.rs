//! The `filter` row-predicate language over structured dtypes, and the
//! dtype strings files carry (`cat2_core::fuzzing::filter`). Input: the
//! dtype, a newline, the predicate, a newline, then record bytes to run it on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(dtype), Some(expr)) = (parts.next(), parts.next()) else {
        return;
    };
    let records = parts.next().unwrap_or_default();
    if let (Ok(dtype), Ok(expr)) = (std::str::from_utf8(dtype), std::str::from_utf8(expr)) {
        let _ = cat2_core::fuzzing::filter(dtype, expr, records);
    }
});
