//! The prompt: `unfold`, `cp`/`copy`, `mv`/`move`, `rm`/`remove`, `adduser`,
//! `deluser`, `lsu`/`listusers`, and expressions `name = expr` (saved lazy in
//! `@personal/name.b2nd`) and `name := expr` (computed).
//!
//! Arguments and expression operands are aliases of the dataset list (the
//! browser sends its alias table) or literal paths. Every command runs the
//! same operation of `cat2-service` the REST API runs, so its rules (who may
//! write where, quotas, superusers) are the API's; an error comes back as
//! the API's 4xx.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use cat2_core::lazy::create::LazyRequest;
use cat2_core::write::transfer::Transfer;
use cat2_core::DsPath;

use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{LoggedIn, RequestBudget};
use crate::AppState;

/// What the browser sends: the command line and the list's aliases.
#[derive(Debug, Deserialize)]
pub struct CommandBody {
    command: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

/// What a command did, for the browser: a message to show, a dataset to
/// open, or a list to reload.
#[derive(Debug, Default, serde::Serialize, PartialEq)]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// A dataset path to open.
    #[serde(skip_serializing_if = "Option::is_none")]
    open: Option<String>,
    /// Whether the list changed (and the open dataset may be gone).
    refresh: bool,
}

const HELP: &str = "Commands: unfold <file.h5>, cp <src> <dst>, mv <src> <dst>, rm <path>, \
    adduser <email>, deluser <email>, lsu; expressions: name = expr (saved lazy in @personal), \
    name := expr (computed). Arguments are aliases from the list or paths.";

/// A parsed command line.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Expression {
        name: &'a str,
        compute: bool,
        expr: &'a str,
        /// Operands given after `#` as a dict (`{"a": "@shared/x.b2nd"}`).
        extra: Vec<(String, String)>,
    },
    Verb(&'a str, Vec<&'a str>),
}

/// Splits `name = expr`, `name := expr` (spaces optional) from commands.
fn parse(line: &str) -> Result<Command<'_>, String> {
    let line = line.trim();
    let ident_end = line
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(line.len(), |(i, _)| i);
    if ident_end > 0 {
        let rest = line[ident_end..].trim_start();
        let (compute, after) = if let Some(r) = rest.strip_prefix(":=") {
            (true, Some(r))
        } else if let Some(r) = rest.strip_prefix('=').filter(|r| !r.starts_with('=')) {
            (false, Some(r))
        } else {
            (false, None)
        };
        if let Some(after) = after {
            let (expr, extra) = match after.split_once('#') {
                Some((e, dict)) => (e, parse_operand_dict(dict)?),
                None => (after, Vec::new()),
            };
            let expr = expr.trim();
            if expr.is_empty() {
                return Err("Invalid command: the expression after = is empty".into());
            }
            return Ok(Command::Expression {
                name: &line[..ident_end],
                compute,
                expr,
                extra,
            });
        }
    }
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("");
    Ok(Command::Verb(verb, words.collect()))
}

/// `{"a": "@shared/x.b2nd", 'b': '@public/y.b2nd'}` (Python or JSON quotes).
fn parse_operand_dict(text: &str) -> Result<Vec<(String, String)>, String> {
    let json_text = text.trim().replace('\'', "\"");
    let value: Value = serde_json::from_str(&json_text).map_err(|e| {
        format!("Invalid operands after #: {e} (write them as {{\"a\": \"@shared/x.b2nd\"}})")
    })?;
    let Value::Object(map) = value else {
        return Err("Invalid operands after #: expected a dict of names to paths".into());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(format!(
                "Invalid operands after #: {k} maps to {other}, not a path"
            )),
        })
        .collect()
}

