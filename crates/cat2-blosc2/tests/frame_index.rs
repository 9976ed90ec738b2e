//! The offsets index of frame files (`read_frame_index`), and writing single
//! chunks into a frame file in place — the two halves of filling an array a
//! chunk at a time.

mod common;

use std::fs::File;

use cat2_blosc2::{
    read_frame_index, special_chunk, ArraySpec, CParams, ChunkSlot, Compressor, NdArray, SChunk,
    Special,
};
use common::fixtures_dir;

fn spec(shape: &[i64], chunks: &[i32], blocks: &[i32]) -> ArraySpec {
    ArraySpec {
        shape: shape.to_vec(),
        chunks: chunks.to_vec(),
        blocks: blocks.to_vec(),
        dtype: "<i4".into(),
        cparams: CParams::zstd_shuffle(4),
        urlpath: None,
    }
}

fn index_of(path: &std::path::Path) -> Vec<ChunkSlot> {
    read_frame_index(&mut File::open(path).unwrap()).unwrap()
}

const UNWRITTEN: ChunkSlot = ChunkSlot::Special(Special::Uninit);

#[test]
fn a_python_uninit_frame_is_all_unwritten_slots() {
    let index = index_of(&fixtures_dir().join("special_uninit.b2nd"));
    assert_eq!(index, vec![UNWRITTEN; 3]);
    assert!(index.iter().all(|s| s.is_unwritten()));
}

#[test]
fn a_python_frame_of_zeros_and_of_data_is_all_written() {
    let zeros = index_of(&fixtures_dir().join("special_zeros.b2nd"));
    assert!(!zeros.is_empty());
    assert!(zeros
        .iter()
        .all(|s| *s == ChunkSlot::Special(Special::Zero)));
    let full = index_of(&fixtures_dir().join("d3_i32_blosclz_shuffle.b2nd"));
    assert!(!full.is_empty());
    assert!(full.iter().all(|s| matches!(s, ChunkSlot::Stored(_))));
}

#[test]
fn chunks_written_into_a_frame_file_show_in_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fill.b2nd");
    std::fs::copy(fixtures_dir().join("special_uninit.b2nd"), &path).unwrap();
    let (chunksize, blocksize) = {
        let sc = SChunk::open(&path).unwrap();
        (sc.chunksize(), sc.blocksize())
    };
    let mut cp = CParams::zstd_shuffle(4);
    cp.blocksize = blocksize as i32;
    let data: Vec<u8> = (0..chunksize as i32 / 4)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let chunk = Compressor::new(&cp).unwrap().compress(&data).unwrap();
    let zeros = special_chunk(&cp, chunksize as i32, false).unwrap();
    {
        let mut sc = SChunk::open(&path).unwrap();
        sc.update_chunk(2, &chunk).unwrap();
        sc.update_chunk(0, &zeros).unwrap();
        sc.set_vlmeta("fill_state", &rmpv::Value::String("filling".into()))
            .unwrap();
    }
    let index = index_of(&path);
    assert_eq!(index[0], ChunkSlot::Special(Special::Zero));
    assert_eq!(index[1], UNWRITTEN);
    assert!(matches!(index[2], ChunkSlot::Stored(_)));

    // The frame reads back as an array holding what was written.
    let arr = NdArray::open(&path).unwrap();
    assert_eq!(arr.shape(), [12, 5]);
    let mut out = Vec::new();
    arr.schunk().decompress_chunk(2, &mut out).unwrap();
    assert_eq!(out, data);
    let state = arr.schunk().vlmeta_raw("fill_state").unwrap().unwrap();
    assert_eq!(
        cat2_blosc2::decode_msgpack(&state),
        rmpv::Value::String("filling".into())
    );
}

#[test]
fn an_in_memory_uninit_array_saved_to_a_file_is_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.b2nd");
    NdArray::uninit(&spec(&[5000], &[1000], &[250]))
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(index_of(&path), vec![UNWRITTEN; 5]);
}

#[test]
fn what_is_not_a_frame_is_an_error_not_a_panic() {
    let mut junk = std::io::Cursor::new(vec![0u8; 100]);
    assert!(read_frame_index(&mut junk).is_err());
    let mut short = std::io::Cursor::new(b"\x9e\xa8b2frame\0".to_vec());
    assert!(read_frame_index(&mut short).is_err());
    let mut empty = std::io::Cursor::new(Vec::new());
    assert!(read_frame_index(&mut empty).is_err());
    // A real header whose index points past the end of the data.
    let mut frame = std::fs::read(fixtures_dir().join("special_uninit.b2nd")).unwrap();
    frame.truncate(90);
    assert!(read_frame_index(&mut std::io::Cursor::new(frame)).is_err());
}

#[test]
fn writing_a_chunk_in_place_keeps_a_wide_typesize_in_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.b2nd");
    std::fs::copy(fixtures_dir().join("d1_S300_wide.b2nd"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    {
        let mut sc = SChunk::open(&path).unwrap();
        let chunk = sc.chunk(0).unwrap();
        sc.update_chunk(0, &chunk).unwrap();
        sc.set_vlmeta("x", &rmpv::Value::Nil).unwrap();
    }
    let after = std::fs::read(&path).unwrap();
    assert_eq!(before[47..52], after[47..52]);
}

#[test]
fn an_open_array_keeps_reading_the_file_it_opened_when_another_is_renamed_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.b2nd");
    std::fs::copy(fixtures_dir().join("d3_i32_blosclz_shuffle.b2nd"), &path).unwrap();
    let arr = NdArray::open(&path).unwrap();
    let sc = SChunk::open(&path).unwrap();
    let want = arr.to_vec().unwrap();
    let chunk0 = sc.chunk(0).unwrap();
    // A writer replaces the file.
    let temp = dir.path().join("new");
    std::fs::copy(fixtures_dir().join("special_uninit.b2nd"), &temp).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    // Every read of the open handles still sees the old frame, whole.
    assert_eq!(arr.to_vec().unwrap(), want);
    assert_eq!(sc.chunk(0).unwrap(), chunk0);
    assert!(sc.vlmeta().is_ok());
    // A new handle sees the new one.
    let new = NdArray::open(&path).unwrap();
    assert_eq!(new.shape(), [12, 5]);
    assert_eq!(index_of(&path), vec![UNWRITTEN; 3]);
}
