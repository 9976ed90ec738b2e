//! Where the compressed chunks of a computed array go as they are made:
//! held in memory for an answer, spilled into storage when the answer
//! outgrows the request's memory, or written into a staged object for an
//! array stored (`compute = true`), whatever its size.
//!
//! Either way the frame is assembled by [`FrameAssembler`]: chunks are
//! stored in the order they are made, the offsets index and trailer follow
//! them, the header comes last.
//!
//! * **In memory**, the chunks count against the request's budget as they
//!   arrive, and the frame is a copy of them made at the end.
//! * **Spilled**: when the next chunk (or the final copy) would take the
//!   answer past the request's memory and the budget has a [`Spill`], the
//!   chunks held so far are written into an object staged in that storage
//!   and their memory is returned; the rest follow them there, up to the
//!   spill's limit (413 past it) and what the server's spill storage has
//!   room for (`total_disk_limit`: 503 past it). The staged object is never committed: it
//!   is read back while the answer is sent and removed when the
//!   [`SpilledFrame`] is dropped (a crash leaves a temporary file the
//!   storage removes when it next starts).
//! * **Staged** (`compute = true`): only the chunks in flight are in memory;
//!   the bytes written count against the storage `room` the quota leaves
//!   (checked at each chunk, so a result that would fill the disk stops at
//!   the quota, not after it), and nothing is visible until the caller
//!   commits the object — a failure or a crash half-way leaves no file.

use std::sync::{Arc, Mutex};

use cat2_blosc2::FrameAssembler;

use crate::budget::{describe_bytes, Budget, Reservation, Spill, SpillHold};
use crate::error::{Error, Result};
use crate::storage::{Key, ReadAt, Staged, StagedIo};

/// Where a frame is made (see the module doc).
pub(crate) enum FrameDest {
    /// In memory, spilled if the budget allows it and the answer needs it.
    Memory,
    /// Into a staged object, within `room` bytes (`None`: no quota);
    /// `name` is the logical path it is for, in messages.
    Staged {
        io: Arc<dyn StagedIo>,
        room: Option<u64>,
        name: String,
    },
}

/// The frame of a computed array being made, chunk by chunk.
pub(crate) struct FrameOut {
    asm: FrameAssembler,
    dest: Dest,
}

enum Dest {
    Memory {
        /// The stored chunks, in frame order.
        chunks: Vec<Vec<u8>>,
        held: Reservation,
        spill: Option<Spill>,
    },
    Spilled {
        staged: Box<dyn Staged>,
        io: Arc<dyn StagedIo>,
        limit: u64,
        /// What it holds of the server's spill storage.
        hold: SpillHold,
    },
    Staged {
        io: Arc<dyn StagedIo>,
        room: Option<u64>,
        name: String,
    },
}

/// What a finished [`FrameOut`] made.
pub(crate) enum MadeFrame {
    /// The whole frame, in memory.
    Bytes(Vec<u8>),
    /// The whole frame, in a spill object.
    Spilled(Arc<SpilledFrame>),
    /// The whole frame, written into the staged object.
    Written,
}

/// A computed answer's frame spilled into storage: read back while it is
/// sent; its staged object is discarded (never committed) when dropped.
pub struct SpilledFrame {
    _staged: Mutex<Box<dyn Staged>>,
    _hold: SpillHold,
    io: Arc<dyn StagedIo>,
    len: u64,
}

impl std::fmt::Debug for SpilledFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpilledFrame({} bytes)", self.len)
    }
}

impl ReadAt for SpilledFrame {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.len.saturating_sub(offset);
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.io.read_at(offset, &mut buf[..n])
    }
}

impl SpilledFrame {
    /// The frame's bytes, for readers that want a staged object.
    pub(crate) fn io(&self) -> Arc<dyn StagedIo> {
        self.io.clone()
    }
}

/// The refusal of a result larger than the quota leaves room for (a
/// stored result is an upload, as the reference words it).
fn over_quota() -> Error {
    crate::write::quota_exceeded("Upload")
}

fn over_spill(limit: u64, what: &dyn Fn() -> String) -> Error {
    Error::TooLarge(format!(
        "{} needs more than the limit of {} of storage per request for answers too large for memory (request_disk_limit); ask for less at a time, e.g. a slice (slice_=) of the dataset",
        what(),
        describe_bytes(limit)
    ))
}

fn write_to(io: &dyn StagedIo, at: u64, bytes: &[u8], name: &str) -> Result<()> {
    io.write_at(at, bytes)
        .map_err(|e| Error::io("writing", name, e))
}

impl FrameOut {
    pub(crate) fn new(asm: FrameAssembler, dest: FrameDest, budget: &Budget) -> FrameOut {
        let dest = match dest {
            FrameDest::Memory => Dest::Memory {
                chunks: Vec::new(),
                held: budget.nothing_held(),
                spill: budget.spill().cloned(),
            },
            FrameDest::Staged { io, room, name } => Dest::Staged { io, room, name },
        };
        FrameOut { asm, dest }
    }

