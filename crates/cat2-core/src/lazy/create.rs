//! Saving a lazy expression (`POST /api/upload_lazyarr`, `/api/lazyexpr/`):
//! as a carrier python-blosc2 opens (`compute = false`), or computed into a
//! plain array (`compute = true`).

use cat2_blosc2::ArraySpec;

use crate::budget::Budget;
use crate::dataset::lazy::{expr_dtype, Lazy, Operands};
use crate::dataset::lazy_format::{carrier_frame, relative_path};
use crate::dataset::operand::Opening;
use crate::dataset::Opener;
use crate::error::{Error, Result};
use crate::fetch::frame_out::FrameDest;
use crate::fetch::{write_frame, ChunkSource, Geometry};
use crate::path::DsPath;
use crate::resolve::Resolver;
use crate::selection::Selection;
use crate::storage::PutMode;
use crate::store::{Caller, StateDir};
use crate::write::upload::commit_replacing;
use crate::write::WritePolicy;

/// What the client sends (`Cat2LazyArr`).
#[derive(Debug, Clone, Default)]
pub struct LazyRequest {
    pub expression: Option<String>,
    pub func: Option<String>,
    /// Operand name → logical path, in the order given.
    pub operands: Vec<(String, String)>,
    /// The dtype and shape the client computed, if it sent them.
    pub dtype: Option<String>,
    pub shape: Option<Vec<i64>>,
    pub compute: bool,
}

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Invalid name or expression: {msg}"))
}

