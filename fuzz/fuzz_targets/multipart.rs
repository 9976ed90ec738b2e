//! Multipart upload bodies, through the whole router as a client sends
//! them (`POST /api/upload/@personal/`, logged in): the parts parsed
//! (axum's multer), the `file` part streamed to storage under the name it
//! gives, and checked as what its suffix claims. No answer may be a 5xx.
//! Input: the boundary, a newline, then the body.
#![no_main]

use std::sync::OnceLock;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request};
use axum::Router;
use cat2_server::{app, AppState, Config};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Server {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    app: Router,
    cookie: String,
    personal: std::path::PathBuf,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        let config = Config {
            statedir: dir.path().join("state"),
            login: true,
            quota: Some(256 << 20),
            ..Config::default()
        };
        let state = AppState::new(config, Some("a fuzzing secret")).expect("a state");
        let auth = state.service.accounts().expect("users").clone();
        let user = auth
            .users
            .create("fuzz@example.com", "a long password", false)
            .expect("a user");
        let cookie = format!(
            "c2subauth={}",
            auth.tokens.session(&user.id).expect("a session")
        );
        let personal = dir.path().join("state").join("personal").join(&user.id);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Server {
            _dir: dir,
            rt,
            app: app(state),
            cookie,
            personal,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (boundary, body) = (&data[..nl], &data[nl + 1..]);
    let Ok(boundary) = std::str::from_utf8(boundary) else {
        return;
    };
    let s = server();
    let Ok(req) = Request::post("/api/upload/@personal/")
        .header(header::COOKIE, &s.cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let (status, answer) = s.rt.block_on(async {
        let resp = s.app.clone().oneshot(req).await.expect("an answer");
        let status = resp.status();
        (status, to_bytes(resp.into_body(), 1 << 20).await)
    });
    assert!(
        !status.is_server_error(),
        "{status}: {:?}",
        answer.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    let _ = std::fs::remove_dir_all(&s.personal);
});
