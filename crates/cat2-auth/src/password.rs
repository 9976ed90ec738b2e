//! Password hashes in the formats of pwdlib as fastapi-users configures it.
//!
//! fastapi-users builds `PasswordHash((Argon2Hasher(), BcryptHasher()))`: new hashes are argon2id
//! with argon2-cffi's defaults (`$argon2id$v=19$m=65536,t=3,p=4$<16-byte salt>$<32-byte hash>`,
//! standard base64 without padding); bcrypt hashes (`$2a$`, `$2b$`, `$2x$`, `$2y$`) are still
//! accepted. After a successful check, any hash that is not argon2id with exactly those
//! parameters is "upgraded": the caller gets a fresh default hash to store.
//!
//! Argon2 strings are parsed here rather than by the `password-hash` crate so that we accept
//! what argon2-cffi accepts: the `v=` field is optional (an absent version means Argon2 1.0,
//! `0x10`), and argon2i/argon2d hashes verify as well.

use argon2::{Algorithm, Argon2, Params, Version};

use crate::{Error, Result};

/// argon2-cffi's defaults, which pwdlib's `Argon2Hasher()` uses.
const M_COST: u32 = 65536;
const T_COST: u32 = 3;
const P_COST: u32 = 4;
const HASH_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// The result of checking a password against a stored hash (pwdlib's `verify_and_update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The password does not match.
    No,
    /// The password matches; `rehash` is a new default hash to store when the old one used
    /// another scheme or other parameters.
    Yes { rehash: Option<String> },
    /// The stored string is neither an argon2 nor a bcrypt hash (pwdlib raises
    /// `UnknownHashError` here).
    UnknownHash,
}

/// Hashes `password` the way new fastapi-users accounts are hashed.
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| Error::Random(e.to_string()))?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String> {
    let params = Params::new(M_COST, T_COST, P_COST, Some(HASH_LEN)).map_err(|e| Error::Hash {
        reason: e.to_string(),
    })?;
    let mut out = [0u8; HASH_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Hash {
            reason: e.to_string(),
        })?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        b64_encode(salt),
        b64_encode(&out)
    ))
}

/// Checks `password` against `hash` and says whether the hash should be replaced.
pub fn verify_and_update(password: &str, hash: &str) -> Result<Verified> {
    if let Some(parsed) = Argon2Hash::parse(hash) {
        if !parsed.verify(password) {
            return Ok(Verified::No);
        }
        let rehash = if parsed.is_default() {
            None
        } else {
            Some(self::hash(password)?)
        };
        return Ok(Verified::Yes { rehash });
    }
    if is_bcrypt(hash) {
        if !verify_bcrypt(password, hash) {
            return Ok(Verified::No);
        }
        // bcrypt is never the current scheme, so a match always upgrades.
        return Ok(Verified::Yes {
            rehash: Some(self::hash(password)?),
        });
    }
    Ok(Verified::UnknownHash)
}

/// `true` if `password` matches `hash` (argon2 or bcrypt); unknown formats never match.
pub fn verify(password: &str, hash: &str) -> bool {
    if let Some(parsed) = Argon2Hash::parse(hash) {
        parsed.verify(password)
    } else {
        is_bcrypt(hash) && verify_bcrypt(password, hash)
    }
}

/// A random password like the one `srv_utils.add_user` makes when none is given: 8 ASCII
/// letters.
pub fn generate() -> Result<String> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::with_capacity(8);
    while out.len() < 8 {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
        // Rejection sampling keeps the choice uniform: 208 = 4 * 52.
        for b in buf.into_iter().filter(|&b| b < 208) {
            if out.len() < 8 {
                out.push(char::from(LETTERS[usize::from(b % 52)]));
            }
        }
    }
    Ok(out)
}

/// pwdlib's bcrypt pattern: `$2[abxy]$NN$` + 22 salt + 31 hash characters.
fn is_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    let body_ok = |s: &[u8]| {
        s.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/' || c == b'+')
    };
    b.len() == 60
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && body_ok(&b[7..])
}

fn verify_bcrypt(password: &str, hash: &str) -> bool {
    // Python's bcrypt 5 refuses passwords over 72 bytes (fastapi-users then fails with a
    // server error); such a password simply does not match here.
    password.len() <= 72 && bcrypt::verify(password, hash).unwrap_or(false)
}

