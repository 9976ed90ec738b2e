//! `.b2z` stores (python-blosc2 TreeStore/DictStore zip files) in a root:
//! the zip directory read, the store's index and leaves, and every leaf
//! read through the resolver (info, small fetches, chunks). Input: the file.
#![no_main]

use cat2rs_fuzz::{read_all, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let st = State::get();
    let name = st.fresh_name(".b2z");
    let path = st.put_public(&name, data);
    read_all(&path);
    let _ = st
        .resolver()
        .resolve(&path)
        .and_then(|n| n.download(&cat2rs_fuzz::budget()));
    if let Ok(members) = st.resolver().resolve(&path).and_then(|n| n.list()) {
        for m in members.iter().take(8) {
            if let Ok(inner) = cat2_core::DsPath::parse(&format!("@public/{name}/{m}")) {
                read_all(&inner);
            }
        }
    }
    st.clear_public();
});
