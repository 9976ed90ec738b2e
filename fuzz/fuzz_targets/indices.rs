//! `indices` bodies (NumPy fancy indexing as JSON): parsed against a shape
//! and read from a small array (`cat2_core::fuzzing::indices`). Input: a
//! shape prefix (`cat2rs_fuzz::take_shape`), then the JSON text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((shape, chunks, rest)) = cat2rs_fuzz::take_shape(data) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = cat2_core::fuzzing::indices(text, &shape, &chunks);
    }
});
