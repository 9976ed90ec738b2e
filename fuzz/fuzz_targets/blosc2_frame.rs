//! Blosc2 frames and chunks as a stored file holds them: opened through
//! `FrameIo` as cat2-core opens frames from storage (`SChunk::open_io`,
//! `NdArray::open_io`), and from memory (`from_cframe`), then their
//! metadata, offsets index, chunks and a small box read. Input: the frame.
//!
//! Chunks declaring more than `MAX_CHUNK` bytes are not decompressed here:
//! refusing those against a request's memory budget is the fetch path's job
//! (the `stored_file` target goes through it).
#![no_main]

use std::sync::Arc;

use cat2_blosc2::{chunk_sizes, NdArray, SChunk};
use cat2rs_fuzz::MemFrame;
use libfuzzer_sys::fuzz_target;

const MAX_CHUNK: i64 = 16 << 20;

fn read_schunk(sc: &SChunk) {
    let _ = (sc.typesize(), sc.nbytes(), sc.cbytes(), sc.cparams());
    let _ = (sc.metalayers(), sc.vlmeta_names(), sc.vlmeta());
    if sc.chunksize() > MAX_CHUNK || sc.blocksize() > MAX_CHUNK {
        return;
    }
    let mut out = Vec::new();
    for n in [0, 1, sc.nchunks() - 1] {
        if let Ok(chunk) = sc.chunk(n) {
            if chunk_sizes(&chunk).is_ok_and(|(nbytes, _, _)| i64::from(nbytes) <= MAX_CHUNK) {
                let _ = sc.decompress_chunk(n, &mut out);
            }
        }
    }
}

fn read_array(arr: &NdArray) {
    let _ = (arr.dtype(), arr.itemsize(), arr.blocks());
    read_schunk(arr.schunk());
    let shape = arr.shape();
    let chunk_items = arr
        .chunks()
        .iter()
        .try_fold(1i64, |a, &c| a.checked_mul(i64::from(c)));
    let fits = chunk_items
        .and_then(|n| n.checked_mul(arr.itemsize() as i64))
        .is_some_and(|n| n <= MAX_CHUNK);
    if !fits {
        return;
    }
    let start = vec![0; shape.len()];
    let stop: Vec<i64> = shape.iter().map(|&n| n.clamp(0, 3)).collect();
    let _ = arr.read_box_vec(&start, &stop);
    let start: Vec<i64> = shape.iter().map(|&n| (n - 2).max(0)).collect();
    let _ = arr.read_box_vec(&start, &shape);
}

fuzz_target!(|data: &[u8]| {
    let io = Arc::new(MemFrame(data.to_vec()));
    let _ = cat2_blosc2::read_frame_index_io(&*io, 0);
    match NdArray::open_io(io.clone()) {
        Ok(arr) => read_array(&arr),
        Err(_) => {
            if let Ok(sc) = SChunk::open_io(io) {
                read_schunk(&sc);
            }
        }
    }
    if let Ok(arr) = NdArray::from_cframe(data) {
        read_array(&arr);
    } else if let Ok(sc) = SChunk::from_cframe(data) {
        read_schunk(&sc);
    }
});
