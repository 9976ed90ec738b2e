//! Fragments of the browser: the dataset list, a dataset's panel (tabs,
//! metadata), its data table and the display of files (text, JSON,
//! Markdown, images).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use cat2_core::dataset::{self, FileKind};
use cat2_core::view::{self, Values};
use cat2_core::{listing, DsPath, Entry};

use super::pages::BrowseQuery;
use super::{human_size, url_path, Html};
use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::CallerId;
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
    let sd = app.state_dir.clone();
    let who = caller.clone();
    let search = q.search.clone();
    let (rows, total) = blocking(move || {
        let needle = search.to_lowercase();
        let mut paths = Vec::new();
        for root in &q.roots {
            let dir = DsPath::parse(root)?;
            let loc = sd.locate(&dir, who.as_caller())?;
            for name in listing::list(&loc)? {
                paths.push(format!("{root}/{name}"));
            }
        }
        if let Some(c) = current {
            if !paths.contains(&c) {
                paths.push(c);
            }
        }
        paths.sort();
        let matching: Vec<String> = paths
            .into_iter()
            .filter(|p| needle.is_empty() || p.to_lowercase().contains(&needle))
            .collect();
        let total = matching.len();
        let rows = matching
            .into_iter()
            .take(MAX_ROWS)
            .enumerate()
            .map(|(i, path)| {
                let size = DsPath::parse(&path)
                    .and_then(|p| sd.locate(&p, who.as_caller()))
                    .ok()
                    .and_then(|loc| std::fs::metadata(&loc.fs).ok())
                    .map(|m| human_size(m.len()))
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
fn displayable(name: &str) -> Option<String> {
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
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let path = DsPath::parse(&raw)?;
    let sd = app.state_dir.clone();
    let who = caller.clone();
    let (info, is_file) = blocking(move || {
        let loc = sd.locate(&path, who.as_caller())?;
        if loc.entry == Entry::Missing || loc.entry == Entry::Dir {
            return Err(cat2_core::Error::NotFound {
                path: loc.logical.to_string(),
            });
        }
        let is_file = matches!(FileKind::of(&loc), Some(FileKind::Blob));
        let info = dataset::info_with(&sd, &loc, who.as_caller())?;
        Ok((serde_json::to_value(info).unwrap_or(Value::Null), is_file))
    })
    .await?;
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

/// The window's controls for one dimension.
struct DimControl {
    axis: usize,
    start: i64,
    size: i64,
    len: i64,
    max_start: i64,
    /// Whether the window already covers the whole dimension.
    whole: bool,
    /// Whether the size can change (the table's dimensions).
    viewed: bool,
}

#[derive(Template)]
#[template(path = "view.html")]
struct ViewFragment {
    shape: Vec<i64>,
    dims: Vec<DimControl>,
    /// Column indices, then rows of (row index, cells).
    columns: Vec<i64>,
    rows: Vec<TableRow>,
    dtype: String,
}

/// A row of the table: its index (for 2-D windows) and its cells.
type TableRow = (Option<i64>, Vec<String>);

fn numbers(raw: Option<&str>, key: &str) -> Vec<i64> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// `GET /gui/view/{path}?start=…&size=…`: a window of the data as a table.
/// The last two dimensions (the last one of a 1-D array) are the window's;
/// every other dimension shows the one position its start selects.
pub async fn view(
    State(app): State<AppState>,
    caller: CallerId,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let path = DsPath::parse(&raw)?;
    if let Some(page) = records(&app, &caller, &path, query.as_deref()).await? {
        return Ok(page);
    }
    let (starts, sizes) = (
        numbers(query.as_deref(), "start"),
        numbers(query.as_deref(), "size"),
    );
    let sd = app.state_dir.clone();
    let (shape, dims, values) = blocking(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        let shape = view::array_shape(&sd, &loc, caller.as_caller())?;
        let nd = shape.len();
        let first_view = nd.saturating_sub(2);
        let dims: Vec<(i64, i64, bool)> = shape
            .iter()
            .enumerate()
            .map(|(d, &len)| {
                let viewed = d >= first_view;
                let size = if viewed {
                    sizes.get(d).copied().unwrap_or(10).clamp(1, len.max(1))
                } else {
                    1
                };
                let start = starts
                    .get(d)
                    .copied()
                    .unwrap_or(0)
                    .clamp(0, (len - size).max(0));
                (start, size.min(len), viewed)
            })
            .collect();
        let slice = (nd > 0).then(|| {
            dims.iter()
                .map(|(s, n, _)| format!("{s}:{}", s + n))
                .collect::<Vec<_>>()
                .join(",")
        });
        let values = view::fetch_values(&sd, &loc, slice, caller.as_caller())?;
        Ok::<_, cat2_core::Error>((shape, dims, values))
    })
    .await?;
    let (columns, rows) = table(&dims, &values);
    let dims = dims
        .iter()
        .enumerate()
        .map(|(axis, &(start, size, viewed))| DimControl {
            axis,
            start,
            size,
            len: shape[axis],
            max_start: (shape[axis] - size).max(0),
            whole: size >= shape[axis],
            viewed,
        })
        .collect();
    Ok(Html(ViewFragment {
        shape,
        dims,
        columns,
        rows,
        dtype: values.dtype.numpy_str(),
    })
    .into_response())
}

#[derive(Template)]
#[template(path = "records.html")]
struct RecordsFragment {
    all_fields: Vec<String>,
    fields: Vec<String>,
    matching: usize,
    rows: Vec<(usize, Vec<String>)>,
    start: usize,
    size: usize,
    sortby: String,
    filter: String,
    filtered: bool,
}

/// The table of a 1-D record (structured) array: fields to show, a filter over
/// them, an order and a page; `None` for other datasets.
async fn records(
    app: &AppState,
    caller: &CallerId,
    path: &DsPath,
    query: Option<&str>,
) -> ApiResult<Option<Response>> {
    let mut q = view::RecordQuery {
        size: 20,
        ..Default::default()
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.trim().to_string();
        match &*k {
            "fields" if !v.is_empty() => q.fields.push(v),
            "filter" if !v.is_empty() => q.filter = Some(v),
            "sortby" if !v.is_empty() => q.sortby = Some(v),
            "start" => q.start = v.parse().unwrap_or(0),
            "size" => q.size = v.parse::<usize>().unwrap_or(20).clamp(1, 1000),
            _ => {}
        }
    }
    let (sd, who, path) = (app.state_dir.clone(), caller.clone(), path.clone());
    let query = q.clone();
    let page = blocking(move || {
        let loc = sd.locate(&path, who.as_caller())?;
        let shape = view::array_shape(&sd, &loc, who.as_caller())?;
        let [len] = shape[..] else { return Ok(None) };
        if len <= 0 {
            return Ok(None);
        }
        let probe = view::fetch_values(&sd, &loc, Some("0:1".into()), who.as_caller())?;
        if probe.dtype.fields().is_none() {
            return Ok(None);
        }
        view::record_page(&sd, &loc, who.as_caller(), len as usize, &query).map(Some)
    })
    .await?;
    Ok(page.map(|p| {
        Html(RecordsFragment {
            all_fields: p.all_fields,
            fields: p.fields,
            matching: p.matching,
            rows: p.rows,
            start: q.start,
            size: q.size,
            sortby: q.sortby.clone().unwrap_or_default(),
            filtered: q.filter.is_some(),
            filter: q.filter.unwrap_or_default(),
        })
        .into_response()
    }))
}

/// The cells of a window: columns along the last dimension, rows along the
/// one before it (if any).
fn table(dims: &[(i64, i64, bool)], values: &Values) -> (Vec<i64>, Vec<TableRow>) {
    let n = values.len();
    match dims {
        [] => (
            Vec::new(),
            vec![(None, (0..n).map(|i| values.format(i)).collect())],
        ),
        [(s, size, _)] => (
            (*s..s + size).collect(),
            vec![(None, (0..n).map(|i| values.format(i)).collect())],
        ),
        [.., (rs, rn, _), (cs, cn, _)] => {
            let cols: Vec<i64> = (*cs..cs + cn).collect();
            let width = cols.len().max(1);
            let rows = (0..*rn)
                .map(|r| {
                    let cells = (0..width)
                        .filter_map(|c| {
                            let i = r as usize * width + c;
                            (i < n).then(|| values.format(i))
                        })
                        .collect();
                    (Some(rs + r), cells)
                })
                .collect();
            (cols, rows)
        }
    }
}

#[derive(Template)]
#[template(path = "display.html")]
struct DisplayFragment {
    /// One of: json, markdown, text, image.
    kind: &'static str,
    text: String,
    url: String,
}

/// The most bytes of a file the Display tab shows.
const DISPLAY_MAX: usize = 4 << 20;

/// `GET /gui/display/{path}`: a file rendered by its type.
pub async fn display(
    State(app): State<AppState>,
    caller: CallerId,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let path = DsPath::parse(&raw)?;
    let mime = displayable(&raw).ok_or_else(|| {
        ApiError::bad_request(format!("{raw}: this kind of file is not displayed"))
    })?;
    let url = format!("/api/preview/{}", url_path(&raw));
    if mime.starts_with("image/") {
        return Ok(Html(DisplayFragment {
            kind: "image",
            text: String::new(),
            url,
        })
        .into_response());
    }
    let sd = app.state_dir.clone();
    let bytes = blocking(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        if loc.entry == Entry::Missing {
            return Err(cat2_core::Error::NotFound {
                path: loc.logical.to_string(),
            });
        }
        match FileKind::of(&loc) {
            Some(FileKind::Blob) => cat2_core::blob::read_blob(&loc.fs),
            _ => Err(cat2_core::Error::BadRequest(format!(
                "{raw} is not a regular file"
            ))),
        }
    })
    .await?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(DISPLAY_MAX)]).into_owned();
    let (kind, text) = if mime == "application/json" {
        let pretty = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text);
        ("json", pretty)
    } else if mime == "application/x-ipynb+json" {
        let html = super::notebook::to_html(&text, markdown_html).map_err(ApiError::bad_request)?;
        ("markdown", html)
    } else if mime == "text/markdown" {
        ("markdown", markdown_html(&text))
    } else {
        ("text", text)
    };
    Ok(Html(DisplayFragment { kind, text, url }).into_response())
}

/// Markdown as HTML, with raw HTML shown as text and links that could run code made inert.
fn markdown_html(text: &str) -> String {
    {
        let mut html = String::new();
        let parser = pulldown_cmark::Parser::new(text).map(|event| match event {
            // Raw HTML in a document is shown as text, never run.
            pulldown_cmark::Event::Html(h) | pulldown_cmark::Event::InlineHtml(h) => {
                pulldown_cmark::Event::Text(h)
            }
            // Nor do links run scripts.
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => pulldown_cmark::Event::Start(pulldown_cmark::Tag::Link {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => pulldown_cmark::Event::Start(pulldown_cmark::Tag::Image {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            other => other,
        });
        pulldown_cmark::html::push_html(&mut html, parser);
        html
    }
}

/// A link target that cannot run code (`javascript:`, `data:`, `vbscript:` become `#`).
fn safe_url(url: pulldown_cmark::CowStr<'_>) -> pulldown_cmark::CowStr<'_> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if url.contains(':') && ["javascript", "data", "vbscript"].contains(&scheme.as_str()) {
        pulldown_cmark::CowStr::Borrowed("#")
    } else {
        url
    }
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
