//! cat2-client: talks to a Caterva2 server (cat2rs or the reference) over its
//! REST API, the way the official Python client does.
//!
//! Why a crate of its own: the `cat2rs` command line and Rust programs share
//! it, and it depends only on the wire (HTTP, JSON, Blosc2 frames), never on
//! the server's code, so it works against any Caterva2 server. Errors carry
//! the server's `detail` and status ([`Error::Server`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), cat2_client::Error> {
//! let mut client = cat2_client::Client::new("http://localhost:8000")?;
//! client.login("user@example.com", "password").await?;
//! let frame = client.fetch("@public/examples/stack-3d.b2nd", Some("5")).await?;
//! println!("{:?} {}", frame.shape, frame.dtype);
//! # Ok(()) }
//! ```

use std::path::Path;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status; `detail` is its explanation.
    #[error("{detail} (HTTP {status})")]
    Server { status: u16, detail: String },
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server's answer is not what a Caterva2 server sends: {0}")]
    Protocol(String),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The session cookie of a Caterva2 server.
const COOKIE: &str = "c2subauth";

/// A decoded array: shape, NumPy dtype string and C-order item bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<i64>,
    pub dtype: String,
    pub data: Vec<u8>,
}

/// Rust types that hold array items, by their NumPy dtype.
pub trait Item: Copy + Sized {
    /// NumPy's name of the kind and size (`"i4"`, `"f8"`, `"b1"`).
    const KIND: &'static str;
    fn from_le(bytes: &[u8]) -> Self;
    fn from_be(bytes: &[u8]) -> Self;
}

macro_rules! items {
    ($($t:ty => $k:literal),*) => {$(
        impl Item for $t {
            const KIND: &'static str = $k;
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().unwrap_or([0; std::mem::size_of::<$t>()]))
            }
            fn from_be(b: &[u8]) -> Self {
                <$t>::from_be_bytes(b.try_into().unwrap_or([0; std::mem::size_of::<$t>()]))
            }
        }
    )*};
}
items!(i8 => "i1", i16 => "i2", i32 => "i4", i64 => "i8", u8 => "u1", u16 => "u2", u32 => "u4",
       u64 => "u8", f32 => "f4", f64 => "f8");

impl Item for bool {
    const KIND: &'static str = "b1";
    fn from_le(b: &[u8]) -> Self {
        b.first().is_some_and(|&x| x != 0)
    }
    fn from_be(b: &[u8]) -> Self {
        Self::from_le(b)
    }
}

impl Array {
    /// The items as `T`, which must be the array's dtype (`i32` for `<i4`, `bool` for `|b1`...).
    pub fn values<T: Item>(&self) -> Result<Vec<T>> {
        let kind = self.dtype.trim_start_matches(['<', '>', '|', '=']);
        let kind = if kind == "?" { "b1" } else { kind };
        if kind != T::KIND {
            return Err(Error::Usage(format!(
                "the array holds {}, not {}",
                self.dtype,
                T::KIND
            )));
        }
        let size = std::mem::size_of::<T>();
        let big = self.dtype.starts_with('>');
        Ok(self
            .data
            .chunks_exact(size)
            .map(|c| if big { T::from_be(c) } else { T::from_le(c) })
            .collect())
    }

    /// The array as an `ndarray` array of `T`.
    pub fn to_ndarray<T: Item>(&self) -> Result<ndarray::ArrayD<T>> {
        let shape: Vec<usize> = self.shape.iter().map(|&n| n.max(0) as usize).collect();
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), self.values()?)
            .map_err(|e| Error::Protocol(e.to_string()))
    }

    /// The array as a Blosc2 NDArray frame (one chunk), as uploads and appends send it.
    pub fn to_cframe(&self) -> Result<Vec<u8>> {
        let itemsize = numpy_itemsize(&self.dtype)?;
        let chunks: Vec<i32> = self
            .shape
            .iter()
            .map(|&n| i32::try_from(n.max(1)).unwrap_or(i32::MAX))
            .collect();
        let spec = cat2_blosc2::ArraySpec {
            shape: self.shape.clone(),
            chunks: chunks.clone(),
            blocks: chunks,
            dtype: self.dtype.clone(),
            cparams: cat2_blosc2::CParams::zstd_shuffle(itemsize),
            urlpath: None,
        };
        cat2_blosc2::NdArray::from_buffer(&spec, &self.data)
            .and_then(|a| a.to_cframe())
            .map_err(|e| Error::Usage(format!("cannot encode the array: {e}")))
    }
}

