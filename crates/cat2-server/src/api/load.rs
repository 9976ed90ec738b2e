//! `POST /api/load_from_url/{path}`: the server fetches a URL and stores the
//! body like an upload.
//!
//! A server that fetches URLs for its users is a door into the network it
//! runs in, so by default it refuses hosts that resolve to loopback,
//! private, link-local or otherwise non-public addresses (every redirect hop
//! is checked again, and the connection goes to the address that was
//! checked, so DNS cannot change its answer in between). The body is
//! streamed to disk and bounded in size and time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{DatasetPath, LoggedIn};
use crate::stream::Sink;
use crate::AppState;

const MAX_REDIRECTS: usize = 5;

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240)
}

fn file_name_of(url: &url::Url) -> String {
    url.path_segments()
        .and_then(|mut segs| segs.rfind(|s| !s.is_empty()))
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|s| cat2_core::write::upload::safe_file_name(s).is_ok())
        .unwrap_or_else(|| "download".to_string())
}

/// Fetches `url` into `sink`, following redirects with the address checks.
async fn fetch_to(app: &AppState, mut url: url::Url, mut sink: Sink) -> ApiResult<()> {
    let cfg = &app.config;
    let deadline = Instant::now() + Duration::from_secs(cfg.load_from_url_timeout.max(1));
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::bad_request(format!(
                "only http and https URLs can be loaded, not {url}"
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| ApiError::bad_request(format!("{url} names no host")))?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot resolve {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(ApiError::bad_request(format!("cannot resolve {host}")));
        }
        if !cfg.allow_private_urls {
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(ApiError::bad_request(format!(
                    "{host} resolves to {}, which is not a public address; this server does not fetch from its own network",
                    bad.ip()
                )));
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&lookup_host, &addrs)
            .timeout(remaining)
            .build()
            .map_err(ApiError::internal)?;
        let mut resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ApiError::bad_request(format!("fetching {url} failed: {e}")))?;
        if resp.status().is_redirection() {
            let next = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
                .ok_or_else(|| ApiError::bad_request(format!("{url} redirects nowhere")))?;
            url = next;
            continue;
        }
        if !resp.status().is_success() {
            return Err(ApiError::bad_request(format!(
                "fetching {url} failed: {}",
                resp.status()
            )));
        }
        let max = cfg.load_from_url_max_size;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(ApiError::bad_request(format!(
                "{url} is larger than the {max} bytes this server loads"
            )));
        }
        let mut total: u64 = 0;
        while let Some(piece) = resp
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(format!("fetching {url} failed: {e}")))?
        {
            total += piece.len() as u64;
            if total > max {
                return Err(ApiError::bad_request(format!(
                    "{url} is larger than the {max} bytes this server loads"
                )));
            }
            if !sink.write(&piece).await {
                break;
            }
        }
        sink.finish().await?;
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

pub async fn post_load_from_url(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
    body: axum::body::Bytes,
) -> ApiResult<Json<String>> {
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(raw) = fields.get("remote_url") else {
        return Err(ApiError::validation(
            "missing",
            &["body", "remote_url"],
            "Field required",
            Value::Null,
        ));
    };
    let url = url::Url::parse(raw)
        .map_err(|e| ApiError::bad_request(format!("remote_url is not a URL: {e}")))?;
    let file_name = file_name_of(&url);
    let service = app.service.clone();
    let (c, p, f) = (caller.clone(), path.clone(), file_name.clone());
    let upload = blocking(move || service.start_upload_named(&c, &p, &f)).await?;
    let timeout = Duration::from_secs(app.config.load_from_url_timeout.max(1));
    let sink = Sink::new(upload.io());
    match tokio::time::timeout(timeout, fetch_to(&app, url.clone(), sink)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "fetching {url} took longer than {} s",
                timeout.as_secs()
            )))
        }
    }
    let logical = blocking(move || {
        app.service
            .finish_upload(&caller, &path, &file_name, upload)
    })
    .await?;
    Ok(Json(logical.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for ok in ["8.8.8.8", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
    }

    #[test]
    fn file_names_come_from_the_last_segment() {
        let u = url::Url::parse("https://example.org/a/b/data%20set.h5?x=1").unwrap();
        assert_eq!(file_name_of(&u), "data set.h5");
        let u = url::Url::parse("https://example.org/").unwrap();
        assert_eq!(file_name_of(&u), "download");
    }
}
