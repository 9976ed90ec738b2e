//! Where the compressed chunks of a computed array go as they are made:
//! held in memory for an answer sent at once, or written into a staged
//! object for an array stored (`compute = true`), whatever its size.
//!
//! Either way the frame is assembled by [`FrameAssembler`]: chunks are
//! stored in the order they are made, the offsets index and trailer follow
//! them, the header comes last. In memory, the chunks count against the
//! request's budget as they arrive and the frame is refused when its copy
//! would not fit. Staged, only the chunks in flight are in memory; the bytes
//! written count against the storage `room` the quota leaves (checked at
//! each chunk, so a result that would fill the disk stops at the quota, not
//! after it), and nothing is visible until the caller commits the object —
//! a failure or a crash half-way leaves no file.

use std::sync::Arc;

use cat2_blosc2::FrameAssembler;

use crate::budget::{Budget, Reservation};
use crate::error::{Error, Result};
use crate::storage::StagedIo;

/// Where a frame is made (see the module doc).
pub(crate) enum FrameDest {
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
    /// The whole frame, written into the staged object.
    Written,
}

/// The refusal of a result larger than the quota leaves room for (the
/// words the reference uses for uploads, which the client shows).
pub(crate) fn over_quota() -> Error {
    Error::BadRequest("Upload failed because quota limit has been exceeded.".into())
}

impl FrameOut {
    pub(crate) fn new(asm: FrameAssembler, dest: FrameDest, budget: &Budget) -> FrameOut {
        let dest = match dest {
            FrameDest::Memory => Dest::Memory {
                chunks: Vec::new(),
                held: budget.nothing_held(),
            },
            FrameDest::Staged { io, room, name } => Dest::Staged { io, room, name },
        };
        FrameOut { asm, dest }
    }

    /// Takes chunk `n` of the grid; `what` describes the answer for a
    /// refusal of memory.
    pub(crate) fn put(
        &mut self,
        n: usize,
        chunk: Vec<u8>,
        what: &dyn Fn() -> String,
    ) -> Result<()> {
        let Some(at) = self.asm.place(n, &chunk)? else {
            return Ok(());
        };
        match &mut self.dest {
            Dest::Memory { chunks, held } => {
                held.grow(chunk.len() as u64, what)?;
                chunks.push(chunk);
            }
            Dest::Staged { io, room, name } => {
                if room.is_some_and(|room| at + chunk.len() as u64 > room) {
                    return Err(over_quota());
                }
                io.write_at(at, &chunk)
                    .map_err(|e| Error::io("writing", name.as_str(), e))?;
            }
        }
        Ok(())
    }

    /// Completes the frame once every chunk is given: in memory, a copy of
    /// the chunks with the header and tail around them (counted against the
    /// budget while the chunks are still held); staged, the tail written
    /// after the chunks and the header last.
    pub(crate) fn finish(self, budget: &Budget, what: &dyn Fn() -> String) -> Result<MadeFrame> {
        let ends = self.asm.finish()?;
        match self.dest {
            Dest::Memory { chunks, held } => {
                let _copy = budget.reserve(held.bytes(), what)?;
                let mut frame = Vec::with_capacity(ends.frame_len() as usize);
                frame.extend_from_slice(&ends.header);
                for c in &chunks {
                    frame.extend_from_slice(c);
                }
                frame.extend_from_slice(&ends.tail);
                Ok(MadeFrame::Bytes(frame))
            }
            Dest::Staged { io, room, name } => {
                if room.is_some_and(|room| ends.frame_len() > room) {
                    return Err(over_quota());
                }
                let write = |at: u64, bytes: &[u8]| {
                    io.write_at(at, bytes)
                        .map_err(|e| Error::io("writing", name.as_str(), e))
                };
                write(ends.tail_at, &ends.tail)?;
                write(0, &ends.header)?;
                Ok(MadeFrame::Written)
            }
        }
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
                io.write_at(0, &frame)
                    .map_err(|e| Error::io("writing", name.as_str(), e))?;
                Ok(MadeFrame::Written)
            }
        }
    }
}