/// Bytes per item of a simple NumPy dtype string (`<i4` → 4, `|b1` → 1).
fn numpy_itemsize(dtype: &str) -> Result<usize> {
    let kind = dtype.trim_start_matches(['<', '>', '|', '=']);
    if kind == "?" {
        return Ok(1);
    }
    kind.get(1..)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Usage(format!("{dtype} is not a simple dtype (such as <i4)")))
}

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

use cat2_proto::url_path as encode_path;

impl Client {
    /// A client of the server at `url` (`http://host:port`), not logged in.
    pub fn new(url: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| Error::Transport {
                url: url.to_string(),
                source,
            })?;
        Ok(Client {
            base: url.trim_end_matches('/').to_string(),
            http,
            cookie: None,
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Logs in; later requests carry the session.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/auth/jwt/login", self.base))
                    .form(&[("username", user), ("password", password)]),
            )
            .await?;
        let cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|kv| kv.starts_with(&format!("{COOKIE}=")))
            .ok_or_else(|| Error::Protocol("the login answer sets no session cookie".into()))?;
        self.cookie = Some(cookie.to_string());
        Ok(())
    }

    /// The session cookie (`c2subauth=…`), to save and reuse with [`Client::with_cookie`].
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// Uses a session saved earlier instead of logging in.
    pub fn with_cookie(mut self, cookie: &str) -> Client {
        self.cookie = Some(cookie.to_string());
        self
    }

    /// Ends the session on the server and forgets it.
    pub async fn logout(&mut self) -> Result<()> {
        if self.cookie.is_some() {
            self.send(self.http.post(format!("{}/auth/jwt/logout", self.base)))
                .await?;
        }
        self.cookie = None;
        Ok(())
    }

    /// Adds a user (superusers only); answers the server's message.
    pub async fn adduser(&self, email: &str, password: &str, superuser: bool) -> Result<String> {
        let body =
            serde_json::json!({"username": email, "password": password, "superuser": superuser});
        as_string(
            self.post_json(format!("{}/api/adduser/", self.base), &body)
                .await?,
        )
    }

    /// Deletes a user and their @personal files (superusers only); answers the server's message.
    pub async fn deluser(&self, email: &str) -> Result<String> {
        let url = format!("{}/api/deluser/{}", self.base, encode_path(email));
        let resp = self.send(self.http.get(url)).await?;
        as_string(self.json(resp).await?)
    }

    /// The users (id, email, is_active, is_superuser, is_verified), or the one with this e-mail.
    pub async fn listusers(&self, email: Option<&str>) -> Result<Vec<Value>> {
        let mut req = self.http.get(format!("{}/api/listusers/", self.base));
        if let Some(e) = email {
            req = req.query(&[("username", e)]);
        }
        let resp = self.send(req).await?;
        match self.json(resp).await? {
            Value::Array(users) => Ok(users),
            other => Err(Error::Protocol(format!("listusers: {other}"))),
        }
    }

    /// Appends rows (along the first axis) to an array; answers its new shape.
    pub async fn append(&self, path: &str, rows: &Array) -> Result<Vec<i64>> {
        let part = reqwest::multipart::Part::bytes(rows.to_cframe()?).file_name("append.b2nd");
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = format!("{}/api/append/{}", self.base, encode_path(path));
        let resp = self.send(self.http.post(url).multipart(form)).await?;
        match self.json(resp).await? {
            Value::Array(dims) => Ok(dims.iter().filter_map(Value::as_i64).collect()),
            other => Err(Error::Protocol(format!("append: {other}"))),
        }
    }

    /// One chunk of an array, as the server stores it (a compressed Blosc2 chunk).
    pub async fn chunk(&self, path: &str, nchunk: i64) -> Result<Vec<u8>> {
        let url = format!("{}/api/chunk/{}", self.base, encode_path(path));
        let resp = self
            .send(self.http.get(url).query(&[("nchunk", nchunk)]))
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|source| Error::Transport {
                url: self.base.clone(),
                source,
            })
    }

    /// The URL that downloads a dataset.
    pub fn download_url(&self, path: &str) -> String {
        format!("{}/api/download/{}", self.base, encode_path(path))
    }

    /// The web GUI's page of a dataset.
    pub fn handle_url(&self, path: &str) -> String {
        format!("{}/roots/{}", self.base, encode_path(path))
    }

    fn with_session(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => req.header(reqwest::header::COOKIE, c),
            None => req,
        }
    }

    /// Sends a request; an error status becomes [`Error::Server`] with the answer's `detail`.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let req = self.with_session(req);
        let resp = req.send().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let detail = match serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").cloned())
        {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
            None => text,
        };
        Err(Error::Server {
            status: status.as_u16(),
            detail,
        })
    }

    async fn get_json(&self, route: &str, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let url = format!("{}/api/{route}/{}", self.base, encode_path(path));
        let resp = self.send(self.http.get(url).query(query)).await?;
        self.json(resp).await
    }

    async fn json(&self, resp: reqwest::Response) -> Result<Value> {
        let bytes = resp.bytes().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(e.to_string()))
    }

    async fn post_json(&self, url: String, body: &Value) -> Result<Value> {
        let resp = self
            .send(
                self.http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
            )
            .await?;
        self.json(resp).await
    }

    /// The roots this session may see (`@public`, and `@shared`, `@personal` once logged in).
    pub async fn roots(&self) -> Result<Vec<String>> {
        let resp = self
            .send(self.http.get(format!("{}/api/roots", self.base)))
            .await?;
        match self.json(resp).await? {
            Value::Object(m) => Ok(m.keys().cloned().collect()),
            other => Err(Error::Protocol(format!("roots: {other}"))),
        }
    }

    /// Every file below a directory (or the dataset itself), relative to it.
    pub async fn list(&self, path: &str) -> Result<Vec<String>> {
        match self.get_json("list", path, &[]).await? {
            Value::Array(items) => Ok(items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()),
            other => Err(Error::Protocol(format!("list: {other}"))),
        }
    }

    /// The metadata of a dataset, as the server answers it.
    pub async fn info(&self, path: &str) -> Result<Value> {
        self.get_json("info", path, &[]).await
    }

    /// A selection of an array (`slice` in `/api/fetch`'s syntax, `"1:3, ::2"`), decoded.
    pub async fn fetch(&self, path: &str, slice: Option<&str>) -> Result<Array> {
        let url = format!("{}/api/fetch/{}", self.base, encode_path(path));
        let mut req = self.http.get(url);
        if let Some(s) = slice.filter(|s| !s.trim().is_empty()) {
            req = req.query(&[("slice_", s)]);
        }
        let bytes = self
            .send(req)
            .await?
            .bytes()
            .await
            .map_err(|source| Error::Transport {
                url: self.base.clone(),
                source,
            })?;
        decode_array(&bytes)
    }

    /// Streams a dataset's download to `dest`; answers the bytes written. Regular files come
    /// back as their original bytes; arrays as `.b2nd` frames.
    pub async fn download(
        &self,
        path: &str,
        dest: &Path,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        let url = format!("{}/api/download/{}", self.base, encode_path(path));
        let resp = self.send(self.http.get(url)).await?;
        let total = resp.content_length();
        let io = |source| Error::Io {
            path: dest.display().to_string(),
            source,
        };
        let mut out = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut stream = resp.bytes_stream();
        let mut written = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|source| Error::Transport {
                url: self.base.clone(),
                source,
            })?;
            out.write_all(&piece).await.map_err(io)?;
            written += piece.len() as u64;
            progress(written, total);
        }
        out.flush().await.map_err(io)?;
        Ok(written)
    }

    /// Streams a local file to `remote` (a path, or a directory to put it in); answers the
    /// path the server stored it at.
    pub async fn upload(
        &self,
        local: &Path,
        remote: &str,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<String> {
        let io = |source| Error::Io {
            path: local.display().to_string(),
            source,
        };
        let file = tokio::fs::File::open(local).await.map_err(io)?;
        let total = file.metadata().await.map_err(io)?.len();
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into());
        let mut sent = 0u64;
        let stream = tokio_util::io::ReaderStream::new(file).map(move |piece| {
            if let Ok(p) = &piece {
                sent += p.len() as u64;
                progress(sent, total);
            }
            piece
        });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
                .file_name(name);
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = format!("{}/api/upload/{}", self.base, encode_path(remote));
        let resp = self.send(self.http.post(url).multipart(form)).await?;
        as_string(self.json(resp).await?)
    }

    /// Removes a file or directory; answers the path removed.
    pub async fn remove(&self, path: &str) -> Result<String> {
        let url = format!("{}/api/remove/{}", self.base, encode_path(path));
        let resp = self.send(self.http.post(url)).await?;
        as_string(self.json(resp).await?)
    }

    /// Moves (renames) `src` to `dst`; answers the new path.
    pub async fn move_to(&self, src: &str, dst: &str) -> Result<String> {
        let body = serde_json::json!({"src": src, "dst": dst});
        as_string(
            self.post_json(format!("{}/api/move/", self.base), &body)
                .await?,
        )
    }

    /// Copies `src` to `dst`; answers the new path.
    pub async fn copy_to(&self, src: &str, dst: &str) -> Result<String> {
        let body = serde_json::json!({"src": src, "dst": dst});
        as_string(
            self.post_json(format!("{}/api/copy/", self.base), &body)
                .await?,
        )
    }

    /// Unfolds an HDF5 file into proxies; answers the new directory's name.
    pub async fn unfold(&self, path: &str) -> Result<String> {
        let url = format!("{}/api/unfold/{}", self.base, encode_path(path));
        let resp = self.send(self.http.post(url)).await?;
        as_string(self.json(resp).await?)
    }

    /// Saves the expression `expression` over `operands` (name → dataset path) at `path`,
    /// lazy or computed; answers the stored path. This is `where` done right: the whole
    /// expression travels, not only its condition.
    pub async fn lazyexpr(
        &self,
        path: &str,
        expression: &str,
        operands: &[(String, String)],
        compute: bool,
    ) -> Result<String> {
        let ops: serde_json::Map<String, Value> = operands
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let body = serde_json::json!({
            "name": null, "expression": expression, "func": null, "operands": ops,
            "dtype": null, "shape": null, "compute": compute,
        });
        let url = format!("{}/api/upload_lazyarr/{}", self.base, encode_path(path));
        as_string(self.post_json(url, &body).await?)
    }
}

