//! Writing: uploads (staged, then finished), appends, removals, moves and
//! copies, unfolding HDF5 files, saving lazy expressions, chunk writes and
//! publishing, unpacking archives — each with Caterva2's rules about who may
//! write where, checked here or in the core operation it runs.

use std::sync::Arc;

use cat2_core::budget::Budget;
use cat2_core::lazy::create::{save, LazyRequest};
use cat2_core::storage::{PutMode, Staged, StagedIo};
use cat2_core::write::fill::{self, ChunkWrite};
use cat2_core::write::transfer::{self, Transfer};
use cat2_core::write::{append, archive, upload};
use cat2_core::DsPath;

use crate::{Error, Result, Service, Who};

/// An upload being received: bytes staged where it will go, to be filled by
/// the caller and handed back to [`Service::finish_upload`]. Dropped
/// unfinished, it leaves nothing behind.
pub struct Upload {
    staged: Box<dyn Staged>,
}

impl Upload {
    /// Where the received bytes are written.
    pub fn io(&self) -> Arc<dyn StagedIo> {
        self.staged.io()
    }
}

/// An empty Jupyter notebook (nbformat 4).
const EMPTY_NOTEBOOK: &str = r#"{
 "cells": [],
 "metadata": {},
 "nbformat": 4,
 "nbformat_minor": 5
}
"#;

impl Service {
    /// Starts an upload to `path`, whose file name is not known yet (a
    /// directory target receives the file under its own name): refused now if
    /// `who` may not write there.
    pub fn start_upload(&self, who: &Who, path: &DsPath) -> Result<Upload> {
        self.start_upload_named(who, path, "upload")
    }

    /// Starts an upload of a file named `file_name` to `path`.
    pub fn start_upload_named(&self, who: &Who, path: &DsPath, file_name: &str) -> Result<Upload> {
        let policy = self.settings.writes;
        let plan = upload::plan_upload(&self.state, path, file_name, who.caller(), &policy)?;
        Ok(Upload {
            staged: upload::upload_staging(&self.state, &plan)?,
        })
    }

    /// Stores a received upload of `file_name` at `path`: verified (or
    /// compressed) and committed; answers the logical path.
    pub fn finish_upload(
        &self,
        who: &Who,
        path: &DsPath,
        file_name: &str,
        received: Upload,
    ) -> Result<DsPath> {
        let policy = self.settings.writes;
        let plan = upload::plan_upload(&self.state, path, file_name, who.caller(), &policy)?;
        upload::finish_upload(&self.state, &plan, received.staged, &policy)?;
        Ok(plan.logical)
    }

    /// Starts receiving data to append or an archive to unpack: staged in
    /// the state's own area, never listed.
    pub fn start_scratch(&self, who: &Who, near: &DsPath) -> Result<Upload> {
        let root = self
            .state
            .writable_root(near.root(), who.caller(), &self.settings.writes)?;
        let near = root.join("incoming")?;
        Ok(Upload {
            staged: self.state.storage().stage(&near)?,
        })
    }

    /// `/api/append`: appends the array received to the array at `path`;
    /// answers the new shape.
    pub fn append(&self, who: &Who, path: &DsPath, rows: Upload) -> Result<Vec<i64>> {
        Ok(append::append(
            &self.state,
            path,
            rows.io(),
            who.caller(),
            &self.settings.writes,
        )?)
    }

    /// Unpacks the archive received (uploaded as `name`) into `dir/<stem>`;
    /// answers the paths stored, in archive order.
    pub fn unpack(
        &self,
        who: &Who,
        dir: &DsPath,
        name: &str,
        archive: Upload,
    ) -> Result<Vec<DsPath>> {
        let io = archive.io();
        Ok(archive::unpack(
            &self.state,
            io.as_ref(),
            name,
            dir,
            who.caller(),
            &self.settings.writes,
        )?)
    }

    /// `/api/remove`: a file or a whole directory.
    pub fn remove(&self, who: &Who, path: &DsPath) -> Result<()> {
        transfer::remove(&self.state, path, who.caller(), &self.settings.writes)?;
        Ok(())
    }

    /// `/api/move` and `/api/copy`, with the ends as sent; answers the
    /// logical destination.
    pub fn transfer(&self, who: &Who, kind: Transfer, src: &str, dst: &str) -> Result<DsPath> {
        let (src, dst) = transfer::parse_ends(kind, src, dst)?;
        Ok(transfer::transfer(
            &self.state,
            kind,
            &src,
            &dst,
            who.caller(),
            &self.settings.writes,
        )?)
    }

    /// `/api/unfold`: an HDF5 file into a tree of proxies beside it;
    /// answers the directory's name.
    pub fn unfold(&self, who: &Who, path: &DsPath) -> Result<String> {
        Ok(cat2_core::unfold::unfold(
            &self.state,
            path,
            who.caller(),
            &self.settings.writes,
        )?)
    }

    /// `/api/upload_lazyarr` and `/api/lazyexpr/`: answers the path.
    pub fn save_expression(
        &self,
        who: &Who,
        path: &DsPath,
        req: &LazyRequest,
        budget: &Budget,
    ) -> Result<String> {
        Ok(save(
            &self.state,
            path,
            req,
            who.caller(),
            &self.settings.writes,
            budget,
        )?)
    }

    /// `/api/addnotebook`: an empty notebook, where nothing is yet.
    pub fn add_notebook(&self, who: &Who, path: &DsPath) -> Result<DsPath> {
        if !path.name().ends_with(".ipynb") {
            return Err(Error::BadRequest(
                "Notebooks must end with the .ipynb extension".into(),
            ));
        }
        let plan = upload::plan_upload(
            &self.state,
            path,
            "upload",
            who.caller(),
            &self.settings.writes,
        )?;
        let exists = || Error::BadRequest("File exists at the given path".into());
        let storage = self.state.storage();
        if storage.head(&plan.target).is_ok() {
            return Err(exists());
        }
        let frame = cat2_core::blob::compress_blob(EMPTY_NOTEBOOK.as_bytes())?;
        match storage.put(&plan.target, &frame, PutMode::Create) {
            Ok(_) => Ok(path.clone()),
            Err(cat2_core::storage::Error::AlreadyExists { .. }) => Err(exists()),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /api/chunk`: one compressed chunk into an unwritten slot.
    pub fn write_chunk(
        &self,
        who: &Who,
        path: &DsPath,
        nchunk: i64,
        chunk: &[u8],
    ) -> Result<ChunkWrite> {
        Ok(fill::write_chunk(
            &self.state,
            path,
            nchunk,
            chunk,
            who.caller(),
            &self.settings.writes,
            self.settings.publish_root.is_some(),
        )?)
    }

    /// `/api/publish`: a filled array copied to the publish root; answers
    /// where it went.
    pub fn publish(&self, who: &Who, path: &DsPath) -> Result<String> {
        Ok(fill::publish(
            &self.state,
            path,
            who.caller(),
            &self.settings.writes,
            self.settings.publish_root.as_ref(),
        )?)
    }
}