/// `POST /gui/command`.
pub async fn command(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    budget: RequestBudget,
    Json(body): Json<CommandBody>,
) -> ApiResult<Json<Outcome>> {
    let aliases: Vec<(String, String)> = body.names.into_iter().zip(body.paths).collect();
    let resolve = |arg: &str| -> String {
        aliases
            .iter()
            .find(|(name, _)| name == arg)
            .map_or_else(|| arg.to_string(), |(_, path)| path.clone())
    };
    let dataset = |arg: &str| -> ApiResult<DsPath> { Ok(DsPath::parse(&resolve(arg))?) };
    let expect = |args: &[&str], n: usize, usage: &str| -> ApiResult<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "Invalid syntax: expected {usage}"
            )))
        }
    };
    let service = app.service.clone();
    let outcome = match parse(&body.command).map_err(ApiError::bad_request)? {
        Command::Expression {
            name,
            compute,
            expr,
            extra,
        } => {
            let names = cat2_expr::Expr::parse(expr)
                .map_err(|e| ApiError::bad_request(format!("Invalid name or expression: {e}")))?
                .operand_names();
            let operands = names
                .into_iter()
                .filter_map(|n| {
                    let path = extra
                        .iter()
                        .chain(&aliases)
                        .find(|(k, _)| *k == n)
                        .map(|(_, p)| p.clone())?;
                    Some((n, path))
                })
                .collect();
            let target = format!("@personal/{name}.b2nd");
            let path = DsPath::parse(&target)?;
            let request = LazyRequest {
                expression: Some(expr.to_string()),
                operands,
                compute,
                ..LazyRequest::default()
            };
            let shared = budget.share();
            blocking(move || service.save_expression(&caller, &path, &request, &shared)).await?;
            Outcome {
                open: Some(target),
                refresh: true,
                ..Outcome::default()
            }
        }
        Command::Verb("", _) => Outcome::default(),
        Command::Verb("help" | "?", _) => Outcome {
            message: Some(HELP.into()),
            ..Outcome::default()
        },
        Command::Verb("unfold", args) => {
            expect(&args, 1, "unfold <file.h5>")?;
            let file = dataset(args[0])?;
            let shown = file.to_string();
            let stem = blocking(move || service.unfold(&caller, &file)).await?;
            Outcome {
                message: Some(format!("Unfolded {shown} into {stem}/")),
                open: Some(shown),
                refresh: true,
            }
        }
        Command::Verb(verb @ ("cp" | "copy" | "mv" | "move"), args) => {
            expect(&args, 2, &format!("{verb} <src> <dst>"))?;
            let kind = if verb.starts_with('c') {
                Transfer::Copy
            } else {
                Transfer::Move
            };
            let (src, dst) = (resolve(args[0]), resolve(args[1]));
            let dst = blocking(move || service.transfer(&caller, kind, &src, &dst)).await?;
            Outcome {
                open: Some(dst.to_string()),
                refresh: true,
                ..Outcome::default()
            }
        }
        Command::Verb("rm" | "remove", args) => {
            expect(&args, 1, "rm <path>")?;
            let gone = dataset(args[0])?;
            let shown = gone.to_string();
            blocking(move || service.remove(&caller, &gone)).await?;
            Outcome {
                message: Some(format!("Removed {shown}")),
                refresh: true,
                ..Outcome::default()
            }
        }
        Command::Verb("adduser", args) => {
            expect(&args, 1, "adduser <email>")?;
            // Generated here so the admin who asked sees it, once.
            let password = cat2_auth::password::generate().map_err(ApiError::from)?;
            let (email, secret) = (args[0].to_string(), password.clone());
            let text =
                blocking(move || service.add_user(&caller, &email, Some(&secret), false)).await?;
            Outcome {
                message: Some(format!("{text}. Password (shown only now): {password}")),
                ..Outcome::default()
            }
        }
        Command::Verb("deluser", args) => {
            expect(&args, 1, "deluser <email>")?;
            let email = args[0].to_string();
            let text = blocking(move || service.delete_user(&caller, &email)).await?;
            Outcome {
                message: Some(text),
                refresh: true,
                ..Outcome::default()
            }
        }
        Command::Verb("lsu" | "listusers", args) => {
            expect(&args, 0, "lsu")?;
            let users = blocking(move || service.list_users(&caller, None)).await?;
            let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
            Outcome {
                message: Some(format!("Users: {}", emails.join(", "))),
                ..Outcome::default()
            }
        }
        Command::Verb(other, _) => {
            return Err(ApiError::bad_request(format!(
                "Invalid command: {other}. {HELP}"
            )))
        }
    };
    Ok(Json(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_with_or_without_spaces() {
        for line in [
            "e = where(a < 10, a * 32000, a)",
            "e=where(a < 10, a * 32000, a)",
        ] {
            assert_eq!(
                parse(line),
                Ok(Command::Expression {
                    name: "e",
                    compute: false,
                    expr: "where(a < 10, a * 32000, a)",
                    extra: vec![],
                })
            );
        }
        assert_eq!(
            parse("s:=sum(a) # {'a': '@shared/x.b2nd'}"),
            Ok(Command::Expression {
                name: "s",
                compute: true,
                expr: "sum(a)",
                extra: vec![("a".into(), "@shared/x.b2nd".into())],
            })
        );
    }

    #[test]
    fn commands_are_words() {
        assert_eq!(parse("unfold a"), Ok(Command::Verb("unfold", vec!["a"])));
        assert_eq!(
            parse("  cp  a  @personal/b.b2nd "),
            Ok(Command::Verb("cp", vec!["a", "@personal/b.b2nd"]))
        );
        // A comparison is not an assignment.
        assert_eq!(parse("a == b"), Ok(Command::Verb("a", vec!["==", "b"])));
        assert!(parse("x =   ").is_err());
        assert!(parse("x = a # not a dict").is_err());
    }
}
