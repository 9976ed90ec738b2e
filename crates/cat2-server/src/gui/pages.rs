//! Whole pages: the browser (home) and the account pages (login, logout,
//! register, forgot/reset password). Account forms post to the `/auth/...`
//! API with a few lines of JavaScript; nothing here checks a password.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

use super::Html;
use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::CallerId;
use crate::AppState;

/// What every page shows around its content.
pub struct Chrome {
    /// Whether the server has users at all (`login = true`).
    pub login: bool,
    pub register: bool,
    /// The e-mail of the logged-in user.
    pub user: Option<String>,
    /// Disk usage text (and percent of the quota, if there is one).
    pub usage: Option<(String, Option<u64>)>,
}

/// The chrome for `caller` (reads the user table and walks the state dir: blocking).
pub async fn chrome(app: &AppState, caller: &CallerId) -> ApiResult<Chrome> {
    let (service, quota) = (app.service.clone(), app.config.quota);
    let who = caller.clone();
    let (user, usage) = blocking(move || {
        let user = service.email_of(&who)?;
        let usage = match user {
            Some(_) => {
                let used = service.usage()?;
                let text = match quota {
                    Some(q) => format!("{} of {}", super::human_size(used), super::human_size(q)),
                    None => super::human_size(used),
                };
                Some((
                    text,
                    quota.map(|q| (used.saturating_mul(100) / q.max(1)).min(100)),
                ))
            }
            None => None,
        };
        Ok::<_, crate::error::ApiError>((user, usage))
    })
    .await?;
    Ok(Chrome {
        login: app.has_users(),
        register: app.config.register,
        user,
        usage,
    })
}

/// `GET /gui/usage`: the banner's disk usage, for the page to refresh after a
/// change (`{"text": "2.1 MB of 10.0 GB", "percent": 0}`; `null` when logged out).
pub async fn usage(
    State(app): State<AppState>,
    caller: CallerId,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let chrome = chrome(&app, &caller).await?;
    Ok(axum::Json(match chrome.usage {
        Some((text, percent)) => serde_json::json!({ "text": text, "percent": percent }),
        None => serde_json::Value::Null,
    }))
}

/// The roots a caller may see, in the order the panel shows them.
pub fn visible_roots(caller: &CallerId) -> Vec<&'static str> {
    if caller.user_id.is_some() {
        vec!["@personal", "@shared", "@public"]
    } else {
        vec!["@public"]
    }
}

/// The query of a browser URL: checked roots, filter, full screen.
#[derive(Debug, Default, Clone)]
pub struct BrowseQuery {
    pub roots: Vec<String>,
    pub search: String,
    pub fullscreen: bool,
}

impl BrowseQuery {
    pub fn parse(raw: Option<&str>, caller: &CallerId) -> BrowseQuery {
        let mut q = BrowseQuery::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*k {
                "roots" => q.roots.push(v.into_owned()),
                "search" => q.search = v.into_owned(),
                "fullscreen" => q.fullscreen = v == "1",
                _ => {}
            }
        }
        let visible = visible_roots(caller);
        q.roots.retain(|r| visible.contains(&r.as_str()));
        q.roots.dedup();
        if q.roots.is_empty() {
            q.roots.push(visible[visible.len() - 1].to_string());
        }
        q
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    roots: Vec<(&'static str, bool)>,
    search: String,
    path: String,
    fullscreen: bool,
}

/// `GET /`.
pub async fn home(
    State(app): State<AppState>,
    caller: CallerId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    page(app, caller, raw, String::new()).await
}

/// `GET /roots/{path}`: the browser with a dataset open.
pub async fn home_at(
    State(app): State<AppState>,
    caller: CallerId,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    page(app, caller, raw, path).await
}

async fn page(
    app: AppState,
    caller: CallerId,
    raw: Option<String>,
    path: String,
) -> ApiResult<Response> {
    let q = BrowseQuery::parse(raw.as_deref(), &caller);
    let chrome = chrome(&app, &caller).await?;
    let roots = visible_roots(&caller)
        .into_iter()
        .map(|r| (r, q.roots.iter().any(|c| c == r)))
        .collect();
    Ok(Html(HomePage {
        chrome,
        roots,
        search: q.search,
        path,
        fullscreen: q.fullscreen,
    })
    .into_response())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    /// Which form: login, logout, register, forgot, forgot-ok, reset.
    form: &'static str,
    title: &'static str,
    token: String,
    message: String,
}

async fn account(
    app: AppState,
    caller: CallerId,
    form: &'static str,
    title: &'static str,
    token: String,
    message: String,
) -> ApiResult<Response> {
    // Like the reference: a logged-in user has nothing to do on these pages.
    if caller.user_id.is_some() && form != "logout" {
        return Ok(Redirect::to("/").into_response());
    }
    let chrome = chrome(&app, &caller).await?;
    let mut resp = Html(AccountPage {
        chrome,
        form,
        title,
        token,
        message,
    })
    .into_response();
    if form == "logout" {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            crate::session::cleared_cookie()
                .parse()
                .map_err(crate::error::ApiError::internal)?,
        );
    }
    Ok(resp)
}

fn message_of(raw: Option<&str>) -> String {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "message")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub async fn login(
    State(app): State<AppState>,
    caller: CallerId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    account(
        app,
        caller,
        "login",
        "Sign in",
        String::new(),
        message_of(raw.as_deref()),
    )
    .await
}

pub async fn logout(State(app): State<AppState>) -> ApiResult<Response> {
    account(
        app,
        CallerId::default(),
        "logout",
        "Signed out",
        String::new(),
        String::new(),
    )
    .await
}

pub async fn register(State(app): State<AppState>, caller: CallerId) -> ApiResult<Response> {
    account(
        app,
        caller,
        "register",
        "Sign up",
        String::new(),
        String::new(),
    )
    .await
}

pub async fn forgot_password(State(app): State<AppState>, caller: CallerId) -> ApiResult<Response> {
    account(
        app,
        caller,
        "forgot",
        "Reset your password",
        String::new(),
        String::new(),
    )
    .await
}

pub async fn forgot_password_ok(
    State(app): State<AppState>,
    caller: CallerId,
) -> ApiResult<Response> {
    account(
        app,
        caller,
        "forgot-ok",
        "Check your e-mail",
        String::new(),
        String::new(),
    )
    .await
}

pub async fn reset_password(
    State(app): State<AppState>,
    caller: CallerId,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    account(
        app,
        caller,
        "reset",
        "Choose a new password",
        token,
        String::new(),
    )
    .await
}
