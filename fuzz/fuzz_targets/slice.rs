//! The `slice_` grammar: parsed, resolved against a shape with NumPy's
//! rules, and read from a small array item by item
//! (`cat2_core::fuzzing::slice`). Input: a shape prefix
//! (`cat2rs_fuzz::take_shape`), then the `slice_` text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((shape, chunks, rest)) = cat2rs_fuzz::take_shape(data) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = cat2_core::fuzzing::slice(text, &shape, &chunks);
    }
});
