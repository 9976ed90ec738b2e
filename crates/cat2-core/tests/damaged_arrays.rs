//! Stored arrays that are damaged in ways C-Blosc2 does not see: each is an
//! error naming the dataset when read through the resolver, never a panic.

use cat2_core::fetch::FetchRequest;
use cat2_core::resolve::Resolver;
use cat2_core::{Caller, DsPath, StateDir};

const ANONYMOUS: Caller<'static> = Caller {
    user_id: None,
    is_superuser: false,
};

/// Found by the `stored_file` fuzz target: a 400-byte `.b2nd` whose dtype
/// has wider items than its chunks hold made a sliced fetch lay out a box
/// from more bytes than were read (a panic). Its dtype is checked against
/// its chunks when it is opened.
#[test]
fn an_array_whose_dtype_is_not_its_items_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = StateDir::open(tmp.path()).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/itemsize-mismatch.b2nd"
    );
    std::fs::copy(fixture, sd.path().join("public/x.b2nd")).unwrap();
    let path = DsPath::parse("@public/x.b2nd").unwrap();
    for slice in [None, Some("0:2"), Some("1")] {
        let req = FetchRequest {
            slice: slice.map(str::to_string),
            ..Default::default()
        };
        let node = Resolver::new(&sd, ANONYMOUS).resolve(&path).unwrap();
        let err = node.fetch(&req).err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("x.b2nd"), "{text}");
        assert!(text.contains("its chunks hold items of"), "{text}");
    }
}
