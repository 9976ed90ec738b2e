//! Logging in and out, registration, password resets, and user
//! administration — routes that exist only when the server has users
//! (`login = true`), as in the reference.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use cat2_service::UserView;

use crate::blocking::blocking;
use crate::body::{json_value, required_str, string_type};
use crate::error::{ApiError, ApiResult};
use crate::extract::LoggedIn;
use crate::session::{cleared_cookie, session_cookie};
use crate::AppState;

pub fn routes(register: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/auth/jwt/login", post(post_login))
        .route("/auth/jwt/logout", post(post_logout))
        .route("/auth/forgot-password", post(post_forgot_password))
        .route("/auth/reset-password", post(post_reset_password))
        .route("/api/adduser/", post(post_adduser))
        // GET as the reference and its client (`Client.deluser`) have it;
        // POST and DELETE for everything else (the web GUI deletes users
        // through its prompt, a POST), as a change of state should be.
        .route(
            "/api/deluser/{username}",
            get(deluser).post(deluser).delete(deluser),
        )
        .route("/api/listusers/", get(get_listusers));
    if register {
        r.route("/auth/register", post(post_register))
    } else {
        r
    }
}

/// The public view of a user (no password hash).
fn user_json(u: &UserView) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "is_active": u.is_active,
        "is_superuser": u.is_superuser,
        "is_verified": u.is_verified,
    })
}

fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /auth/jwt/login`: an OAuth2 password form; 204 and a session cookie.
async fn post_login(State(app): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let fields = form_fields(&body);
    let field = |k: &str| {
        fields.get(k).cloned().ok_or_else(|| {
            ApiError::validation("missing", &["body", k], "Field required", Value::Null)
        })
    };
    let (username, password) = (field("username")?, field("password")?);
    let token = blocking(move || app.service.login(&username, &password)).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&token))],
    )
        .into_response())
}

/// `POST /auth/jwt/logout`: needs a valid session; clears the cookie.
async fn post_logout(LoggedIn(_): LoggedIn) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cleared_cookie())],
    )
        .into_response()
}

/// `POST /auth/register`: self-registration (when `register = true`).
async fn post_register(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let v = json_value(&body)?;
    let (email, password) = (required_str(&v, "email")?, required_str(&v, "password")?);
    if let Err(e) = cat2_auth::validate_email(&email) {
        return Err(ApiError::validation(
            "value_error",
            &["body", "email"],
            &format!("value is not a valid email address: {e}"),
            Value::String(email),
        ));
    }
    if let Err(cat2_auth::Error::InvalidPassword { reason }) =
        cat2_auth::validate_password(&password)
    {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: json!({ "code": "REGISTER_INVALID_PASSWORD", "reason": reason }),
            headers: Vec::new(),
        });
    }
    let created = blocking(move || app.service.register(&email, &password)).await?;
    match created {
        Some(u) => Ok((StatusCode::CREATED, Json(user_json(&u))).into_response()),
        None => Err(ApiError::bad_request("REGISTER_USER_ALREADY_EXISTS")),
    }
}

/// `POST /auth/forgot-password`: there is no mail server, so the reset link
/// goes to the server log (at warning level, so the default log shows it).
async fn post_forgot_password(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let v = json_value(&body)?;
    let email = required_str(&v, "email")?;
    blocking(move || app.service.forgot_password(&email)).await?;
    Ok((StatusCode::ACCEPTED, Json(Value::Null)).into_response())
}

/// `POST /auth/reset-password`.
async fn post_reset_password(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let v = json_value(&body)?;
    let (token, password) = (required_str(&v, "token")?, required_str(&v, "password")?);
    blocking(move || app.service.reset_password(&token, &password))
        .await
    .map_err(|e| {
        if e.status == StatusCode::BAD_REQUEST && e.detail == json!("InvalidPasswordException") {
            ApiError {
                status: StatusCode::BAD_REQUEST,
                detail: json!({"code": "RESET_PASSWORD_INVALID_PASSWORD", "reason": "Password should be at least 8 characters"}),
                headers: Vec::new(),
            }
        } else if e.status == StatusCode::BAD_REQUEST {
            ApiError::bad_request("RESET_PASSWORD_BAD_TOKEN")
        } else {
            e
        }
    })?;
    Ok(Json(Value::Null))
}

/// `POST /api/adduser/` (superusers). The answer never repeats the password.
pub(crate) async fn post_adduser(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    body: axum::body::Bytes,
) -> ApiResult<Json<String>> {
    if !app.has_users() {
        return Err(ApiError::not_found());
    }
    if !caller.is_superuser {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Only superusers can add users",
        ));
    }
    let v = json_value(&body)?;
    let username = required_str(&v, "username")?;
    let password = match v.get("password") {
        None => {
            return Err(ApiError::validation(
                "missing",
                &["body", "password"],
                "Field required",
                v.clone(),
            ))
        }
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(string_type("password", other)),
    };
    let superuser = match v.get("superuser") {
        None => {
            return Err(ApiError::validation(
                "missing",
                &["body", "superuser"],
                "Field required",
                v.clone(),
            ))
        }
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::validation(
                "bool_type",
                &["body", "superuser"],
                "Input should be a valid boolean",
                other.clone(),
            ))
        }
    };
    let text = blocking(move || {
        app.service
            .add_user(&caller, &username, password.as_deref(), superuser)
    })
    .await?;
    Ok(Json(text))
}

/// `GET`, `POST` or `DELETE /api/deluser/{username}` (superusers); also
/// removes the user's `@personal`.
///
/// The GET is for the official client, which sends no `Sec-Fetch-Site`; a
/// browser's GET that says it comes from another site (a link, an image) is
/// refused, so a superuser's session cannot be made to delete a user by a
/// page elsewhere (the session cookie is `SameSite=lax`, which lets such
/// GETs through).
pub(crate) async fn deluser(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    method: Method,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> ApiResult<Json<String>> {
    let from_elsewhere = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| matches!(site, "cross-site" | "same-site"));
    if method == Method::GET && from_elsewhere {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "users are not deleted by a GET from another site; send POST or DELETE",
        ));
    }
    let text = blocking(move || app.service.delete_user(&caller, &username)).await?;
    Ok(Json(text))
}

/// `GET /api/listusers/[?username=EMAIL]` (any logged-in user).
pub(crate) async fn get_listusers(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<Vec<Value>>> {
    let filter = q.get("username").cloned();
    let users = blocking(move || app.service.list_users(&caller, filter.as_deref())).await?;
    Ok(Json(users.iter().map(user_json).collect()))
}
