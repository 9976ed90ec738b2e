//! The frame lock: C-Blosc2's `.b2lock` sidecar, shared with the reference
//! server and with any python-blosc2 handle opened with `locking=True`.
//!
//! Layout, as C-Blosc2 (3.2+) makes it and as observed from python-blosc2
//! 4.14: a file `<frame>.b2lock` beside the frame, created empty (mode 0666
//! less the umask) by the first handle that locks; bytes 0..8 stay zero (the
//! range Windows byte-locks), and bytes 8..16 hold a little-endian `u64`
//! generation counter that every exclusive holder that mutates the frame
//! bumps. Readers take `flock(LOCK_SH)` on the sidecar, writers `LOCK_EX`.
//!
//! `flock` locks belong to an open file description, so two [`FrameLock`]s
//! taken in the same process (one per request) exclude each other exactly as
//! two processes do: one mechanism serialises writers across threads and
//! across servers sharing a state directory.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// Where the generation counter sits in the sidecar.
const GENERATION_AT: u64 = 8;

/// `<frame>.b2lock`.
pub fn sidecar_path(frame: &Path) -> PathBuf {
    let mut s = frame.as_os_str().to_owned();
    s.push(".b2lock");
    PathBuf::from(s)
}

/// The generation counter of `frame`'s sidecar, if it has one.
pub fn generation(frame: &Path) -> Option<u64> {
    let file = File::open(sidecar_path(frame)).ok()?;
    read_generation(&file).ok().flatten()
}

fn read_generation(file: &File) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], GENERATION_AT + got as u64)? {
            0 => return Ok(None),
            n => got += n,
        }
    }
    Ok(Some(u64::from_le_bytes(buf)))
}

/// A held lock on a frame, released when dropped (closing the sidecar's
/// descriptor releases its `flock`).
#[derive(Debug)]
pub struct FrameLock {
    sidecar: File,
    exclusive: bool,
}

impl FrameLock {
    /// Waits for, and takes, the exclusive lock on `frame`: no other writer
    /// and no locking reader holds it until this is dropped.
    pub fn exclusive(frame: &Path) -> std::io::Result<FrameLock> {
        Self::take(frame, FlockOperation::LockExclusive, true)
    }

    /// Waits for, and takes, a shared lock on `frame`: writers wait until
    /// this is dropped, readers do not.
    pub fn shared(frame: &Path) -> std::io::Result<FrameLock> {
        Self::take(frame, FlockOperation::LockShared, false)
    }

    fn take(frame: &Path, op: FlockOperation, exclusive: bool) -> std::io::Result<FrameLock> {
        let path = sidecar_path(frame);
        let sidecar = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        loop {
            match flock(&sidecar, op) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(FrameLock { sidecar, exclusive })
    }

    /// Counts one more mutation of the frame: the counter at offset 8 goes up
    /// by one (from 0 in a sidecar that has none yet). Returns the new value.
    ///
    /// Call it while the frame is being changed, before the change becomes
    /// visible, so that a validator built from it never stays put across a
    /// change: the frame's size and mtime alone can (a chunk of zeros adds no
    /// bytes).
    pub fn bump_generation(&self) -> std::io::Result<u64> {
        if !self.exclusive {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the frame's generation moves only under its exclusive lock",
            ));
        }
        let now = read_generation(&self.sidecar)?.unwrap_or(0);
        let next = now.wrapping_add(1);
        self.sidecar
            .write_all_at(&next.to_le_bytes(), GENERATION_AT)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn the_sidecar_is_made_as_c_blosc2_makes_it() {
        let dir = tempfile::tempdir().unwrap();
        let frame = dir.path().join("a.b2nd");
        assert_eq!(generation(&frame), None);
        let lock = FrameLock::exclusive(&frame).unwrap();
        // Created empty: no generation until a mutation.
        assert_eq!(std::fs::read(sidecar_path(&frame)).unwrap(), b"");
        assert_eq!(generation(&frame), None);
        assert_eq!(lock.bump_generation().unwrap(), 1);
        assert_eq!(lock.bump_generation().unwrap(), 2);
        let bytes = std::fs::read(sidecar_path(&frame)).unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(generation(&frame), Some(2));
    }

    #[test]
    fn a_shared_lock_cannot_move_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let frame = dir.path().join("a.b2nd");
        let lock = FrameLock::shared(&frame).unwrap();
        assert!(lock.bump_generation().is_err());
        // Two readers share.
        let _other = FrameLock::shared(&frame).unwrap();
    }

    #[test]
    fn an_exclusive_lock_excludes_another_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let frame = dir.path().join("a.b2nd");
        let held = FrameLock::exclusive(&frame).unwrap();
        let (tx, rx) = mpsc::channel();
        let f = frame.clone();
        let waiter = std::thread::spawn(move || {
            let lock = FrameLock::exclusive(&f).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }
}
