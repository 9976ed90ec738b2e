//! Interoperability with the reference implementation (caterva2's server package, with
//! fastapi-users, pwdlib, PyJWT, bcrypt and pydantic). These tests run only when
//! `CAT2RS_PYTHON` names a Python interpreter that has `caterva2[server]` installed; otherwise
//! each prints a note and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use cat2_auth::{password, AddOutcome, Tokens, Users};

const SECRET: &str = "interop-secret";

fn python() -> Option<PathBuf> {
    match std::env::var_os("CAT2RS_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: set CAT2RS_PYTHON to a python with caterva2[server] to run the interop tests");
            None
        }
    }
}

/// Runs a Python snippet with `args` in `sys.argv[1:]` and returns the last line it printed.
fn run(py: &Path, cwd: &Path, code: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(code)
        .args(args)
        .current_dir(cwd)
        .env("CATERVA2_SECRET", SECRET)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed:\n{code}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().unwrap_or("").to_owned()
}

const ADD_USER: &str = r#"
import sys, pathlib
from caterva2.services import srv_utils
srv_utils.add_user(sys.argv[1], sys.argv[2], sys.argv[3] == "1", state_dir=pathlib.Path(sys.argv[4]))
print("done")
"#;

const PWDLIB_VERIFY: &str = r#"
import sys
from fastapi_users.password import PasswordHelper
ok, new_hash = PasswordHelper().verify_and_update(sys.argv[1], sys.argv[2])
print(ok, new_hash is None)
"#;

#[test]
fn python_add_user_then_rust_authenticates() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(
        &py,
        dir.path(),
        ADD_USER,
        &["user@example.com", "foobar11", "1", state.to_str().unwrap()],
    );

    let users = Users::open(&state).unwrap();
    let u = users
        .authenticate("user@example.com", "foobar11")
        .unwrap()
        .expect("reference password accepted");
    assert!(u.is_superuser && u.is_active && !u.is_verified);
    assert!(u
        .hashed_password
        .starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    // pwdlib's default hash is kept as it is.
    assert_eq!(
        users.get_by_id(&u.id).unwrap().unwrap().hashed_password,
        u.hashed_password
    );
    assert_eq!(
        users.authenticate("user@example.com", "foobar12").unwrap(),
        None
    );
    assert_eq!(
        users
            .authenticate("USER@example.com", "foobar11")
            .unwrap()
            .map(|u| u.email),
        Some("user@example.com".into())
    );

    // Adding the same user with us is a no-op, as in the reference.
    assert!(matches!(
        users.add("user@example.com", None, false).unwrap(),
        AddOutcome::Exists(_)
    ));
}

#[test]
fn rust_schema_equals_the_reference_schema() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    let ours = dir.path().join("ours");
    run(
        &py,
        dir.path(),
        ADD_USER,
        &["a@example.com", "password1", "0", theirs.to_str().unwrap()],
    );
    Users::open(&ours).unwrap();
    let dump = r#"
import sys, sqlite3
c = sqlite3.connect(sys.argv[1])
print(repr(sorted(c.execute("select type, name, tbl_name, sql from sqlite_master").fetchall())))
"#;
    let a = run(
        &py,
        dir.path(),
        dump,
        &[theirs.join("db.sqlite").to_str().unwrap()],
    );
    let b = run(
        &py,
        dir.path(),
        dump,
        &[ours.join("db.sqlite").to_str().unwrap()],
    );
    assert_eq!(a, b);
}

