//! The operations, driven as the HTTP layer and the GUI drive them: staged
//! uploads finished under a name, reads, moves, removals, and user
//! administration with its rules.

use cat2_core::write::transfer::Transfer;
use cat2_core::{DsPath, StateDir};
use cat2_service::{Accounts, Error, Service, Settings, Who};

fn path(p: &str) -> DsPath {
    DsPath::parse(p).unwrap()
}

fn user(id: &str, superuser: bool) -> Who {
    Who {
        user_id: Some(id.to_string()),
        is_superuser: superuser,
    }
}

fn service(dir: &std::path::Path, with_users: bool) -> Service {
    let state = StateDir::open(dir).unwrap();
    let accounts = with_users.then(|| Accounts {
        users: cat2_auth::Users::open(dir).unwrap(),
        tokens: cat2_auth::Tokens::new("a test secret"),
    });
    Service::new(state, accounts, Settings::default())
}

#[test]
fn an_upload_is_staged_named_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let s = service(tmp.path(), false);
    let alice = user("8d0e3d0e-0000-4000-8000-00000000000a", false);
    // Nobody logged in writes nothing.
    assert!(matches!(
        s.start_upload(&Who::anonymous(), &path("@shared/d")),
        Err(Error::Core(cat2_core::Error::Unauthorized))
    ));
    let upload = s.start_upload(&alice, &path("@shared/notes.txt")).unwrap();
    upload.io().write_at(0, b"# notes\n").unwrap();
    let stored = s
        .finish_upload(&alice, &path("@shared/notes.txt"), "ignored.txt", upload)
        .unwrap();
    assert_eq!(stored.to_string(), "@shared/notes.txt");
    assert_eq!(s.list(&alice, &path("@shared")).unwrap(), ["notes.txt"]);
    assert_eq!(
        s.regular_file(&alice, &path("@shared/notes.txt"), &Default::default())
            .unwrap(),
        b"# notes\n"
    );
    let (info, etag) = s.info(&alice, &path("@shared/notes.txt")).unwrap();
    assert!(matches!(info, cat2_proto::Info::SChunk(_)));
    assert!(etag.is_some_and(|e| e.starts_with('"')));
    // An upload given up leaves nothing.
    let dropped = s.start_upload(&alice, &path("@shared/gone.txt")).unwrap();
    dropped.io().write_at(0, b"x").unwrap();
    drop(dropped);
    assert_eq!(s.list(&alice, &path("@shared")).unwrap(), ["notes.txt"]);

    let copied = s
        .transfer(&alice, Transfer::Copy, "@shared/notes.txt", "@shared/sub")
        .unwrap();
    assert_eq!(copied.to_string(), "@shared/sub/notes.txt");
    s.remove(&alice, &path("@shared/notes.txt")).unwrap();
    assert_eq!(s.list(&alice, &path("@shared")).unwrap(), ["sub/notes.txt"]);
    assert_eq!(s.roots(&alice), ["@public", "@personal", "@shared"]);
    assert_eq!(s.roots(&Who::anonymous()), ["@public"]);
}

#[test]
fn users_are_administered_by_superusers_only() {
    let tmp = tempfile::tempdir().unwrap();
    let none = service(&tmp.path().join("no-users"), false);
    assert!(matches!(
        none.add_user(&user("x", true), "a@example.com", None, false),
        Err(Error::NoUsers)
    ));

    let s = service(tmp.path(), true);
    let root = s
        .accounts()
        .unwrap()
        .users
        .create("root@example.com", "foobar11", true)
        .unwrap();
    let admin = user(&root.id, true);
    let plain = user("8d0e3d0e-0000-4000-8000-00000000000b", false);
    match s.add_user(&plain, "bob@example.com", None, false) {
        Err(Error::NotAllowed(msg)) => assert_eq!(msg, "Only superusers can add users"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.add_user(&admin, "bob@example.com", Some("a long password"), false)
            .unwrap(),
        "User added: username='bob@example.com' superuser=False"
    );
    let token = s.login("bob@example.com", "a long password").unwrap();
    let bob = s.who(&token);
    assert!(bob.is_logged_in() && !bob.is_superuser);
    assert!(matches!(
        s.login("bob@example.com", "wrong"),
        Err(Error::BadCredentials)
    ));
    let emails: Vec<String> = s
        .list_users(&bob, None)
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["root@example.com", "bob@example.com"]);
    assert_eq!(
        s.delete_user(&admin, "bob@example.com").unwrap(),
        "User deleted: bob@example.com"
    );
    assert!(
        !s.who(&token).is_logged_in(),
        "a deleted user's session ends"
    );
}

#[test]
fn registration_stops_at_maxusers() {
    let tmp = tempfile::tempdir().unwrap();
    let state = StateDir::open(tmp.path()).unwrap();
    let accounts = Accounts {
        users: cat2_auth::Users::open(tmp.path()).unwrap(),
        tokens: cat2_auth::Tokens::new("a test secret"),
    };
    let settings = Settings {
        maxusers: Some(2),
        register: true,
        ..Settings::default()
    };
    let s = Service::new(state, Some(accounts), settings);
    assert!(s.register("a@example.com", "apassword").unwrap().is_some());
    assert!(s.register("b@example.com", "bpassword").unwrap().is_some());
    match s.register("c@example.com", "cpassword") {
        Err(Error::Users(e @ cat2_auth::Error::TooManyUsers { max: 2 })) => {
            assert_eq!(e.to_string(), "Only a maximum of 2 users are allowed")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.accounts().unwrap().users.list().unwrap().len(), 2);
}

#[test]
fn writes_refuse_names_the_server_cannot_keep() {
    let tmp = tempfile::tempdir().unwrap();
    let s = service(tmp.path(), false);
    let alice = user("8d0e3d0e-0000-4000-8000-00000000000a", false);
    let bad_request = |r: Result<_, Error>| match r {
        Err(Error::Core(cat2_core::Error::BadRequest(msg))) => msg,
        Err(other) => panic!("expected a 400, got {other:?}"),
        Ok(_) => panic!("expected a 400, got a success"),
    };
    // Too long once stored: refused before anything is staged, with the limit.
    let long = format!("@shared/{}.txt", "n".repeat(250));
    let msg = bad_request(s.start_upload(&alice, &path(&long)).map(|_| ()));
    assert!(msg.contains("at most 245 bytes"), "{msg}");
    let up = s.start_upload(&alice, &path("@shared/dir/x.txt")).unwrap();
    up.io().write_at(0, b"x").unwrap();
    s.finish_upload(&alice, &path("@shared/dir/x.txt"), "x.txt", up)
        .unwrap();
    for kind in [Transfer::Copy, Transfer::Move] {
        let msg = bad_request(
            s.transfer(&alice, kind, "@shared/dir/x.txt", &long)
                .map(|_| ()),
        );
        assert!(msg.contains("at most 245 bytes"), "{msg}");
    }
    // A directory target receives the file under its own name: that name is checked too.
    for name in [".cat2rs-tmp-1", "y.b2lock", "a\u{202e}b.txt", "a\u{7}b.txt"] {
        let r = s
            .start_upload(&alice, &path("@shared/dir"))
            .and_then(|up| s.finish_upload(&alice, &path("@shared/dir"), name, up));
        bad_request(r.map(|_| ()));
    }
    assert_eq!(s.list(&alice, &path("@shared")).unwrap(), ["dir/x.txt"]);
}
