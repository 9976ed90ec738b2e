//! HS256 JWTs as fastapi-users makes them: session tokens of `JWTStrategy` (the `c2subauth`
//! cookie) and reset-password tokens of `BaseUserManager.forgot_password`.
//!
//! Signatures are checked by `jsonwebtoken`; the registered claims are then checked here the
//! way PyJWT does (`exp` compared with `<=` against the current time with no leeway, `nbf` and
//! `iat` not in the future, `aud` a string or a list of strings that contains ours, `sub` and
//! `jti` strings when present), so a token is accepted here exactly when the reference would
//! accept it, with one deliberate difference: a token without `exp` is refused (fastapi-users
//! always sets one; PyJWT alone would not require it).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::users::canonical_uuid;
use crate::{password, Error, Result, User, Users};

/// Audience of session tokens (`JWTStrategy.token_audience`).
pub const SESSION_AUDIENCE: &str = "fastapi-users:auth";
/// caterva2's session lifetime: 12 hours.
pub const SESSION_LIFETIME_SECS: u64 = 3600 * 12;
/// Audience of reset-password tokens (`RESET_PASSWORD_TOKEN_AUDIENCE`).
pub const RESET_AUDIENCE: &str = "fastapi-users:reset";
/// fastapi-users' reset-password token lifetime: 1 hour.
pub const RESET_LIFETIME_SECS: u64 = 3600;

/// Makes and checks tokens signed with the server secret (`CATERVA2_SECRET`).
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { secret: <redacted> }")
    }
}

#[derive(Serialize)]
struct SessionClaims<'a> {
    sub: &'a str,
    aud: [&'a str; 1],
    exp: u64,
}

#[derive(Serialize)]
struct ResetClaims<'a> {
    sub: &'a str,
    password_fgpt: String,
    aud: &'a str,
    exp: u64,
}

impl Tokens {
    /// Uses the UTF-8 bytes of `secret` as the HMAC key, as PyJWT does.
    pub fn new(secret: &str) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A session token: `{"sub": user_id, "aud": ["fastapi-users:auth"], "exp": now + 12 h}`.
    pub fn session(&self, user_id: &str) -> Result<String> {
        self.sign(&SessionClaims {
            sub: user_id,
            aud: [SESSION_AUDIENCE],
            exp: now_secs() + SESSION_LIFETIME_SECS,
        })
    }

    /// The canonical user id of a valid session token (right signature, our audience, not
    /// expired), or `None`. Whether that user exists and is active is the caller's check.
    pub fn verify_session(&self, token: &str) -> Option<String> {
        let claims = self.decode(token, SESSION_AUDIENCE)?;
        canonical_uuid(claims.get("sub")?.as_str()?)
    }

    /// A reset-password token for `user`: `{"sub", "password_fgpt", "aud":
    /// "fastapi-users:reset", "exp": now + 1 h}`, where the fingerprint is an argon2id hash
    /// of the user's current password hash, so the token dies when the password changes.
    pub fn reset(&self, user: &User) -> Result<String> {
        self.sign(&ResetClaims {
            sub: &user.id,
            password_fgpt: password::hash(&user.hashed_password)?,
            aud: RESET_AUDIENCE,
            exp: now_secs() + RESET_LIFETIME_SECS,
        })
    }

    /// Checks a reset-password token like fastapi-users' `reset_password` and returns its
    /// user. Every failure (bad or expired token, unknown or inactive user, password changed
    /// since) is [`Error::BadResetToken`], shown as `RESET_PASSWORD_BAD_TOKEN`.
    pub fn verify_reset(&self, token: &str, users: &Users) -> Result<User> {
        let bad = |reason| Error::BadResetToken { reason };
        let claims = self
            .decode(token, RESET_AUDIENCE)
            .ok_or(bad("invalid or expired token"))?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(bad("no subject"))?;
        let fingerprint = claims
            .get("password_fgpt")
            .and_then(Value::as_str)
            .ok_or(bad("no password fingerprint"))?;
        let id = canonical_uuid(sub).ok_or(bad("subject is not a user id"))?;
        let user = users.get_by_id(&id)?.ok_or(bad("unknown user"))?;
        if !password::verify(&user.hashed_password, fingerprint) {
            return Err(bad("password changed since the token was made"));
        }
        if !user.is_active {
            return Err(bad("inactive user"));
        }
        Ok(user)
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|source| Error::Token { source })
    }

    /// Verifies the signature, then the claims as PyJWT does for `audience=[aud]`.
    fn decode(&self, token: &str, aud: &str) -> Option<Map<String, Value>> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        claims_valid(&claims, aud, now).then_some(claims)
    }
}

fn claims_valid(claims: &Map<String, Value>, aud: &str, now: f64) -> bool {
    let time = |name: &str| claims.get(name).map(py_int);
    if let Some(iat) = time("iat") {
        match iat {
            Some(iat) if (iat as f64) <= now => {}
            _ => return false,
        }
    }
    if let Some(nbf) = time("nbf") {
        match nbf {
            Some(nbf) if (nbf as f64) <= now => {}
            _ => return false,
        }
    }
    match time("exp") {
        Some(Some(exp)) if (exp as f64) > now => {}
        _ => return false,
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == aud,
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string) && list.iter().any(|v| v.as_str() == Some(aud))
        }
        _ => false,
    };
    let string_or_absent = |name: &str| claims.get(name).is_none_or(Value::is_string);
    aud_ok && string_or_absent("sub") && string_or_absent("jti")
}