#[test]
fn rust_add_then_reference_verifies() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let users = Users::open(&state).unwrap();
    let bob = users
        .add("bob@example.com", Some("bobpassword"), false)
        .unwrap()
        .user()
        .clone();

    // pwdlib (as fastapi-users configures it) accepts our hash and does not want to rehash it.
    assert_eq!(
        run(
            &py,
            dir.path(),
            PWDLIB_VERIFY,
            &["bobpassword", &bob.hashed_password]
        ),
        "True True"
    );
    assert_eq!(
        run(
            &py,
            dir.path(),
            PWDLIB_VERIFY,
            &["bobpassword!", &bob.hashed_password]
        ),
        "False True"
    );

    // The reference reads our rows: its add_user finds the user and adds nothing.
    run(
        &py,
        dir.path(),
        ADD_USER,
        &[
            "BOB@example.com",
            "otherpassword",
            "0",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(users.list().unwrap(), std::slice::from_ref(&bob));

    // And its own login path accepts the password.
    let login = r#"
import sys, asyncio, pathlib, contextlib
from fastapi.security import OAuth2PasswordRequestForm
from caterva2.services import db, users
async def main():
    await db.create_db_and_tables(pathlib.Path(sys.argv[1]))
    cx = contextlib.asynccontextmanager
    async with cx(db.get_async_session)() as s, cx(db.get_user_db)(s) as udb, cx(users.get_user_manager)(udb) as um:
        u = await um.authenticate(OAuth2PasswordRequestForm(username=sys.argv[2], password=sys.argv[3]))
        print(None if u is None else str(u.id))
    await db.engine.dispose()
asyncio.run(main())
"#;
    assert_eq!(
        run(
            &py,
            dir.path(),
            login,
            &[state.to_str().unwrap(), "bob@example.com", "bobpassword"]
        ),
        bob.id
    );
    assert_eq!(
        run(
            &py,
            dir.path(),
            login,
            &[state.to_str().unwrap(), "bob@example.com", "wrongpassword"]
        ),
        "None"
    );
}

#[test]
fn session_tokens_both_ways() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(SECRET);
    let id = "8f10b5e1-079e-4056-b568-0ba6bd012c73";

    let ours = tokens.session(id).unwrap();
    let decode = r#"
import sys, jwt, time
d = jwt.decode(sys.argv[1], sys.argv[2], audience=["fastapi-users:auth"], algorithms=["HS256"])
print(d["sub"], d["aud"], 43190 <= d["exp"] - time.time() <= 43200)
"#;
    assert_eq!(
        run(&py, dir.path(), decode, &[&ours, SECRET]),
        format!("{id} ['fastapi-users:auth'] True")
    );

    // What JWTStrategy.write_token produces.
    let make = r#"
import sys
from fastapi_users.jwt import generate_jwt
print(generate_jwt({"sub": sys.argv[1], "aud": ["fastapi-users:auth"]}, sys.argv[2], 3600 * 12))
"#;
    let theirs = run(&py, dir.path(), make, &[id, SECRET]);
    assert_eq!(tokens.verify_session(&theirs).as_deref(), Some(id));
    assert_eq!(Tokens::new("wrong-secret").verify_session(&theirs), None);
    let expired = run(
        &py,
        dir.path(),
        &make.replace("3600 * 12", "-10"),
        &[id, SECRET],
    );
    assert_eq!(tokens.verify_session(&expired), None);
}

#[test]
fn reset_tokens_both_ways() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let users = Users::open(&dir.path().join("state")).unwrap();
    let user = users
        .add("reset@example.com", Some("resetpassword"), false)
        .unwrap()
        .user()
        .clone();
    let tokens = Tokens::new(SECRET);

    // Ours, checked the way BaseUserManager.reset_password checks it.
    let check = r#"
import sys
from fastapi_users.jwt import decode_jwt
from fastapi_users.password import PasswordHelper
d = decode_jwt(sys.argv[1], sys.argv[2], ["fastapi-users:reset"])
ok, _ = PasswordHelper().verify_and_update(sys.argv[3], d["password_fgpt"])
print(d["sub"], ok)
"#;
    let ours = tokens.reset(&user).unwrap();
    assert_eq!(
        run(
            &py,
            dir.path(),
            check,
            &[&ours, SECRET, &user.hashed_password]
        ),
        format!("{} True", user.id)
    );

    // Theirs, as BaseUserManager.forgot_password makes it.
    let make = r#"
import sys
from fastapi_users.jwt import generate_jwt
from fastapi_users.password import PasswordHelper
data = {"sub": sys.argv[1], "password_fgpt": PasswordHelper().hash(sys.argv[3]), "aud": "fastapi-users:reset"}
print(generate_jwt(data, sys.argv[2], 3600))
"#;
    let theirs = run(
        &py,
        dir.path(),
        make,
        &[&user.id, SECRET, &user.hashed_password],
    );
    assert_eq!(tokens.verify_reset(&theirs, &users).unwrap(), user);
    users.set_password(&user.id, "anotherpassword").unwrap();
    assert_eq!(
        tokens
            .verify_reset(&theirs, &users)
            .unwrap_err()
            .to_string(),
        "RESET_PASSWORD_BAD_TOKEN"
    );
}

#[test]
fn python_bcrypt_hashes_verify_and_upgrade() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let make = r#"
import sys, bcrypt
print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(int(sys.argv[2]), sys.argv[3].encode())).decode())
"#;
    for (rounds, prefix) in [("4", "2b"), ("5", "2a")] {
        let h = run(&py, dir.path(), make, &["bcrypt-pass", rounds, prefix]);
        assert!(h.starts_with(&format!("${prefix}$0{rounds}$")), "{h}");
        assert!(password::verify("bcrypt-pass", &h));
        assert!(!password::verify("bcrypt-pasS", &h));
    }
    // pwdlib's own bcrypt hasher (what older fastapi-users databases hold), through login.
    let pwdlib_bcrypt = r#"
