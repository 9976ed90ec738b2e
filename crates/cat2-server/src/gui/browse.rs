//! Fragments of the browser: the dataset list and a dataset's panel (title,
//! tabs, metadata). The Data tab's tables are in `table.rs`, the Display
//! tab's renderings in `display.rs`, the viewer's frames in `viewer.rs`.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use cat2_core::view;
use cat2_core::DsPath;

use super::pages::BrowseQuery;
use super::{human_size, url_path, Html};
use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath};
use crate::AppState;

/// One row of the dataset list.
struct Row {
    alias: String,
    path: String,
    url: String,
    label: String,
    size: String,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListFragment {
    rows: Vec<Row>,
    logged_in: bool,
    search: String,
    total: usize,
}

/// Aliases in list order: `a` … `z`, `aa`, `ab` … (what prompt commands name).
fn alias(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A path short enough for the list; the full path is in the tooltip.
fn short_label(path: &str) -> String {
    if path.chars().count() < 40 {
        return path.to_string();
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() >= 3 {
        format!("{}/…/{}", parts[0], parts[parts.len() - 1])
    } else {
        let head: String = path.chars().take(37).collect();
        format!("{head}…")
    }
}

/// The most rows the list renders; the filter narrows the rest down.
const MAX_ROWS: usize = 2000;

/// `GET /gui/list?roots=…&search=…[&current=path]`: every file of the checked
/// roots whose path contains the filter (ignoring case).
pub async fn list(
    State(app): State<AppState>,
    caller: CallerId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = BrowseQuery::parse(raw.as_deref(), &caller);
    let current = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "current")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    let service = app.service.clone();
    let who = caller.clone();
    let search = q.search.clone();
    let (rows, total) = blocking(move || {
        let needle = search.to_lowercase();
        let paths = service.files(&who, &q.roots, current)?;
        let matching: Vec<(String, Option<u64>)> = paths
            .into_iter()
            .filter(|(p, _)| needle.is_empty() || p.to_lowercase().contains(&needle))
            .collect();
        let total = matching.len();
        let rows = matching
            .into_iter()
            .take(MAX_ROWS)
            .enumerate()
            .map(|(i, (path, size))| {
                // A path that is not a file of a root (inside a container)
                // shows the size of the file it lies in.
                let size = size
                    .or_else(|| service.stored_size(&who, &DsPath::parse(&path).ok()?))
                    .map(human_size)
                    .unwrap_or_default();
                Row {
                    alias: alias(i),
                    url: url_path(&path),
                    label: short_label(&path),
                    path,
                    size,
                }
            })
            .collect::<Vec<_>>();
        Ok::<_, ApiError>((rows, total))
    })
    .await?;
    Ok(Html(ListFragment {
        rows,
        logged_in: caller.user_id.is_some(),
        search: q.search,
        total,
    })
    .into_response())
}

/// One tab of a dataset's panel.
struct Tab {
    id: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "info.html")]
struct InfoFragment {
    path: String,
    url: String,
    tabs: Vec<Tab>,
    meta: Vec<(String, String)>,
    vlmeta: Vec<(String, String)>,
    logged_in: bool,
    /// The shape, for the data table and the viewer.
    shape: Vec<i64>,
    shape_json: String,
    dtype: String,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// MIME types the Display tab renders.
pub(super) fn displayable(name: &str) -> Option<String> {
    if name.ends_with(".ipynb") {
        return Some("application/x-ipynb+json".into());
    }
    let mime = mime_guess::from_path(name).first()?;
    let m = mime.essence_str().to_string();
    (m.starts_with("text/") || m.starts_with("image/") || m == "application/json").then_some(m)
}

/// `GET /gui/info/{path}`: the dataset's panel: title, tabs, metadata.
pub async fn info(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Response> {
    let raw = path.to_string();
    let service = app.service.clone();
    let who = caller.clone();
    let panel = blocking(move || service.panel(&who, &path)).await?;
    let (info, is_file) = (
        serde_json::to_value(panel.info).unwrap_or(Value::Null),
        panel.is_regular_file,
    );
    let mut meta = Vec::new();
    let mut vlmeta = Vec::new();
    if let Value::Object(map) = &info {
        for (k, v) in map {
            match (k.as_str(), v) {
                ("vlmeta", Value::Object(m)) => {
                    vlmeta.extend(m.iter().map(|(k, v)| (k.clone(), value_text(v))))
                }
                ("schunk", Value::Object(m)) => {
                    for (k2, v2) in m {
                        if k2 == "vlmeta" {
                            if let Value::Object(m2) = v2 {
                                vlmeta.extend(m2.iter().map(|(k, v)| (k.clone(), value_text(v))));
                            }
                        } else {
                            meta.push((k2.clone(), value_text(v2)));
                        }
                    }
                }
                _ => meta.push((k.clone(), value_text(v))),
            }
        }
    }
    let shape: Vec<i64> = info
        .get("shape")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let dtype = info.get("dtype").map(value_text).unwrap_or_default();
    let has_shape = info.get("shape").is_some_and(Value::is_array);
    let mut tabs = Vec::new();
    if has_shape {
        tabs.push(Tab {
            id: "data",
            label: "Data",
        });
        let numeric = dtype
            .trim_start_matches(['<', '>', '|', '='])
            .starts_with(['u', 'i', 'f', 'b']);
        if numeric && view::frame_axes(&shape).is_some() {
            tabs.push(Tab {
                id: "viewer",
                label: if shape.len() == 2
                    || (shape.len() == 3 && view::frame_axes(&shape) == Some((0, true)))
                {
                    "Image"
                } else {
                    "Tomography"
                },
            });
        }
    } else if is_file && displayable(&raw).is_some() {
        tabs.push(Tab {
            id: "display",
            label: "Display",
        });
    }
    tabs.push(Tab {
        id: "meta",
        label: "Meta",
    });
    Ok(Html(InfoFragment {
        url: url_path(&raw),
        path: raw,
        tabs,
        meta,
        vlmeta,
        logged_in: caller.user_id.is_some(),
        shape_json: serde_json::to_string(&shape).unwrap_or_else(|_| "[]".into()),
        shape,
        dtype,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_run_like_spreadsheet_columns() {
        let got: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702].map(alias).to_vec();
        assert_eq!(got, ["a", "b", "z", "aa", "ab", "az", "ba", "zz", "aaa"]);
    }

    #[test]
    fn long_paths_are_shortened_in_the_middle() {
        assert_eq!(short_label("@shared/x.h5"), "@shared/x.h5");
        assert_eq!(
            short_label("@shared/kevlar/entry/data/data_000001.b2nd"),
            "@shared/…/data_000001.b2nd"
        );
    }
}
