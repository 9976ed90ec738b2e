//! The behaviour every [`Storage`] backend must have, as tests any backend
//! runs against a fresh, empty store (object_store's `integration.rs` habit):
//! `conformance::all(&store)` from the backend's own tests.
//!
//! They check what the rest of cat2rs relies on: atomic puts, staged objects
//! invisible until committed and gone when dropped, reads pinned to the
//! version opened, versions that move on every change, one-level listings
//! with directories, moves and copies of objects and trees, locks that
//! exclude and count changes, and keys that cannot leave the store.

use super::{walk, Entry, Error, Key, LockMode, PutMode, Storage};

fn key(s: &str) -> Key {
    Key::parse(s).expect("test keys are valid")
}

fn read(store: &dyn Storage, k: &str) -> Vec<u8> {
    super::read_all(store, &key(k)).expect("the object reads back")
}

/// Runs every behaviour test on `store`, which must be empty.
pub fn all(store: &dyn Storage) {
    put_get_head_delete(store);
    staged_objects_appear_only_when_committed(store);
    reads_are_pinned_to_the_version_opened(store);
    listings_are_one_level_and_sorted(store);
    copies_and_renames(store);
    directories(store);
    locks_exclude_and_move_versions(store);
    many_objects_at_once(store);
    times_are_kept_when_set(store);
    heads_together_and_versions_opened(store);
}

