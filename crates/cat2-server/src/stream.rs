//! Moving bytes between HTTP bodies and stored objects, with the storage
//! calls (which block) on tokio's blocking pool and the runtime threads only
//! passing buffers along: answers stream out of a [`Blob`] a piece at a time,
//! uploads stream into a staged object through a [`Sink`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

use cat2_core::storage::{Blob, ReadAt, StagedIo};

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
pub fn blob_body<R: ReadAt + ?Sized + 'static>(blob: Arc<R>, offset: u64, len: u64) -> Body {
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

/// Received bytes on their way into a staged object. Pieces are copied into
/// one of three buffers (`SINK_BUFFERS`) of [`PIECE`] bytes, each written whole by
/// one writer on the blocking pool and handed back for reuse: memory stays at
/// those buffers however large the body, the sender waits when the disk is
/// slower than the network, and the network's buffers are freed by the
/// thread that made them (freed on the writer's thread instead, they piled
/// up in the allocator: tens of MB during a large upload).
pub struct Sink {
    filling: Vec<u8>,
    made: usize,
    tx: mpsc::Sender<Vec<u8>>,
    spare: mpsc::UnboundedReceiver<Vec<u8>>,
    done: tokio::task::JoinHandle<std::io::Result<u64>>,
}

/// Buffers a [`Sink`] fills and writes in turn.
const SINK_BUFFERS: usize = 3;

impl Sink {
    pub fn new(io: Arc<dyn StagedIo>) -> Sink {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SINK_BUFFERS);
        let (spare_tx, spare) = mpsc::unbounded_channel::<Vec<u8>>();
        let done = tokio::task::spawn_blocking(move || {
            let mut at = 0u64;
            while let Some(mut buf) = rx.blocking_recv() {
                io.write_at(at, &buf)?;
                at += buf.len() as u64;
                buf.clear();
                // The sender may be gone already (it has finished).
                let _ = spare_tx.send(buf);
            }
            Ok(at)
        });
        Sink {
            filling: Vec::with_capacity(PIECE),
            made: 1,
            tx,
            spare,
            done,
        }
    }

    /// Takes one piece; false when the writer has stopped (its error comes
    /// from [`Sink::finish`]).
    pub async fn write(&mut self, mut piece: &[u8]) -> bool {
        while !piece.is_empty() {
            let room = PIECE - self.filling.len();
            let (now, later) = piece.split_at(room.min(piece.len()));
            self.filling.extend_from_slice(now);
            piece = later;
            if self.filling.len() == PIECE && !self.send_filled().await {
                return false;
            }
        }
        true
    }

    /// Sends the buffer being filled to the writer and takes an empty one.
    async fn send_filled(&mut self) -> bool {
        let next = if self.made < SINK_BUFFERS {
            self.made += 1;
            Vec::with_capacity(PIECE)
        } else {
            match self.spare.recv().await {
                Some(buf) => buf,
                None => return false,
            }
        };
        let full = std::mem::replace(&mut self.filling, next);
        self.tx.send(full).await.is_ok()
    }

    /// Waits for every piece to be written; answers how many bytes were.
    pub async fn finish(mut self) -> ApiResult<u64> {
        if !self.filling.is_empty() {
            let last = std::mem::take(&mut self.filling);
            // A refused send means the writer stopped: its error follows.
            let _ = self.tx.send(last).await;
        }
        drop(self.tx);
        self.done
            .await?
            .map_err(|e| ApiError::internal(format!("storing an upload: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use cat2_core::storage::ReadAt;

    use super::*;

    /// A staged object in memory that records the size of every write.
    #[derive(Default)]
    struct Recorded {
        bytes: Mutex<Vec<u8>>,
        writes: Mutex<Vec<usize>>,
        fail: bool,
    }

    impl ReadAt for Recorded {
        fn len(&self) -> u64 {
            self.bytes.lock().unwrap().len() as u64
        }
        fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> std::io::Result<usize> {
            unreachable!("a sink only writes")
        }
    }

    impl StagedIo for Recorded {
        fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            if self.fail {
                return Err(std::io::Error::other("disk full"));
            }
            let mut bytes = self.bytes.lock().unwrap();
            assert_eq!(offset, bytes.len() as u64, "writes follow each other");
            bytes.extend_from_slice(data);
            self.writes.lock().unwrap().push(data.len());
            Ok(())
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.bytes.lock().unwrap().truncate(len as usize);
            Ok(())
        }
    }

    #[tokio::test]
    async fn pieces_of_any_size_arrive_whole_and_in_order_in_full_buffers() {
        let io = Arc::new(Recorded::default());
        let mut sink = Sink::new(io.clone());
        let body: Vec<u8> = (0..PIECE * 5 + 12_345).map(|i| (i % 251) as u8).collect();
        let mut rest = &body[..];
        for size in [1, 7, PIECE - 8, PIECE * 2 + 3, 100_000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, later) = rest.split_at((*size).min(rest.len()));
            assert!(sink.write(piece).await);
            rest = later;
        }
        assert_eq!(sink.finish().await.unwrap(), body.len() as u64);
        assert!(*io.bytes.lock().unwrap() == body);
        let writes = io.writes.lock().unwrap();
        assert_eq!(writes.len(), 6);
        assert!(writes[..5].iter().all(|&n| n == PIECE));
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_sink_and_is_its_error() {
        let io = Arc::new(Recorded {
            fail: true,
            ..Recorded::default()
        });
        let mut sink = Sink::new(io);
        let piece = vec![0u8; PIECE];
        let mut accepted = 0;
        while sink.write(&piece).await {
            accepted += 1;
            assert!(accepted < 100, "the sink never noticed its writer stopped");
        }
        // The cause goes to the log; the client is told the server failed.
        let err = sink.finish().await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