    /// Takes chunk `n` of the grid; `what` describes the answer for a
    /// refusal.
    pub(crate) fn put(
        &mut self,
        n: usize,
        chunk: Vec<u8>,
        what: &dyn Fn() -> String,
    ) -> Result<()> {
        let Some(at) = self.asm.place(n, &chunk)? else {
            return Ok(());
        };
        if let Dest::Memory {
            chunks,
            held,
            spill,
        } = &mut self.dest
        {
            let area = match held.grow(chunk.len() as u64, what) {
                Ok(()) => {
                    chunks.push(chunk);
                    return Ok(());
                }
                Err(Error::TooLarge(_)) if spill.is_some() => spill.take(),
                Err(e) => return Err(e),
            };
            if let Some(area) = area {
                self.spill(area, what)?;
            }
        }
        match &mut self.dest {
            Dest::Memory { .. } => Err(Error::BadRequest(
                "an answer held in memory was not spilled".into(),
            )),
            Dest::Spilled {
                io, limit, hold, ..
            } => {
                if at + chunk.len() as u64 > *limit {
                    return Err(over_spill(*limit, what));
                }
                hold.grow(chunk.len() as u64)?;
                write_to(io.as_ref(), at, &chunk, "the answer's spill")
            }
            Dest::Staged { io, room, name } => {
                if room.is_some_and(|room| at + chunk.len() as u64 > room) {
                    return Err(over_quota());
                }
                write_to(io.as_ref(), at, &chunk, name)
            }
        }
    }

    /// Moves the chunks held in memory into a new spill object in `area`
    /// (their memory is returned as the old destination drops).
    fn spill(&mut self, area: Spill, what: &dyn Fn() -> String) -> Result<()> {
        let mut hold = area.pool.hold();
        let staged = area.storage.stage(&Key::root())?;
        let io = staged.io();
        let mut at = self.asm.header_len();
        if let Dest::Memory { chunks, .. } = &self.dest {
            for c in chunks {
                if at + c.len() as u64 > area.limit {
                    return Err(over_spill(area.limit, what));
                }
                hold.grow(c.len() as u64)?;
                write_to(io.as_ref(), at, c, "the answer's spill")?;
                at += c.len() as u64;
            }
        }
        self.dest = Dest::Spilled {
            staged,
            io,
            limit: area.limit,
            hold,
        };
        Ok(())
    }

    /// Completes the frame once every chunk is given: in memory, a copy of
    /// the chunks with the header and tail around them (counted against the
    /// budget while the chunks are still held, and spilled instead when it
    /// does not fit); spilled or staged, the tail written after the chunks
    /// and the header last.
    pub(crate) fn finish(
        mut self,
        budget: &Budget,
        what: &dyn Fn() -> String,
    ) -> Result<MadeFrame> {
        if let Dest::Memory { held, spill, .. } = &mut self.dest {
            match budget.reserve(held.bytes(), what) {
                Ok(copy) => return self.finish_in_memory(copy),
                Err(Error::TooLarge(_)) if spill.is_some() => {
                    if let Some(area) = spill.take() {
                        self.spill(area, what)?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let ends = self.asm.finish()?;
        match self.dest {
            Dest::Memory { .. } => Err(Error::BadRequest(
                "an answer held in memory was not spilled".into(),
            )),
            Dest::Spilled {
                staged,
                io,
                limit,
                mut hold,
            } => {
                if ends.frame_len() > limit {
                    return Err(over_spill(limit, what));
                }
                hold.grow((ends.header.len() + ends.tail.len()) as u64)?;
                write_to(io.as_ref(), ends.tail_at, &ends.tail, "the answer's spill")?;
                write_to(io.as_ref(), 0, &ends.header, "the answer's spill")?;
                Ok(MadeFrame::Spilled(Arc::new(SpilledFrame {
                    _staged: Mutex::new(staged),
                    _hold: hold,
                    io,
                    len: ends.frame_len(),
                })))
            }
            Dest::Staged { io, room, name } => {
                if room.is_some_and(|room| ends.frame_len() > room) {
                    return Err(over_quota());
                }
                write_to(io.as_ref(), ends.tail_at, &ends.tail, &name)?;
                write_to(io.as_ref(), 0, &ends.header, &name)?;
                Ok(MadeFrame::Written)
            }
        }
    }

    /// The frame of chunks held in memory, copied while `_copy` is reserved.
    fn finish_in_memory(self, _copy: Reservation) -> Result<MadeFrame> {
        let ends = self.asm.finish()?;
        let Dest::Memory { chunks, .. } = self.dest else {
            return Err(Error::BadRequest(
                "an answer not held in memory was copied".into(),
            ));
        };
        let mut frame = Vec::with_capacity(ends.frame_len() as usize);
        frame.extend_from_slice(&ends.header);
        for c in &chunks {
            frame.extend_from_slice(c);
        }
        frame.extend_from_slice(&ends.tail);
        Ok(MadeFrame::Bytes(frame))
    }
}

impl FrameDest {
    /// Stores a frame made whole (a result of one item or none).
    pub(crate) fn store_whole(self, frame: Vec<u8>) -> Result<MadeFrame> {
        match self {
            FrameDest::Memory => Ok(MadeFrame::Bytes(frame)),
            FrameDest::Staged { io, room, name } => {
                if room.is_some_and(|room| frame.len() as u64 > room) {
                    return Err(over_quota());
                }
                write_to(io.as_ref(), 0, &frame, &name)?;
                Ok(MadeFrame::Written)
            }
        }
    }
}