/// Saves the expression of `req` at `path`; answers the path.
pub fn save(
    sd: &StateDir,
    path: &DsPath,
    req: &LazyRequest,
    caller: Caller<'_>,
    policy: &WritePolicy,
    budget: &Budget,
) -> Result<String> {
    let target = sd.writable_key(path, caller, policy)?;
    if req.func.is_some() {
        return Err(Error::BadRequest(
            "Python user-defined functions are not run by this server: send the computation \
             as an expression string, e.g. blosc2.lazyexpr(\"logaddexp(a, b)\", operands=...)"
                .into(),
        ));
    }
    if !path.name().ends_with(".b2nd") {
        return Err(invalid("If path extension provided must be \".b2nd\"."));
    }
    let text = req
        .expression
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid("no expression was given"))?;
    let resolver = Resolver::new(sd, caller);
    let open_operands = || -> Result<Operands> {
        let mut opening = Opening::new(budget);
        let mut operands = Vec::with_capacity(req.operands.len());
        for (name, p) in &req.operands {
            let logical = DsPath::parse(p).map_err(|e| {
                Error::BadRequest(format!("Expression error: operand {name} ({p}): {e}"))
            })?;
            if stored_at(sd, &logical, caller)? == target {
                return Err(invalid(format!("{path} cannot be an operand of itself")));
            }
            let source = resolver
                .operand(&logical, 1, &mut opening)
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::BadRequest(format!(
                        "Expression error: {name} ({p}) is not in the list of available datasets"
                    )),
                    other => other,
                })?;
            operands.push((name.clone(), logical, source));
        }
        Ok(operands)
    };
    let operands = open_operands()?;
    let lazy = Lazy::new(text, operands, budget)?;
    // The client declares the dtype python-blosc2 computed. Where it differs
    // from NumPy's (python-blosc2 has its own rules in places) NumPy's is
    // kept; but a boolean result declared as something else is the mark of
    // `blosc2.where(c, x, y)`, whose values the client never sends.
    if let Some(declared) = &req.dtype {
        if let Ok((want, _)) = expr_dtype(declared) {
            if lazy.dtype == cat2_expr::DType::Bool && want != cat2_expr::DType::Bool {
                return Err(where_hint(text, declared, lazy.dtype.numpy_name()));
            }
        }
    }
    // A declared shape that differs is python-blosc2's estimate (it keeps the stop of
    // `a[:20]` past the end of a 10-row array, for one); NumPy's is kept, as with dtypes.
    let spec = ArraySpec {
        shape: lazy.shape.iter().map(|&n| n as i64).collect(),
        chunks: lazy
            .chunks
            .iter()
            .map(|&c| c.clamp(0, i32::MAX as i64) as i32)
            .collect(),
        blocks: lazy
            .blocks
            .iter()
            .map(|&b| b.clamp(0, i32::MAX as i64) as i32)
            .collect(),
        dtype: lazy.dtype.descr().to_string(),
        // The cparams its results are compressed with, computed now or later.
        cparams: lazy.cparams.clone(),
        urlpath: None,
    };
    // Like the reference, linear algebra (concat, stack, matmul, transpose...) is stored
    // computed.
    if req.compute || lazy.forces_compute() {
        let sel = Selection::full(&spec.shape);
        let geometry = Geometry {
            chunks: lazy.chunks.clone(),
            blocks: lazy.blocks.clone(),
        };
        // Workers open the operands again for themselves.
        let open = || -> Result<Box<dyn crate::selection::BoxReader>> {
            Ok(Box::new(
                Lazy::new(text, open_operands()?, budget)?.into_reader(),
            ))
        };
        let mut reader = lazy.reader();
        let source = if lazy.computes_serially() {
            ChunkSource::Serial(&mut reader)
        } else {
            ChunkSource::Workers(&open)
        };
        // Written into storage as it is computed, whatever its size: only the
        // chunks in flight are in memory, and the quota is checked as they
        // are written.
        let staged = sd.storage().stage(&target)?;
        let dest = FrameDest::Staged {
            io: staged.io(),
            room: sd.quota_room(policy, sd.object_size(&target))?,
            name: path.to_string(),
        };
        write_frame(
            source,
            &sel,
            &lazy.core_dtype()?,
            geometry,
            &lazy.cparams,
            budget,
            dest,
        )?;
        commit_replacing(sd, staged, &target)?;
    } else {
        let here = target.parent().unwrap_or_default();
        let urlpaths: Vec<(String, String)> = lazy
            .operands
            .iter()
            .map(|(name, logical, _)| {
                // A dataset inside an HDF5 file is stored as the path through it.
                let file = stored_at(sd, logical, caller)?;
                Ok((name.clone(), relative_path(&here, file.as_str())))
            })
            .collect::<Result<_>>()?;
        let frame = carrier_frame(&spec, text, &urlpaths)?;
        let replaced = sd.object_size(&target);
        sd.check_quota(policy, frame.len() as u64, replaced, "Upload")?;
        sd.storage().put(&target, &frame, PutMode::Overwrite)?;
    }
    Ok(path.to_string())
}

/// The key a logical path is stored at (through its container, for a
/// dataset inside one), as `caller` may read it.
fn stored_at(sd: &StateDir, path: &DsPath, caller: Caller<'_>) -> Result<crate::storage::Key> {
    let mut key = sd.root_key(path.root(), caller)?;
    for part in path.parts() {
        key = key
            .join(part)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
    }
    Ok(key)
}

/// The refusal of an expression whose result is not of the declared dtype,
/// which is what `blosc2.where(c, x, y)` sends through the official client:
/// only the condition travels, so the result would be a boolean mask.
fn where_hint(text: &str, declared: &str, got: &str) -> Error {
    let declared =
        expr_dtype(declared).map_or(declared.to_string(), |(t, _)| t.numpy_name().to_string());
    Error::BadRequest(format!(
        "Invalid name or expression: {text} computes {got}, but the client declared {declared}. \
         This is what blosc2.where(cond, x, y) sends: the official client transmits only the \
         condition, so the result would be a mask, not the where() values. Write the whole \
         computation as one expression string instead, e.g. \
         blosc2.lazyexpr(\"where(a < 10, a * 32000, a)\", operands={{\"a\": proxy}})"
    ))
}
