//! `GET /healthz`: whether this server can answer requests now — for a load
//! balancer in front of replicas (haproxy's `option httpchk`). 200 `ok`
//! when its storage and its user database answer; else 503 with what does
//! not (its reason in the body and the log), so the balancer sends requests
//! to the other replicas until this one recovers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub async fn get_healthz(State(state): State<AppState>) -> Response {
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || service.health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(why)) => {
            tracing::warn!("health check failed: {why}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unavailable: {why}\n"),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!("health check panicked: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response()
        }
    }
}