/// A parsed `$argon2<type>[$v=<n>]$m=<n>,t=<n>,p=<n>$<salt>$<hash>` string.
#[derive(Debug)]
struct Argon2Hash {
    algorithm: Algorithm,
    /// `None` when the string has no `v=` field (Argon2 1.0).
    version: Option<u32>,
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2Hash {
    fn parse(s: &str) -> Option<Argon2Hash> {
        let mut parts = s.split('$');
        if !parts.next()?.is_empty() {
            return None;
        }
        let algorithm = match parts.next()? {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return None,
        };
        let mut field = parts.next()?;
        let mut version = None;
        if let Some(v) = field.strip_prefix("v=") {
            version = Some(parse_decimal(v)?);
            field = parts.next()?;
        }
        let mut kv = field.split(',');
        let m = parse_decimal(kv.next()?.strip_prefix("m=")?)?;
        let t = parse_decimal(kv.next()?.strip_prefix("t=")?)?;
        let p = parse_decimal(kv.next()?.strip_prefix("p=")?)?;
        if kv.next().is_some() {
            return None;
        }
        let salt = b64_decode(parts.next()?)?;
        let hash = b64_decode(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Argon2Hash {
            algorithm,
            version,
            m,
            t,
            p,
            salt,
            hash,
        })
    }

    fn verify(&self, password: &str) -> bool {
        let version = match self.version {
            None | Some(0x10) => Version::V0x10,
            Some(0x13) => Version::V0x13,
            Some(_) => return false,
        };
        let Ok(params) = Params::new(self.m, self.t, self.p, Some(self.hash.len())) else {
            return false;
        };
        let mut out = vec![0u8; self.hash.len()];
        if Argon2::new(self.algorithm, version, params)
            .hash_password_into(password.as_bytes(), &self.salt, &mut out)
            .is_err()
        {
            return false;
        }
        constant_time_eq(&out, &self.hash)
    }

    /// argon2-cffi's `check_needs_rehash` against its defaults is false only for this.
    fn is_default(&self) -> bool {
        self.algorithm == Algorithm::Argon2id
            && self.version == Some(0x13)
            && (self.m, self.t, self.p) == (M_COST, T_COST, P_COST)
            && self.salt.len() == SALT_LEN
            && self.hash.len() == HASH_LEN
    }
}

fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 without padding, as in PHC strings.
fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes standard base64; padding is tolerated, other characters are not.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.is_empty() || s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by pwdlib (fastapi-users' `PasswordHelper().hash("foobar11")`).
    const PWDLIB_FOOBAR11: &str =
        "$argon2id$v=19$m=65536,t=3,p=4$hver+X6/wGaXFA6A1zjMXg$sZN/CT8shRIWm6LGiTh/CLFadOf84W82Ow+QkVtbIsc";

    #[test]
    fn verifies_a_pwdlib_hash_without_rehash() {
        assert_eq!(
            verify_and_update("foobar11", PWDLIB_FOOBAR11).unwrap(),
            Verified::Yes { rehash: None }
        );
        assert_eq!(
            verify_and_update("foobar12", PWDLIB_FOOBAR11).unwrap(),
            Verified::No
        );
    }

    #[test]
    fn new_hashes_have_the_pwdlib_shape_and_verify() {
        let h = hash("s3cret-pass").unwrap();
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts[..4], ["", "argon2id", "v=19", "m=65536,t=3,p=4"]);
        assert_eq!(parts[4].len(), 22); // 16 bytes
        assert_eq!(parts[5].len(), 43); // 32 bytes
        assert!(verify("s3cret-pass", &h));
        assert!(!verify("s3cret-pasS", &h));
        assert_ne!(h, hash("s3cret-pass").unwrap(), "salts are random");
    }

    #[test]
    fn known_answer_with_fixed_salt() {
        // Same password and salt as PWDLIB_FOOBAR11: the digest must come out identical.
        let salt = b64_decode("hver+X6/wGaXFA6A1zjMXg").unwrap();
        assert_eq!(hash_with_salt("foobar11", &salt).unwrap(), PWDLIB_FOOBAR11);
    }

    #[test]
    fn other_argon2_parameters_verify_and_ask_for_rehash() {
        // A well-formed string with a made-up digest.
        let weak = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzYWx0$HcBVyaJ9N7CRvUKYBYwxKw";
        let mut out = vec![0u8; 16];
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, Some(16)).unwrap(),
        )
        .hash_password_into(b"pw", b"somesaltsalt", &mut out)
        .unwrap();
        let own = format!(
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzYWx0${}",
            b64_encode(&out)
        );
        match verify_and_update("pw", &own).unwrap() {
            Verified::Yes { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(verify_and_update("px", &own).unwrap(), Verified::No);
        // A made-up digest parses but does not match.
        assert_eq!(verify_and_update("pw", weak).unwrap(), Verified::No);
    }

    #[test]
    fn argon2i_and_missing_version_verify() {
        let mut out = vec![0u8; 16];
        Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(8, 1, 1, Some(16)).unwrap(),
        )
        .hash_password_into(b"pw", b"somesaltsalt", &mut out)
        .unwrap();
        let h = format!("$argon2i$m=8,t=1,p=1$c29tZXNhbHRzYWx0${}", b64_encode(&out));
        assert!(verify("pw", &h));
        assert!(!verify("pw", &h.replace("$argon2i$", "$argon2i$v=19$")));
    }

    #[test]
    fn bcrypt_verifies_and_upgrades() {
        let h = bcrypt::hash_with_salt("hunter22", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        assert!(is_bcrypt(&h));
        match verify_and_update("hunter22", &h).unwrap() {
            Verified::Yes { rehash: Some(new) } => assert!(new.starts_with("$argon2id$")),
            other => panic!("{other:?}"),
        }
        assert_eq!(verify_and_update("hunter23", &h).unwrap(), Verified::No);
        for prefix in ["$2a$", "$2y$"] {
            assert!(verify("hunter22", &h.replacen("$2b$", prefix, 1)));
        }
        assert!(!verify(&"x".repeat(73), &h));
    }

    #[test]
    fn unknown_formats() {
        for h in [
            "",
            "plain",
            "$argon2id$v=19$m=1,t=1$abc$def",
            "$1$abc$def",
            "$argon2x$v=19$m=8,t=1,p=1$a$b",
        ] {
            assert_eq!(
                verify_and_update("whatever", h).unwrap(),
                Verified::UnknownHash,
                "{h}"
            );
            assert!(!verify("whatever", h));
        }
    }

    #[test]
    fn base64_round_trip() {
        for n in 0..20 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let e = b64_encode(&data);
            assert!(!e.contains('='));
            if n > 0 {
                assert_eq!(b64_decode(&e).unwrap(), data);
            }
        }
        assert_eq!(b64_encode(b"somesaltsalt"), "c29tZXNhbHRzYWx0");
        assert!(b64_decode("a*b").is_none());
    }

    #[test]
    fn generated_passwords_are_8_letters() {
        for _ in 0..20 {
            let p = generate().unwrap();
            assert_eq!(p.len(), 8);
            assert!(p.bytes().all(|b| b.is_ascii_alphabetic()));
        }
    }
}
