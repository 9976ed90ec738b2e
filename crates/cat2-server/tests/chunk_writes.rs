//! `POST /api/chunk` and `POST /api/publish` through the router (no socket):
//! authentication, the answers and their texts, the ETag that every write
//! moves, and the publish the last slot starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use cat2_blosc2::{ArraySpec, CParams, Compressor, NdArray};
use cat2_server::{app, AppState, Config};
use serde_json::{json, Value};
use tower::ServiceExt;

const NCHUNKS: i64 = 5;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    cookie: String,
    uid: String,
    publish_root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let publish_root = dir.path().join("published");
    let config = Config {
        statedir: dir.path().join("state"),
        login: true,
        publish_root: Some(publish_root.to_string_lossy().into_owned()),
        ..Config::default()
    };
    let state = AppState::new(config, Some("a test secret")).unwrap();
    let auth = state.service.accounts().unwrap().clone();
    let user = auth
        .users
        .create("writer@example.com", "foobar11", false)
        .unwrap();
    let cookie = format!("c2subauth={}", auth.tokens.session(&user.id).unwrap());
    let array = state
        .state_dir()
        .path()
        .join("personal")
        .join(&user.id)
        .join("run.b2nd");
    std::fs::create_dir_all(array.parent().unwrap()).unwrap();
    let spec = ArraySpec {
        shape: vec![1000 * NCHUNKS],
        chunks: vec![1000],
        blocks: vec![250],
        dtype: "<i4".into(),
        cparams: CParams::zstd_shuffle(4),
        urlpath: None,
    };
    NdArray::uninit(&spec).unwrap().save(&array).unwrap();
    Fixture {
        _dir: dir,
        app: app(state),
        cookie,
        uid: user.id,
        publish_root,
    }
}

fn chunk_of(value: i32) -> Vec<u8> {
    let mut cp = CParams::zstd_shuffle(4);
    cp.blocksize = 1000;
    let data: Vec<u8> = (0..1000).flat_map(|_| value.to_le_bytes()).collect();
    Compressor::new(&cp).unwrap().compress(&data).unwrap()
}

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let etag = resp
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    let body = to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer { status, etag, body }
}

async fn post_chunk(f: &Fixture, query: &str, chunk: Vec<u8>, cookie: bool) -> Answer {
    let mut req = Request::post(format!("/api/chunk/@personal/run.b2nd{query}"))
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if cookie {
        req = req.header(header::COOKIE, &f.cookie);
    }
    send(&f.app, req.body(Body::from(chunk)).unwrap()).await
}

async fn get(f: &Fixture, uri: &str, range: Option<&str>) -> Answer {
    let mut req = Request::get(uri).header(header::COOKIE, &f.cookie);
    if let Some(r) = range {
        req = req.header(header::RANGE, r);
    }
    send(&f.app, req.body(Body::empty()).unwrap()).await
}

async fn info_etag(f: &Fixture) -> String {
    get(f, "/api/info/@personal/run.b2nd", None)
        .await
        .etag
        .unwrap()
}

#[tokio::test]
async fn writing_a_chunk_needs_a_user() {
    let f = fixture();
    let a = post_chunk(&f, "?nchunk=0", chunk_of(1), false).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = post_chunk(&f, "", chunk_of(1), true).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["detail"][0]["loc"], json!(["query", "nchunk"]));
}

#[tokio::test]
async fn a_write_answers_the_fill_and_a_second_one_conflicts() {
    let f = fixture();
    let a = post_chunk(&f, "?nchunk=0", chunk_of(1), true).await;
    assert_eq!(a.status, StatusCode::OK);
    // Key order is part of the answer.
    assert_eq!(
        String::from_utf8(a.body).unwrap(),
        r#"{"nchunk":0,"written":1,"nchunks":5,"state":"filling"}"#
    );
    let a = post_chunk(&f, "?nchunk=0", chunk_of(2), true).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(
        a.json(),
        json!({"detail": "chunk 0 of run.b2nd was already written"})
    );
    let a = post_chunk(&f, "?nchunk=8", chunk_of(2), true).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = post_chunk(&f, "?nchunk=1", Vec::new(), true).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json(), json!({"detail": "no chunk was sent"}));
    let req = Request::post("/api/chunk/@personal/%2E%2E/x.b2nd?nchunk=0")
        .header(header::COOKIE, &f.cookie)
        .body(Body::from(chunk_of(1)))
        .unwrap();
    assert_eq!(send(&f.app, req).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_write_moves_the_etag_that_info_and_ranged_reads_share() {
    let f = fixture();
    let before = info_etag(&f).await;
    let zeros = {
        let mut cp = CParams::zstd_shuffle(4);
        cp.blocksize = 1000;
        cat2_blosc2::special_chunk(&cp, 4000, false).unwrap()
    };
    assert_eq!(
        post_chunk(&f, "?nchunk=0", zeros.clone(), true)
            .await
            .status,
        StatusCode::OK
    );
    let first = info_etag(&f).await;
    assert_ne!(first, before);
    assert_eq!(
        post_chunk(&f, "?nchunk=1", zeros, true).await.status,
        StatusCode::OK
    );
    let second = info_etag(&f).await;
    assert_ne!(second, first);
    assert!(second.starts_with("\"2-"), "{second}");
    let ranged = get(&f, "/api/fetch/@personal/run.b2nd", Some("bytes=0-31")).await;
    assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.etag.as_deref(), Some(second.as_str()));
}

fn published(f: &Fixture) -> PathBuf {
    f.publish_root
        .join("@personal")
        .join(&f.uid)
        .join("run.b2nd")
}

async fn wait_for(path: &Path) {
    for _ in 0..200 {
        if path.is_file() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn the_last_slot_publishes_and_publishing_can_be_asked_for() {
    let f = fixture();
    let publish = || async {
        let req = Request::post("/api/publish/@personal/run.b2nd")
            .header(header::COOKIE, &f.cookie)
            .body(Body::empty())
            .unwrap();
        send(&f.app, req).await
    };
    let a = publish().await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["detail"]
        .as_str()
        .unwrap()
        .contains("5 of its 5 chunks still unwritten"));

    let mut last = Value::Null;
    for n in 0..NCHUNKS {
        last = post_chunk(&f, &format!("?nchunk={n}"), chunk_of(n as i32), true)
            .await
            .json();
    }
    assert_eq!(last["state"], "publishing");
    wait_for(&published(&f)).await;
    let copy = NdArray::open(&published(&f)).unwrap();
    let values: Vec<i32> = copy
        .to_vec()
        .unwrap()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let want: Vec<i32> = (0..NCHUNKS as i32)
        .flat_map(|n| std::iter::repeat_n(n, 1000))
        .collect();
    assert_eq!(values, want);

    let a = publish().await;
    assert_eq!(a.status, StatusCode::OK);
    let dest = a.json()["published"].as_str().unwrap().to_string();
    assert_eq!(dest, published(&f).to_string_lossy());
    let info = get(&f, "/api/info/@personal/run.b2nd", None).await.json();
    assert_eq!(info["schunk"]["vlmeta"]["fill_state"], "published");
    assert_eq!(info["schunk"]["vlmeta"]["published_url"], dest.as_str());
}