fn as_string(v: Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Error::Protocol(format!("expected a string, got {other}"))),
    }
}

/// Decodes an answer of `/api/fetch`: a Blosc2 NDArray frame (or a super-chunk frame of bytes).
pub fn decode_array(frame: &[u8]) -> Result<Array> {
    if let Ok(arr) = cat2_blosc2::NdArray::from_cframe(frame) {
        let data = arr.to_vec().map_err(|e| Error::Protocol(e.to_string()))?;
        return Ok(Array {
            shape: arr.shape(),
            dtype: arr.dtype(),
            data,
        });
    }
    let sc = cat2_blosc2::SChunk::from_cframe(frame)
        .map_err(|e| Error::Protocol(format!("not a Blosc2 frame: {e}")))?;
    let items = sc.nbytes() / sc.typesize().max(1) as i64;
    let data = sc
        .slice(0, items)
        .map_err(|e| Error::Protocol(e.to_string()))?;
    Ok(Array {
        shape: vec![data.len() as i64],
        dtype: "|u1".into(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_for_urls() {
        assert_eq!(encode_path("@shared/a b/x.b2nd"), "@shared/a%20b/x.b2nd");
        assert_eq!(
            encode_path("/@public/!_attrs_.json"),
            "@public/!_attrs_.json"
        );
    }

    #[test]
    fn frames_decode_to_typed_items() {
        let spec = cat2_blosc2::ArraySpec {
            shape: vec![2, 3],
            chunks: vec![2, 3],
            blocks: vec![1, 3],
            dtype: "<i4".into(),
            cparams: cat2_blosc2::CParams::zstd_shuffle(4),
            urlpath: None,
        };
        let data: Vec<u8> = (0..6i32).flat_map(i32::to_le_bytes).collect();
        let frame = cat2_blosc2::NdArray::from_buffer(&spec, &data)
            .unwrap()
            .to_cframe()
            .unwrap();
        let arr = decode_array(&frame).unwrap();
        assert_eq!(
            (arr.shape, arr.dtype, arr.data),
            (vec![2, 3], "<i4".to_string(), data)
        );
        assert!(decode_array(b"not a frame").is_err());
    }

    #[test]
    fn items_come_typed_and_as_ndarray() {
        let arr = Array {
            shape: vec![2, 2],
            dtype: ">i2".into(),
            data: vec![0, 1, 0, 2, 0xff, 0xfd, 0, 4],
        };
        assert_eq!(arr.values::<i16>().unwrap(), [1, 2, -3, 4]);
        assert!(arr.values::<i32>().is_err());
        let nd = arr.to_ndarray::<i16>().unwrap();
        assert_eq!(nd[[1, 0]], -3);
        let flags = Array {
            shape: vec![3],
            dtype: "|b1".into(),
            data: vec![1, 0, 1],
        };
        assert_eq!(flags.values::<bool>().unwrap(), [true, false, true]);
        let again = decode_array(
            &Array {
                shape: vec![2, 2],
                dtype: "<f4".into(),
                data: [1.5f32, 2.0, -1.0, 0.25]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            }
            .to_cframe()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(again.values::<f32>().unwrap(), [1.5, 2.0, -1.0, 0.25]);
    }
}
