//! cat2-server: the Caterva2-compatible HTTP API and the web GUI.
//!
//! [`app`] builds the axum `Router` (tests drive it without a socket);
//! [`serve`] binds it. Handlers live in `api/`, one module per route group
//! (the web GUI's in `gui/`, templates in `templates/`, assets in `assets/`),
//! and stay thin: extract checked inputs (`extract`), run one operation of
//! `cat2-service` on the blocking pool (`blocking`), map its error once
//! (`error`), and stream bodies to and from storage (`stream`).
//!
//! Design choice: no caches and no index. Every request looks at the state
//! directory, so files that other processes (the reference server, a copy
//! tool, the upstream test-suite) put there are served at once.

#![forbid(unsafe_code)]

pub mod api;
pub mod blocking;
pub mod body;
pub mod config;
mod cors;
pub mod error;
pub mod extract;
pub mod gui;
mod listen;
pub mod session;
pub mod stream;

use std::sync::Arc;

use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use cat2_core::StateDir;
use cat2_service::{Accounts, Service, Settings};

pub use config::Config;
use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Every operation a request can ask for.
    pub service: Arc<Service>,
    pub config: Arc<Config>,
    /// The working memory all requests share (`total_memory_limit`).
    pub memory: Arc<cat2_core::budget::MemoryPool>,
    /// The storage all spilled answers share (`total_disk_limit`).
    pub spills: Arc<cat2_core::budget::SpillPool>,
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] cat2_core::Error),
    #[error(transparent)]
    Users(#[from] cat2_auth::Error),
    #[error("login is enabled, so the CATERVA2_SECRET environment variable (or a .env file) must hold the session signing secret; set it, or set `login = false` in the [server] table")]
    NoSecret,
    #[error("login is enabled, but no user database was opened")]
    NoUsers,
}

impl AppState {
    /// Opens the state directory (and, with login, its user database).
    /// `secret` signs session tokens; it is required when `config.login`.
    pub fn new(config: Config, secret: Option<&str>) -> Result<Self, StartError> {
        let state_dir = StateDir::open(&config.statedir)?;
        let users = match Self::session_secret(&config, secret)? {
            Some(_) => Some(cat2_auth::Users::open(state_dir.path())?),
            None => None,
        };
        Self::with_backends(config, secret, state_dir, users)
    }

    /// The secret that signs session tokens when `config` has login (and
    /// [`StartError::NoSecret`] without one); `None` without login, when
    /// there are no users to open either.
    pub fn session_secret<'s>(
        config: &Config,
        secret: Option<&'s str>,
    ) -> Result<Option<&'s str>, StartError> {
        if !config.login {
            return Ok(None);
        }
        secret
            .filter(|s| !s.is_empty())
            .map(Some)
            .ok_or(StartError::NoSecret)
    }

    /// A server of `state_dir` (on any storage), with `users` when
    /// `config` has login (opened by the caller, which knows where they
    /// live; see [`AppState::session_secret`]).
    pub fn with_backends(
        config: Config,
        secret: Option<&str>,
        state_dir: StateDir,
        users: Option<cat2_auth::Users>,
    ) -> Result<Self, StartError> {
        let accounts = match Self::session_secret(&config, secret)? {
            Some(secret) => Some(Accounts {
                users: users.ok_or(StartError::NoUsers)?,
                tokens: cat2_auth::Tokens::new(secret),
            }),
            None => None,
        };
        if let Some(Err(e)) = config.publish_root().map(|r| r.local_dir()) {
            tracing::warn!("filled arrays cannot be published: {e}");
        }
        let settings = Settings {
            writes: config.write_policy(),
            publish_root: config.publish_root(),
            maxusers: config.maxusers,
            register: config.register,
            urlbase: config.urlbase.clone(),
        };
        Ok(AppState {
            service: Arc::new(Service::new(state_dir, accounts, settings)),
            memory: cat2_core::budget::MemoryPool::new(config.limits.total_memory),
            spills: cat2_core::budget::SpillPool::new(config.limits.total_disk),
            config: Arc::new(config),
        })
    }

    /// A new request's budget (see [`extract::RequestBudget`]); answers
    /// too large for its memory are spilled into the state's storage.
    pub fn new_budget(&self) -> cat2_core::budget::Budget {
        cat2_core::budget::Budget::spilling_to(
            &self.config.limits,
            self.memory.clone(),
            self.service.state().storage_arc().clone(),
            self.spills.clone(),
        )
    }

    /// Whether the server has users (`login = true`).
    pub fn has_users(&self) -> bool {
        self.service.accounts().is_some()
    }

    /// The state served.
    pub fn state_dir(&self) -> &StateDir {
        self.service.state()
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let routes = if state.has_users() {
        api::routes().merge(api::users::routes(state.config.register))
    } else {
        api::routes()
    };
    let routes = routes.merge(gui::routes(&state));
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(close_after_refusal))
        .layer(axum::middleware::from_fn(cors::cors))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// A request refused before its body was read (a 401 for an upload, a quota
/// pre-check) leaves the rest of that body on the connection, which then
/// cannot carry another request: say so with `Connection: close`, so clients
/// open a fresh connection instead of failing on a closed one.
async fn close_after_refusal(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let has_body = req
        .headers()
        .contains_key(axum::http::header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut resp = next.run(req).await;
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn not_found(_uri: Uri) -> impl IntoResponse {
    ApiError::not_found()
}

async fn method_not_allowed(_method: Method) -> impl IntoResponse {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// Binds `config.listen` and serves until SIGTERM or Ctrl-C.
pub async fn serve(state: AppState) -> std::io::Result<()> {
    let listen = state.config.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(addr = %listener.local_addr()?, statedir = %state.state_dir().path().display(), "serving");
    let limits = state.config.connections.clone();
    listen::serve(listener, app(state), &limits, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