import sys
from pwdlib.hashers.bcrypt import BcryptHasher
print(BcryptHasher().hash(sys.argv[1]))
"#;
    let h = run(&py, dir.path(), pwdlib_bcrypt, &["legacy-password"]);
    let users = Users::open(&dir.path().join("state")).unwrap();
    let u = users
        .add("legacy@example.com", Some("whatever1"), false)
        .unwrap()
        .user()
        .clone();
    set_hash(&users, &u.id, &h);
    let logged = users
        .authenticate("legacy@example.com", "legacy-password")
        .unwrap()
        .expect("bcrypt login");
    assert!(logged
        .hashed_password
        .starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    assert_eq!(
        run(
            &py,
            dir.path(),
            PWDLIB_VERIFY,
            &["legacy-password", &logged.hashed_password]
        ),
        "True True"
    );
}

/// Writes a hash straight into the table, as an older server would have left it.
fn set_hash(users: &Users, id: &str, hash: &str) {
    let conn = rusqlite::Connection::open(users.path().unwrap()).unwrap();
    conn.execute(
        "UPDATE user SET hashed_password = ?1 WHERE id = ?2",
        [hash, id],
    )
    .unwrap();
}

#[test]
fn email_validation_matches_pydantic() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        "bob@example.com",
        "notanemail",
        " Bob@Example.COM ",
        "Jane Roe <Jane.Roe@Example.ORG>",
        "\"Roe, Jane\" <jr@example.org>",
        "Postmaster@example.com",
        "a+b-c_d=e@sub.example.io",
        "o'brien@example.ie",
        "x@münchen.de",
        "x@xn--mnchen-3ya.de",
        "Ünïcödé@example.com",
        "a@b",
        "a@b.c1",
        "a@b..com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "@example.com",
        "a@",
        "a b@example.com",
        "a\"b@example.com",
        "\"a b\"@example.com",
        "a@exa_mple.com",
        "a@-example.com",
        "a@example-.com",
        "a@example.com-",
        "a@ex--ample.com",
        "a@xn--ample.com",
        "a@localhost",
        "a@example.local",
        "a@example.arpa",
        "a@[127.0.0.1]",
        "a@[127.0.0]",
        "a@[01.2.3.4]",
        "a@[IPv6:::1]",
        "a@[tag:foo]",
        "a<b@example.com",
        "a>b@example.com",
        "a,b@example.com",
        "a;b@example.com",
        "a\\b@example.com",
        "<a@example.com>",
        "Joe <a@example.com> trailing",
        "Joe <a@example.com",
        "tab\t@example.com",
        "del\u{7f}@example.com",
        "zw\u{200b}j@example.com",
        "a@exa\u{200b}mple.com",
        "\u{301}a@example.com",
        "a\u{FF20}example.com",
        "user@ex\u{2488}ample.com",
    ];
    let script = r#"
import sys, json
from pydantic import TypeAdapter, EmailStr, ValidationError
ta = TypeAdapter(EmailStr)
out = []
for s in json.loads(sys.argv[1]):
    try:
        out.append(["ok", ta.validate_python(s)])
    except ValidationError as e:
        out.append(["err", e.errors()[0]["msg"].removeprefix("value is not a valid email address: ")])
