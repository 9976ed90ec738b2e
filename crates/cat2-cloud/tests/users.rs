//! The user rules of cat2-auth over the PostgreSQL table: what the SQLite
//! table does, the same way (against a real PostgreSQL; see tests/storage.rs
//! for the environment).

mod common;

use std::sync::Arc;

use cat2_auth::{Error, Users};
use cat2_cloud::PgUsers;

fn fresh() -> Option<Users> {
    let url = common::fresh_database_url()?;
    Some(Users::with_table(Arc::new(PgUsers::open(&url).unwrap())))
}

#[test]
fn users_are_added_found_authenticated_and_removed() {
    let Some(users) = fresh() else {
        return;
    };
    let u = users
        .create("Ada@Example.com", "correct horse", true)
        .unwrap();
    assert!(u.is_superuser && u.is_active && !u.is_verified);
    // E-mails compare ignoring ASCII case, as in SQLite.
    assert_eq!(
        users.get_by_email("ada@example.COM").unwrap().unwrap().id,
        u.id
    );
    assert_eq!(
        users
            .get_by_id(&u.id.to_uppercase())
            .unwrap()
            .unwrap()
            .email,
        u.email
    );
    assert!(users.get_by_id("not-a-uuid").unwrap().is_none());
    assert!(matches!(
        users.create("ada@example.com", "another one", false),
        Err(Error::UserAlreadyExists { .. })
    ));
    assert!(users
        .authenticate("ada@example.com", "correct horse")
        .unwrap()
        .is_some());
    assert!(users
        .authenticate("ada@example.com", "wrong horse")
        .unwrap()
        .is_none());
    users.set_password(&u.id, "new battery").unwrap();
    assert!(users
        .authenticate("ada@example.com", "new battery")
        .unwrap()
        .is_some());
    assert_eq!(users.count().unwrap(), 1);
    assert_eq!(users.list_email("Ada@example.com").unwrap().len(), 1);
    assert_eq!(users.list().unwrap().len(), 1);
    users.delete("ADA@example.com").unwrap();
    assert_eq!(users.count().unwrap(), 0);
    // A second handle (another replica) sees the same table.
    users.create("bob@example.com", "12345678", false).unwrap();
    let url_users = users.list().unwrap();
    assert_eq!(url_users[0].email, "bob@example.com");
}

#[test]
fn racing_registrations_never_go_past_the_cap() {
    let Some(users) = fresh() else {
        return;
    };
    let created: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let users = users.clone();
                s.spawn(move || {
                    users
                        .create_capped(&format!("u{i}@example.com"), "12345678", false, Some(3))
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.iter().filter(|&&c| c).count(), 3);
    assert_eq!(users.count().unwrap(), 3);
}