pub fn put_get_head_delete(store: &dyn Storage) {
    let k = key("pgd/a.bin");
    assert!(store.head(&k).unwrap_err().is_not_found());
    assert!(store.open(&k).is_err());
    let meta = store.put(&k, b"hello", PutMode::Overwrite).unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(read(store, "pgd/a.bin"), b"hello");
    match store.head(&k).unwrap() {
        Entry::Object(m) => {
            assert_eq!(m.size, 5);
            assert_eq!(m.version, meta.version);
        }
        Entry::Dir { .. } => panic!("an object is not a directory"),
    }
    assert!(matches!(
        store.head(&key("pgd")).unwrap(),
        Entry::Dir { .. }
    ));
    let blob = store.open(&k).unwrap();
    let mut buf = [0u8; 3];
    assert_eq!(blob.read_at(1, &mut buf).unwrap(), 3);
    assert_eq!(&buf, b"ell");
    assert_eq!(blob.read_at(3, &mut buf).unwrap(), 2, "short at the end");
    assert!(blob.read_range(4, 2).is_err());

    let again = store.put(&k, b"HELLO!", PutMode::Overwrite).unwrap();
    assert_ne!(again.version, meta.version, "a new version has a new tag");
    assert!(matches!(
        store.put(&k, b"x", PutMode::Create),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(read(store, "pgd/a.bin"), b"HELLO!");
    store
        .put(&key("pgd/new.bin"), b"n", PutMode::Create)
        .unwrap();
    store.delete(&k).unwrap();
    assert!(store.head(&k).unwrap_err().is_not_found());
    assert!(store.delete(&k).unwrap_err().is_not_found());
    store.delete(&key("pgd/new.bin")).unwrap();
}

pub fn staged_objects_appear_only_when_committed(store: &dyn Storage) {
    let k = key("staged/x.bin");
    let staged = store.stage(&k).unwrap();
    let io = staged.io();
    io.write_at(0, b"abc").unwrap();
    io.write_at(10, b"z").unwrap();
    assert_eq!(io.len(), 11);
    assert_eq!(io.read_range(0, 3).unwrap(), b"abc");
    io.set_len(3).unwrap();
    io.append(b"def").unwrap();
    assert!(
        store.head(&k).unwrap_err().is_not_found(),
        "invisible until committed"
    );
    assert_eq!(
        store.list(&key("staged")).unwrap().objects.len(),
        0,
        "not listed until committed"
    );
    let meta = staged.commit(&k, PutMode::Overwrite).unwrap();
    assert_eq!(meta.size, 6);
    assert_eq!(read(store, "staged/x.bin"), b"abcdef");

    let dropped = store.stage(&key("staged/y.bin")).unwrap();
    dropped.io().write_at(0, b"never").unwrap();
    drop(dropped);
    assert!(store.head(&key("staged/y.bin")).unwrap_err().is_not_found());
    assert_eq!(store.list(&key("staged")).unwrap().objects.len(), 1);

    let edit = store.stage_copy(&k).unwrap();
    edit.io().write_at(0, b"ABC").unwrap();
    assert_eq!(read(store, "staged/x.bin"), b"abcdef", "the original stays");
    edit.commit(&k, PutMode::Overwrite).unwrap();
    assert_eq!(read(store, "staged/x.bin"), b"ABCdef");
    // Committed elsewhere than where it was staged.
    let moved = store.stage(&k).unwrap();
    moved.io().append(b"elsewhere").unwrap();
    moved
        .commit(&key("staged/sub/z.bin"), PutMode::Create)
        .unwrap();
    assert_eq!(read(store, "staged/sub/z.bin"), b"elsewhere");
    store.delete_dir(&key("staged")).unwrap();
}

pub fn reads_are_pinned_to_the_version_opened(store: &dyn Storage) {
    let k = key("pinned/f");
    store.put(&k, b"old bytes", PutMode::Overwrite).unwrap();
    let old = store.open(&k).unwrap();
    store
        .put(&k, b"NEW BYTES, longer", PutMode::Overwrite)
        .unwrap();
    assert_eq!(old.read_range(0, 9).unwrap(), b"old bytes");
    assert_eq!(old.meta().size, 9);
    let new = store.open(&k).unwrap();
    assert_ne!(new.meta().version, old.meta().version);
    store.delete(&k).unwrap();
    assert_eq!(
        old.read_range(0, 3).unwrap(),
        b"old",
        "still readable when deleted"
    );
    store.delete_dir(&key("pinned")).unwrap();
}

pub fn listings_are_one_level_and_sorted(store: &dyn Storage) {
    for k in ["ls/b", "ls/a", "ls/d/x", "ls/d/e/y", "ls/c/z"] {
        store
            .put(&key(k), k.as_bytes(), PutMode::Overwrite)
            .unwrap();
    }
    let l = store.list(&key("ls")).unwrap();
    let objects: Vec<&str> = l.objects.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(objects, ["ls/a", "ls/b"]);
    let dirs: Vec<&str> = l.dirs.iter().map(Key::as_str).collect();
    assert_eq!(dirs, ["ls/c", "ls/d"]);
    assert!(store.list(&key("ls/a")).unwrap_err().is_not_found());
    assert!(store.list(&key("nowhere")).unwrap_err().is_not_found());
    let all: Vec<String> = walk(store, &key("ls"))
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(all, ["a", "b", "c/z", "d/e/y", "d/x"]);
    assert_eq!(store.usage(&key("ls")).unwrap(), 4 + 4 + 6 + 8 + 6);
    store.delete_dir(&key("ls")).unwrap();
}

pub fn copies_and_renames(store: &dyn Storage) {
    store.put(&key("cr/a"), b"A", PutMode::Overwrite).unwrap();
    store.copy(&key("cr/a"), &key("cr/sub/b")).unwrap();
    assert_eq!(read(store, "cr/sub/b"), b"A");
    store.rename(&key("cr/sub/b"), &key("cr/c")).unwrap();
    assert!(store.head(&key("cr/sub/b")).unwrap_err().is_not_found());
    assert_eq!(read(store, "cr/c"), b"A");
    // Replacing an object.
    store.put(&key("cr/d"), b"D", PutMode::Overwrite).unwrap();
    store.rename(&key("cr/d"), &key("cr/c")).unwrap();
    assert_eq!(read(store, "cr/c"), b"D");
    // Trees.
    store.put(&key("cr/t/1"), b"1", PutMode::Overwrite).unwrap();
    store
        .put(&key("cr/t/u/2"), b"2", PutMode::Overwrite)
        .unwrap();
    store.copy(&key("cr/t"), &key("cr/t2")).unwrap();
    assert_eq!(read(store, "cr/t2/u/2"), b"2");
    store
        .put(&key("cr/t3/old"), b"o", PutMode::Overwrite)
        .unwrap();
    store.rename(&key("cr/t2"), &key("cr/t3")).unwrap();
    assert_eq!(read(store, "cr/t3/1"), b"1");
    assert!(
        store.head(&key("cr/t3/old")).unwrap_err().is_not_found(),
        "replaced whole"
    );
    assert!(store.head(&key("cr/t2")).unwrap_err().is_not_found());
    assert!(store
        .rename(&key("cr/none"), &key("cr/x"))
        .unwrap_err()
        .is_not_found());
    store.delete_dir(&key("cr")).unwrap();
}

pub fn directories(store: &dyn Storage) {
    store.create_dir(&key("dirs/empty/deeper")).unwrap();
    assert!(matches!(
        store.head(&key("dirs/empty")).unwrap(),
        Entry::Dir { .. }
    ));
    assert!(store
        .list(&key("dirs/empty/deeper"))
        .unwrap()
        .objects
        .is_empty());
    store
        .put(&key("dirs/full/x"), b"x", PutMode::Overwrite)
        .unwrap();
    assert!(matches!(
        store.put(&key("dirs/full"), b"y", PutMode::Overwrite),
        Err(Error::Conflict { .. })
    ));
    assert!(
        store.delete(&key("dirs/full")).is_err(),
        "delete is for objects"
    );
    store.delete_dir(&key("dirs/full")).unwrap();
    assert!(store.head(&key("dirs/full/x")).unwrap_err().is_not_found());
    assert!(matches!(
        store.head(&Key::root()).unwrap(),
        Entry::Dir { .. }
    ));
    store.delete_dir(&key("dirs")).unwrap();
}

pub fn locks_exclude_and_move_versions(store: &dyn Storage) {
    use std::sync::mpsc;
    use std::time::Duration;

    let k = key("locks/a.b2nd");
    store.put(&k, b"frame", PutMode::Overwrite).unwrap();
    let before = store.open(&k).unwrap().meta().version.clone();
    let held = store.lock(&k, LockMode::Exclusive).unwrap();
    held.bump_generation().unwrap();
    let after = store.open(&k).unwrap().meta().version.clone();
    assert_ne!(before, after, "a counted change moves the version");

    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let other = k.clone();
        s.spawn(move || {
            let lock = store.lock(&other, LockMode::Exclusive).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "excluded"
        );
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    });
    let shared = store.lock(&k, LockMode::Shared).unwrap();
    let _other = store.lock(&k, LockMode::Shared).unwrap();
    assert!(
        shared.bump_generation().is_err(),
        "only writers count changes"
    );
    drop(shared);
    assert_eq!(
        store.list(&key("locks")).unwrap().objects.len(),
        1,
        "locks are not listed"
    );
    store.delete_dir(&key("locks")).unwrap();
}

pub fn many_objects_at_once(store: &dyn Storage) {
    store
        .put(&key("many/a"), b"old", PutMode::Overwrite)
        .unwrap();
    store
        .put_many(vec![
            (key("many/a"), b"new".to_vec()),
            (key("many/g/b"), b"b".to_vec()),
        ])
        .unwrap();
    assert_eq!(read(store, "many/a"), b"new");
    assert_eq!(read(store, "many/g/b"), b"b");
    let all: Vec<String> = walk(store, &key("many"))
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(all, ["a", "g/b"]);
    store.delete_dir(&key("many")).unwrap();
}

pub fn times_are_kept_when_set(store: &dyn Storage) {
    let k = key("times/a");
    store.put(&k, b"a", PutMode::Overwrite).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    store.set_modified(&k, when).unwrap();
    match store.head(&k).unwrap() {
        Entry::Object(m) => assert_eq!(m.modified, Some(when)),
        Entry::Dir { .. } => panic!("an object is not a directory"),
    }
    assert_eq!(read(store, "times/a"), b"a", "the bytes stay");
    assert!(store.set_modified(&key("times/none"), when).is_err());
    store.delete_dir(&key("times")).unwrap();
}

pub fn heads_together_and_versions_opened(store: &dyn Storage) {
    store
        .put(&key("hv/d/a"), b"first", PutMode::Overwrite)
        .unwrap();
    let keys = [
        key("hv"),
        key("hv/d"),
        key("hv/d/a"),
        key("hv/none"),
        Key::root(),
    ];
    let answers = store.head_each(&keys);
    assert_eq!(answers.len(), keys.len());
    for (k, answer) in keys.iter().zip(&answers) {
        match (store.head(k), answer) {
            (Ok(one), Ok(together)) => assert_eq!(&one, together, "{k}"),
            (Err(one), Err(together)) => {
                assert_eq!(one.is_not_found(), together.is_not_found(), "{k}")
            }
            (one, together) => panic!("{k}: alone {one:?}, together {together:?}"),
        }
    }
    assert!(store.head_each(&[]).is_empty());
    let Ok(Entry::Object(meta)) = &answers[2] else {
        panic!("hv/d/a is an object")
    };
    let opened = store.open_version(meta).unwrap();
    assert_eq!(opened.meta().size, 5);
    assert_eq!(opened.read_range(0, 5).unwrap(), b"first");
    store.delete_dir(&key("hv")).unwrap();
}
