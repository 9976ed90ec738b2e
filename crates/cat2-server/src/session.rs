//! Sessions: who a request comes from, read from the `c2subauth` cookie.
//!
//! Tokens are stateless fastapi-users JWTs (12 h); every request looks its
//! user up in `db.sqlite` again, so users added, deactivated or deleted by
//! another process take effect at once.

use axum::http::{header, HeaderMap};

/// The cookie holding the session token (the reference's name).
pub const COOKIE: &str = "c2subauth";

/// The session token of a request, if it carries one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Path=/; SameSite=lax")
}

/// `Set-Cookie` value that ends a session in the browser.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=lax")
}