print(json.dumps(out))
"#;
    let arg = serde_json::to_string(&inputs[..]).unwrap();
    let answers: Vec<(String, String)> =
        serde_json::from_str(&run(&py, dir.path(), script, &[&arg])).unwrap();
    let mut mismatches = Vec::new();
    for (input, (kind, value)) in inputs.iter().zip(answers) {
        let ours = match cat2_auth::validate_email(input) {
            Ok(n) => ("ok".to_owned(), n),
            Err(cat2_auth::Error::InvalidEmail { reason, .. }) => ("err".to_owned(), reason),
            Err(e) => panic!("{input:?}: {e}"),
        };
        // Python's idna package explains IDNA failures in parentheses; the idna crate cannot,
        // so only the text before the detail is compared for those.
        let idna_detail = |r: &str| {
            r.starts_with("The part after the @-sign is not valid IDNA (")
                || r.starts_with("The part after the @-sign is invalid (")
                || r.starts_with("The part after the @-sign contains invalid characters (")
        };
        let same = if kind == "err" && idna_detail(&value) {
            ours.0 == "err" && ours.1.split('(').next() == value.split('(').next()
        } else {
            ours == (kind.clone(), value.clone())
        };
        if !same {
            mismatches.push(format!(
                "{input:?}: reference {kind} {value:?}, ours {} {:?}",
                ours.0, ours.1
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // The whole message the server shows after "Error in adding notanemail: ".
    let msg = r#"
import sys
from pydantic import ValidationError
from caterva2.services import schemas
try:
    schemas.UserCreate(email=sys.argv[1], password="x")
except ValidationError as e:
    print(repr(str(e)))
"#;
    for input in ["notanemail", &"x".repeat(70), "it's@bad"] {
        let theirs = run(&py, dir.path(), msg, &[input]);
        let ours = cat2_auth::validate_email(input).unwrap_err().to_string();
        let ours_repr = run(
            &py,
            dir.path(),
            "import sys; print(repr(sys.argv[1]))",
            &[&ours],
        );
        assert_eq!(ours_repr, theirs, "{input}");
    }
}

/// Random addresses built from awkward pieces, compared with pydantic in one batch. The seed
/// is fixed so a failure reproduces.
#[test]
fn email_validation_random_differential() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    const PIECES: &[&str] = &[
        "a", "Bob", "0", "9z", ".", "..", "-", "_", "+", "=", " ", "\"", "\\", "<", ">", "(", ")",
        "[", "]", ",", ":", ";", "'", "!", "#", "é", "Ü", "ß", "İ", "\u{301}", "\u{200b}",
        "\u{a0}", "\t", "\u{ff0e}", "\u{3002}", "Ａ", "xn--", "ab--", "example", "com", "org",
        "io", "info", "1", "www", "münchen", "日本", "@",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut inputs = Vec::new();
    for _ in 0..1500 {
        let (l, d1, d2) = (1 + rng.below(3), 1 + rng.below(3), 1 + rng.below(2));
        let s = match rng.below(4) {
            0 => {
                let k = 1 + rng.below(6);
                rng.pieces(PIECES, k)
            }
            1 => format!(
                "{}@{}.{}",
                rng.pieces(PIECES, l),
                rng.pieces(PIECES, d1),
                rng.pieces(PIECES, d2)
            ),
            2 => format!("{}@{}.com", rng.pieces(PIECES, l), rng.pieces(PIECES, d1)),
            _ => format!(
                "{}@example.{}",
                rng.pieces(PIECES, l),
                rng.pieces(PIECES, d2)
            ),
        };
        inputs.push(s);
    }
    let script = r#"
import sys, json
from pydantic import TypeAdapter, EmailStr, ValidationError
ta = TypeAdapter(EmailStr)
out = []
for s in json.load(open(sys.argv[1])):
    try:
        out.append(["ok", ta.validate_python(s)])
    except ValidationError as e:
        out.append(["err", e.errors()[0]["msg"].removeprefix("value is not a valid email address: ")])
print(json.dumps(out))
"#;
    let file = dir.path().join("inputs.json");
    std::fs::write(&file, serde_json::to_string(&inputs).unwrap()).unwrap();
    let answers: Vec<(String, String)> =
        serde_json::from_str(&run(&py, dir.path(), script, &[file.to_str().unwrap()])).unwrap();
    let mut mismatches = Vec::new();
    let mut accepted = 0;
    for (input, (kind, value)) in inputs.iter().zip(answers) {
        let ours = match cat2_auth::validate_email(input) {
            Ok(n) => ("ok".to_owned(), n),
            Err(cat2_auth::Error::InvalidEmail { reason, .. }) => ("err".to_owned(), reason),
            Err(e) => panic!("{input:?}: {e}"),
        };
        accepted += usize::from(kind == "ok");
        let same = if kind == "err" && value.contains("IDNA")
            || value.contains("is invalid (")
            || value.contains("characters (")
        {
            ours.0 == kind && ours.1.split('(').next() == value.split('(').next()
        } else {
            ours == (kind.clone(), value.clone())
        };
        if !same {
            mismatches.push(format!(
                "{input:?}: reference {kind} {value:?}, ours {} {:?}",
                ours.0, ours.1
            ));
        }
    }
    eprintln!(
        "{} inputs, {accepted} valid per reference, {} mismatches",
        inputs.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pieces(&mut self, from: &[&str], k: usize) -> String {
        (0..k).map(|_| from[self.below(from.len())]).collect()
    }
}
