//! Moving bytes between HTTP bodies and stored objects, with the storage
//! calls (which block) on tokio's blocking pool and the runtime threads only
//! passing buffers along: answers stream out of a [`Blob`] a piece at a time,
//! uploads stream into a staged object through a [`Sink`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

use cat2_core::storage::{Blob, StagedIo};

use crate::error::{ApiError, ApiResult};

/// Bytes read from storage per body frame: large enough that per-frame
/// overhead vanishes, small enough to keep memory flat.
pub const PIECE: usize = 1 << 20;

/// Pieces in flight between the blocking pool and the connection.
const IN_FLIGHT: usize = 2;

fn stream_of<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A body of bytes `offset..offset + len` of a stored object, read a piece
/// at a time on the blocking pool.
pub fn blob_body(blob: Arc<dyn Blob>, offset: u64, len: u64) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let end = offset.saturating_add(len);
        let mut at = offset;
        while at < end {
            let n = (end - at).min(PIECE as u64) as usize;
            let piece = blob.read_range(at, n).map(Bytes::from);
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
            at += n as u64;
        }
    });
    Body::from_stream(stream_of(rx))
}

/// A body that decompresses a stored regular file chunk by chunk on the
/// blocking pool, so memory stays at one chunk whatever the file size.
pub fn decompressed_body(blob: Arc<dyn Blob>) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sc = match cat2_core::frames::open_frame(&blob) {
            Ok(sc) => sc,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let mut buf = Vec::new();
        for n in 0..sc.nchunks() {
            let item = sc
                .decompress_chunk(n, &mut buf)
                .map(|()| Bytes::copy_from_slice(&buf))
                .map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(stream_of(rx))
}

/// The inclusive span `start..=end` of the window that starts `base` bytes
/// into a stored object.
pub async fn read_span(
    blob: &Arc<dyn Blob>,
    base: u64,
    (start, end): (u64, u64),
) -> ApiResult<Vec<u8>> {
    let blob = blob.clone();
    let key = blob.meta().key.to_string();
    tokio::task::spawn_blocking(move || blob.read_range(base + start, (end - start + 1) as usize))
        .await?
        .map_err(|e| ApiError::internal(format!("reading {key}: {e}")))
}

/// Received bytes on their way into a staged object: pieces are handed to
/// one writer on the blocking pool, a few at a time (the sender waits when
/// the disk is slower than the network).
pub struct Sink {
    tx: mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<std::io::Result<u64>>,
}

impl Sink {
    pub fn new(io: Arc<dyn StagedIo>) -> Sink {
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let done = tokio::task::spawn_blocking(move || {
            let mut at = 0u64;
            while let Some(piece) = rx.blocking_recv() {
                io.write_at(at, &piece)?;
                at += piece.len() as u64;
            }
            Ok(at)
        });
        Sink { tx, done }
    }

    /// Queues one piece; fails when the writer has stopped (its error comes
    /// from [`Sink::finish`]).
    pub async fn write(&mut self, piece: Bytes) -> bool {
        self.tx.send(piece).await.is_ok()
    }

    /// Waits for every piece to be written; answers how many bytes were.
    pub async fn finish(self) -> ApiResult<u64> {
        drop(self.tx);
        self.done
            .await?
            .map_err(|e| ApiError::internal(format!("storing an upload: {e}")))
    }
}
