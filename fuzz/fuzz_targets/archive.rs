//! Archives unpacked into a folder (the web GUI's unpack:
//! `cat2_core::write::archive::unpack`): member names checked, sizes added
//! against the quota, each member stored as an upload of it would be.
//! Input: a byte picking the kind by name (`.zip`, `.tar`, `.tar.gz`,
//! `.tgz`), then the archive.
#![no_main]

use cat2_core::write::archive::unpack;
use cat2_core::write::WritePolicy;
use cat2_core::{Caller, DsPath};
use cat2rs_fuzz::State;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["a.zip", "a.tar", "a.tar.gz", "a.tgz"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let st = State::get();
    let caller = Caller {
        user_id: Some("00000000-0000-4000-8000-000000000000"),
        is_superuser: true,
    };
    let policy = WritePolicy {
        quota: Some(64 << 20),
        ..WritePolicy::default()
    };
    let dir = DsPath::parse("@public").expect("a root");
    let name = NAMES[usize::from(pick) % NAMES.len()];
    if let Ok(stored) = unpack(&st.state, &bytes.to_vec(), name, &dir, caller, &policy) {
        assert!(!stored.is_empty(), "an archive unpacked into nothing");
        for p in &stored {
            assert!(
                p.to_string().starts_with("@public/a/"),
                "{p} is outside the folder"
            );
        }
    }
    st.clear_public();
});
