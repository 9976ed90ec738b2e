//! Jupyter notebooks rendered as static HTML for the Display tab: Markdown
//! cells through the same safe Markdown rendering as `.md` files, code cells
//! and their text outputs as escaped text, PNG/JPEG outputs as images. Nothing
//! from the notebook runs in the browser: HTML and JavaScript outputs are shown
//! as text.

use serde_json::Value;

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A notebook's `source`-like field: a string or a list of strings.
fn joined(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// The notebook as HTML, or why it is not one.
pub fn to_html(text: &str, markdown: impl Fn(&str) -> String) -> Result<String, String> {
    let nb: Value = serde_json::from_str(text).map_err(|e| format!("not a notebook: {e}"))?;
    let cells = nb
        .get("cells")
        .and_then(Value::as_array)
        .ok_or("not a notebook: no cells (only nbformat 4 notebooks are shown)")?;
    let mut html = String::from("<div class=\"notebook\">");
    for cell in cells {
        let source = joined(cell.get("source"));
        match cell.get("cell_type").and_then(Value::as_str) {
            Some("markdown") => {
                html.push_str("<div class=\"nb-markdown markdown\">");
                html.push_str(&markdown(&source));
                html.push_str("</div>");
            }
            Some("code") => {
                let count = cell
                    .get("execution_count")
                    .and_then(Value::as_i64)
                    .map_or(" ".to_string(), |n| n.to_string());
                html.push_str(&format!(
                    "<div class=\"nb-code\"><span class=\"nb-prompt\">[{count}]:</span><pre><code>{}</code></pre></div>",
                    escape(&source)
                ));
                for out in cell
                    .get("outputs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    html.push_str(&output_html(out));
                }
            }
            _ => {
                html.push_str(&format!("<pre class=\"nb-raw\">{}</pre>", escape(&source)));
            }
        }
    }
    html.push_str("</div>");
    Ok(html)
}

fn output_html(out: &Value) -> String {
    match out.get("output_type").and_then(Value::as_str) {
        Some("stream") => format!(
            "<pre class=\"nb-output\">{}</pre>",
            escape(&joined(out.get("text")))
        ),
        Some("error") => {
            let trace = joined(out.get("traceback"));
            let text = if trace.is_empty() {
                format!(
                    "{}: {}",
                    joined(out.get("ename")),
                    joined(out.get("evalue"))
                )
            } else {
                trace
            };
            format!(
                "<pre class=\"nb-output nb-error\">{}</pre>",
                escape(&strip_ansi(&text))
            )
        }
        Some("execute_result" | "display_data") => {
            let data = out.get("data");
            for mime in ["image/png", "image/jpeg"] {
                let b64 = joined(data.and_then(|d| d.get(mime)));
                let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
                if !b64.is_empty()
                    && b64
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                {
                    return format!(
                        "<img class=\"nb-image\" alt=\"\" src=\"data:{mime};base64,{b64}\">"
                    );
                }
            }
            let plain = joined(data.and_then(|d| d.get("text/plain")));
            format!("<pre class=\"nb-output\">{}</pre>", escape(&plain))
        }
        _ => String::new(),
    }
}

/// Tracebacks carry terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_outputs_render_and_nothing_runs() {
        let nb = serde_json::json!({
            "nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
                {"cell_type": "code", "execution_count": 3, "metadata": {}, "source": "print(1 < 2)",
                 "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["True\n"]},
                    {"output_type": "display_data", "metadata": {},
                     "data": {"text/html": "<script>alert(1)</script>", "text/plain": "<b>x</b>"}},
                    {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=\n"}},
                    {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["\u{1b}[31mBoom\u{1b}[0m"]}
                 ]}
            ]
        });
        let html = to_html(&nb.to_string(), |md| format!("<md>{}</md>", escape(md))).unwrap();
        assert!(html.contains("<md># Title\ntext</md>"), "{html}");
        assert!(html.contains("[3]:"));
        assert!(html.contains("print(1 &lt; 2)"));
        assert!(html.contains("<pre class=\"nb-output\">True\n</pre>"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""));
        assert!(html.contains(">Boom<"));
        assert!(to_html("{\"a\": 1}", |m| m.to_string()).is_err());
        assert!(to_html("not json", |m| m.to_string()).is_err());
    }
}
