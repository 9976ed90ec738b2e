//! The shared storage behaviour tests (`cat2_core::storage::conformance`),
//! and what is particular to this backend, against a real S3 endpoint and
//! a real PostgreSQL.
//!
//! Which ones, from the environment (scripts/test-cloud.sh sets them for
//! moto and for a Garage cluster):
//!   CAT2RS_TEST_S3_ENDPOINT   http://127.0.0.1:PORT
//!   CAT2RS_TEST_S3_BUCKET     an existing bucket
//!   CAT2RS_TEST_S3_REGION, CAT2RS_TEST_S3_KEY_ID, CAT2RS_TEST_S3_SECRET (optional)
//!   CAT2RS_TEST_DATABASE_URL  postgresql://postgres@127.0.0.1:PORT/postgres
//!     (each test makes a database of its own there)
//! Without them the tests say so and pass, unless CAT2RS_REQUIRE_CLOUD=1.

use std::time::Duration;

use cat2_cloud::CloudStorage;
use cat2_core::storage::{conformance, Key, LockMode, PutMode, Storage};

mod common;
use common::fresh_store;

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

/// Every data object in the bucket is one the catalog points at or holds as
/// garbage. (A listing of Garage may still show objects deleted a moment
/// ago: look until it settles.)
fn assert_nothing_unaccounted(store: &CloudStorage) {
    let settled = (0..50).any(|_| {
        let found = store
            .unaccounted_objects(std::time::SystemTime::now())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        found.is_empty()
    });
    assert!(settled, "data objects the catalog does not account for");
}

#[test]
fn behaves_as_every_store_must() {
    let Some(store) = fresh_store(Duration::from_secs(600)) else {
        return;
    };
    conformance::all(&store);
    store.ping().expect("healthy");
}

#[test]
fn large_objects_go_up_in_parts_and_read_back_by_ranges() {
    let Some(store) = fresh_store(Duration::from_secs(600)) else {
        return;
    };
    // 20 MiB + a bit: three parts of a multipart upload.
    let data: Vec<u8> = (0..(20u32 << 20) + 12345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let staged = store.stage(&key("big/x.bin")).unwrap();
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        staged.io().write_at((i as u64) << 20, piece).unwrap();
    }
    let meta = staged.commit(&key("big/x.bin"), PutMode::Create).unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let blob = store.open(&key("big/x.bin")).unwrap();
    // Small reads (through the page cache, across a page edge) and a large one.
    for (at, len) in [
        (0u64, 10usize),
        (65530, 20),
        (3 << 20, 4 << 20),
        (data.len() as u64 - 5, 5),
    ] {
        let got = blob.read_range(at, len).unwrap();
        assert_eq!(
            got,
            &data[at as usize..at as usize + len],
            "{len} bytes at {at}"
        );
    }
    assert!(blob.read_range(data.len() as u64 - 5, 6).is_err());
}

#[test]
fn superseded_objects_are_collected_after_the_grace_period() {
    let Some(store) = fresh_store(Duration::from_millis(1)) else {
        return;
    };
    let k = key("gc/a");
    store.put(&k, b"one", PutMode::Overwrite).unwrap();
    store.copy(&k, &key("gc/copy")).unwrap();
    store.put(&k, b"two", PutMode::Overwrite).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // "one" is still the copy's: superseded at gc/a but not garbage.
    assert_eq!(store.collect_garbage().unwrap(), 0);
    assert_eq!(
        store
            .open(&key("gc/copy"))
            .unwrap()
            .read_range(0, 3)
            .unwrap(),
        b"one"
    );
    store.delete(&key("gc/copy")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(store.collect_garbage().unwrap(), 1);
    store.delete_dir(&key("gc")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        store.collect_garbage().unwrap(),
        1,
        "two went with the tree"
    );
    // Nothing is left behind.
    assert_nothing_unaccounted(&store);
}

#[test]
fn uploads_whose_commit_never_came_are_collected() {
    let Some(store) = fresh_store(Duration::from_millis(1)) else {
        return;
    };
    // A write the catalog refuses leaves nothing; nor does a staged object
    // dropped before its commit.
    store.put(&key("up/a"), b"one", PutMode::Create).unwrap();
    assert!(store.put(&key("up/a"), b"two", PutMode::Create).is_err());
    let staged = store.stage(&key("up/b")).unwrap();
    staged.io().write_at(0, b"never committed").unwrap();
    drop(staged);
    std::thread::sleep(Duration::from_millis(50));
    store.sweep().unwrap();
    assert_nothing_unaccounted(&store);
    assert_eq!(
        store.open(&key("up/a")).unwrap().read_range(0, 3).unwrap(),
        b"one"
    );
}

#[test]
fn writers_through_separate_stores_never_lose_an_update() {
    // Two handles on one catalog and bucket: two replicas.
    let Some(first) = fresh_store(Duration::from_secs(600)) else {
        return;
    };
    let k = key("count/n");
    first.put(&k, b"0", PutMode::Overwrite).unwrap();
    let stores: Vec<&CloudStorage> = vec![&first; 8];
    std::thread::scope(|s| {
        for store in stores {
            let k = k.clone();
            s.spawn(move || {
                for _ in 0..10 {
                    let lock = store.lock(&k, LockMode::Exclusive).unwrap();
                    let blob = store.open(&k).unwrap();
                    let n: u64 =
                        String::from_utf8(blob.read_range(0, blob.len() as usize).unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                    store
                        .put(&k, (n + 1).to_string().as_bytes(), PutMode::Overwrite)
                        .unwrap();
                    drop(lock);
                }
            });
        }
    });
    let blob = first.open(&k).unwrap();
    assert_eq!(blob.read_range(0, blob.len() as usize).unwrap(), b"80");
}

#[test]
fn paths_in_an_imported_state_directory_name_its_copies() {
    let Some(store) = fresh_store(Duration::from_secs(600)) else {
        return;
    };
    let recorded =
        std::path::Path::new("/srv/caterva2/_caterva2/state/personal/u1/../../public/a.b2nd");
    assert_eq!(store.key_of_path(recorded), None, "no origin yet");
    store
        .record_origin(std::path::Path::new("/srv/caterva2/_caterva2/state"))
        .unwrap();
    assert_eq!(store.key_of_path(recorded), Some(key("public/a.b2nd")));
    assert_eq!(
        store.key_of_path(std::path::Path::new("/srv/caterva2/_caterva2/other/a.b2nd")),
        None,
        "outside the origin"
    );
    assert_eq!(
        store.key_of_path(std::path::Path::new(
            "/srv/caterva2/_caterva2/state/../../../etc/passwd"
        )),
        None
    );
    assert!(store
        .record_origin(std::path::Path::new("relative/state"))
        .is_err());
}
