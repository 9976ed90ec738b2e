//! A file in a root, read the way every request reads one: through the
//! resolver (`Resolver::resolve`), which classifies it and opens it as its
//! kind of dataset, then info, small fetches and chunks (`read_all`).
//! Input: a byte picking the suffix (`.b2nd`, `.b2frame`, `.b2`, `.h5`, or
//! no suffix: a plain file, HDF5 by signature), then the file.
#![no_main]

use cat2rs_fuzz::{read_all, State};
use libfuzzer_sys::fuzz_target;

const SUFFIXES: [&str; 5] = [".b2nd", ".b2frame", ".b2", ".h5", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let st = State::get();
    let name = st.fresh_name(SUFFIXES[usize::from(pick) % SUFFIXES.len()]);
    let path = st.put_public(&name, bytes);
    read_all(&path);
    // HDF5 files are containers: their datasets too.
    if let Ok(members) = st.resolver().resolve(&path).and_then(|n| n.list()) {
        for m in members.iter().take(8) {
            if let Ok(inner) = cat2_core::DsPath::parse(&format!("@public/{name}/{m}")) {
                read_all(&inner);
            }
        }
    }
    st.clear_public();
});