/// Python's `int(x)` for the JSON values PyJWT may meet in a time claim.
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret";
    const ID: &str = "8f10b5e1-079e-4056-b568-0ba6bd012c73";

    fn raw(claims: &Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn session_round_trip_and_claims() {
        let tokens = Tokens::new(SECRET);
        let t = tokens.session(ID).unwrap();
        assert_eq!(tokens.verify_session(&t).as_deref(), Some(ID));
        assert_eq!(Tokens::new("other").verify_session(&t), None);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[SESSION_AUDIENCE]);
        let claims: Value = jsonwebtoken::decode(
            &t,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], ID);
        assert_eq!(claims["aud"], json!(["fastapi-users:auth"]));
        let exp = claims["exp"].as_u64().unwrap();
        assert!(exp.abs_diff(now_secs() + SESSION_LIFETIME_SECS) <= 2);
        assert!(format!("{tokens:?}").contains("redacted"));
    }

    #[test]
    fn session_claim_checks() {
        let tokens = Tokens::new(SECRET);
        let now = now_secs();
        let ok = |c: Value| tokens.verify_session(&raw(&c, SECRET));
        let aud = json!(["fastapi-users:auth"]);
        assert_eq!(
            ok(json!({"sub": ID, "aud": aud, "exp": now + 60})).as_deref(),
            Some(ID)
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": "fastapi-users:auth", "exp": now + 60})).as_deref(),
            Some(ID)
        );
        assert_eq!(
            ok(json!({"sub": ID.to_uppercase(), "aud": aud, "exp": now + 60})).as_deref(),
            Some(ID)
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": ["x", "fastapi-users:auth"], "exp": now + 60})).as_deref(),
            Some(ID)
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": aud, "exp": now - 1})),
            None,
            "expired"
        );
        assert_eq!(ok(json!({"sub": ID, "aud": aud})), None, "no exp");
        assert_eq!(ok(json!({"sub": ID, "exp": now + 60})), None, "no aud");
        assert_eq!(
            ok(json!({"sub": ID, "aud": ["fastapi-users:reset"], "exp": now + 60})),
            None
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": ["fastapi-users:auth", 1], "exp": now + 60})),
            None
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": aud, "exp": now + 60, "nbf": now + 30})),
            None
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": aud, "exp": now + 60, "iat": now + 30})),
            None
        );
        assert_eq!(
            ok(json!({"sub": ID, "aud": aud, "exp": now + 60, "iat": now - 30})).as_deref(),
            Some(ID)
        );
        assert_eq!(ok(json!({"sub": 5, "aud": aud, "exp": now + 60})), None);
        assert_eq!(
            ok(json!({"sub": "nope", "aud": aud, "exp": now + 60})),
            None
        );
        assert_eq!(ok(json!({"aud": aud, "exp": now + 60})), None);
        assert_eq!(tokens.verify_session("garbage"), None);
        // Other algorithms are refused even with the right key.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": ID, "aud": aud, "exp": now + 60}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(tokens.verify_session(&hs512), None);
    }

    #[test]
    fn reset_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        let tokens = Tokens::new(SECRET);
        let user = users
            .add("r@example.com", Some("firstpassword"), false)
            .unwrap()
            .user()
            .clone();
        let t = tokens.reset(&user).unwrap();
        assert_eq!(tokens.verify_reset(&t, &users).unwrap(), user);
        assert!(
            tokens.verify_session(&t).is_none(),
            "reset tokens are not sessions"
        );
        let session = tokens.session(&user.id).unwrap();
        let err = tokens.verify_reset(&session, &users).unwrap_err();
        assert_eq!(err.to_string(), "RESET_PASSWORD_BAD_TOKEN");
        assert!(Tokens::new("other").verify_reset(&t, &users).is_err());

        // Changing the password kills the token.
        users.set_password(&user.id, "secondpassword").unwrap();
        assert!(matches!(
            tokens.verify_reset(&t, &users),
            Err(Error::BadResetToken { .. })
        ));

        // Deleted users too.
        let user = users.get_by_id(&user.id).unwrap().unwrap();
        let t = tokens.reset(&user).unwrap();
        users.delete("r@example.com").unwrap();
        assert!(matches!(
            tokens.verify_reset(&t, &users),
            Err(Error::BadResetToken {
                reason: "unknown user"
            })
        ));
    }

    #[test]
    fn python_int_conversion() {
        assert_eq!(py_int(&json!(5)), Some(5));
        assert_eq!(py_int(&json!(5.9)), Some(5));
        assert_eq!(py_int(&json!(true)), Some(1));
        assert_eq!(py_int(&json!(" 1_000 ")), Some(1000));
        assert_eq!(py_int(&json!("x")), None);
        assert_eq!(py_int(&json!(null)), None);
    }
}
