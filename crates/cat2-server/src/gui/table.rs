//! The Data tab: a window of an array as a table, and the records of a
//! record (structured) array with chosen fields, an order and a filter.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};

use cat2_core::view::{self, Values};
use cat2_service::Table;

use super::Html;
use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::{CallerId, DatasetPath, RequestBudget};
use crate::AppState;

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

/// What the Data tab shows of a dataset.
enum Page {
    /// A 1-D record array: a page of its records.
    Records(view::RecordPage),
    /// Any other array: a window, its controls per dimension (start, size,
    /// whether the size can change) and its values.
    Window(Vec<i64>, Vec<(i64, i64, bool)>, Values),
}

/// `GET /gui/view/{path}?start=…&size=…`: a window of the data as a table.
/// The last two dimensions (the last one of a 1-D array) are the window's;
/// every other dimension shows the one position its start selects. A 1-D
/// record (structured) array shows records instead: fields to show, a
/// filter over them, an order and a page (`fields=…&filter=…&sortby=…`).
pub async fn view(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    RawQuery(query): RawQuery,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let shared = budget.share();
    let (starts, sizes) = (
        numbers(query.as_deref(), "start"),
        numbers(query.as_deref(), "size"),
    );
    let q = record_query(query.as_deref());
    let records = q.clone();
    let (st, sz) = (starts.clone(), sizes.clone());
    let shown = blocking(move || {
        let slice_of = |shape: &[i64]| {
            (!shape.is_empty()).then(|| {
                window(shape, &st, &sz)
                    .iter()
                    .map(|(s, n, _)| format!("{s}:{}", s + n))
                    .collect::<Vec<_>>()
                    .join(",")
            })
        };
        app.service
            .table(&caller, &path, slice_of, &records, &shared)
    })
    .await?;
    let page = match shown {
        Table::Records(p) => Page::Records(p),
        Table::Window(shape, values) => {
            let dims = window(&shape, &starts, &sizes);
            Page::Window(shape, dims, values)
        }
    };
    let (shape, dims, values) = match page {
        Page::Records(p) => {
            return Ok(Html(RecordsFragment {
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
            .into_response())
        }
        Page::Window(shape, dims, values) => (shape, dims, values),
    };
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

/// The window asked for, made to fit `shape`: (start, size, viewed) per dimension.
fn window(shape: &[i64], starts: &[i64], sizes: &[i64]) -> Vec<(i64, i64, bool)> {
    let first_view = shape.len().saturating_sub(2);
    shape
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
        .collect()
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

/// The record table's query: fields, filter, order and page.
fn record_query(query: Option<&str>) -> view::RecordQuery {
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
    q
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
