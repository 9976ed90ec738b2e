//! Single chunks (`Compressor`, `Decompressor`, `Special`, `special_chunk`),
//! writes into arrays, and the errors — never panics — that bad input gives.

mod common;

use cat2_blosc2::cparams::{codec, filter};
use cat2_blosc2::{
    chunk_sizes, special_chunk, ArraySpec, CParams, Compressor, Decompressor, Error, NdArray,
    SChunk, Special, MAX_DIM,
};
use common::{c_order_box, fixtures_dir};

fn spec(shape: &[i64], chunks: &[i32], blocks: &[i32], dtype: &str, itemsize: usize) -> ArraySpec {
    ArraySpec {
        shape: shape.to_vec(),
        chunks: chunks.to_vec(),
        blocks: blocks.to_vec(),
        dtype: dtype.to_string(),
        cparams: CParams::zstd_shuffle(itemsize),
        urlpath: None,
    }
}

fn ints(n: i32) -> Vec<u8> {
    (0..n).flat_map(|i| (i * 7 - 100).to_le_bytes()).collect()
}

// --- Compressor / Decompressor

#[test]
fn compressor_round_trips_every_codec_and_filter() {
    let data: Vec<u8> = (0..5000u32).flat_map(|i| (i / 3).to_le_bytes()).collect();
    let mut dctx = Decompressor::new(2).unwrap();
    let mut out = Vec::new();
    for c in [
        codec::BLOSCLZ,
        codec::LZ4,
        codec::LZ4HC,
        codec::ZLIB,
        codec::ZSTD,
    ] {
        for f in [filter::NOFILTER, filter::SHUFFLE, filter::BITSHUFFLE] {
            let mut cp = CParams::zstd_shuffle(4);
            cp.codec = c;
            cp.filters = [0, 0, 0, 0, 0, f];
            let chunk = Compressor::new(&cp).unwrap().compress(&data).unwrap();
            let (nbytes, cbytes, blocksize) = chunk_sizes(&chunk).unwrap();
            assert_eq!(nbytes as usize, data.len(), "codec {c} filter {f}");
            assert_eq!(cbytes as usize, chunk.len(), "codec {c} filter {f}");
            assert!(blocksize > 0);
            assert!(chunk.len() <= data.len() + 32, "codec {c} filter {f}");
            assert_eq!(Special::of(&chunk), Special::None);
            dctx.decompress(&chunk, &mut out).unwrap();
            assert!(out == data, "codec {c} filter {f}");
        }
    }
}

#[test]
fn compressed_chunks_append_to_a_superchunk() {
    let cp = CParams::lz4_fast(4);
    let mut cctx = Compressor::new(&cp).unwrap();
    let mut sc = SChunk::new(&cp).unwrap();
    let parts = [ints(100), ints(100), ints(37)];
    let chunks: Vec<Vec<u8>> = parts.iter().map(|p| cctx.compress(p).unwrap()).collect();
    for c in &chunks {
        sc.append_chunk(c).unwrap();
    }
    assert_eq!(sc.nchunks(), 3);
    assert_eq!(sc.to_bytes().unwrap(), parts.concat());
    // Stored chunks are the ones that were appended, byte for byte.
    for (n, c) in chunks.iter().enumerate() {
        assert_eq!(&sc.chunk(n as i64).unwrap(), c, "chunk {n}");
    }
    // One item per typesize unit.
    assert_eq!(sc.slice(99, 101).unwrap(), parts.concat()[396..404]);
}

#[test]
fn empty_input_compresses_to_a_header() {
    let chunk = Compressor::new(&CParams::zstd_shuffle(1))
        .unwrap()
        .compress(&[])
        .unwrap();
    let (nbytes, cbytes, _) = chunk_sizes(&chunk).unwrap();
    assert_eq!((nbytes, cbytes as usize), (0, chunk.len()));
    let mut out = vec![1, 2, 3];
    Decompressor::new(1)
        .unwrap()
        .decompress(&chunk, &mut out)
        .unwrap();
    assert!(out.is_empty());
}

// --- special chunks

#[test]
fn special_chunks_are_headers_that_decompress_to_zeros() {
    let cp = CParams::zstd_shuffle(8);
    let zeros = special_chunk(&cp, 800, false).unwrap();
    let uninit = special_chunk(&cp, 800, true).unwrap();
    assert_eq!(Special::of(&zeros), Special::Zero);
    assert_eq!(Special::of(&uninit), Special::Uninit);
    for c in [&zeros, &uninit] {
        assert_eq!(c.len(), 32, "header only");
        let (nbytes, cbytes, _) = chunk_sizes(c).unwrap();
        assert_eq!((nbytes, cbytes), (800, 32));
    }
    let mut out = Vec::new();
    Decompressor::new(1)
        .unwrap()
        .decompress(&zeros, &mut out)
        .unwrap();
    assert_eq!(out, vec![0u8; 800]);

    let mut sc = SChunk::new(&cp).unwrap();
    sc.append_chunk(&zeros).unwrap();
    sc.append_buffer(&[7u8; 800]).unwrap();
    assert_eq!(Special::of(&sc.chunk(0).unwrap()), Special::Zero);
    assert_eq!(Special::of(&sc.chunk(1).unwrap()), Special::None);
    let all = sc.to_bytes().unwrap();
    assert_eq!(&all[..800], &[0u8; 800][..]);
    assert_eq!(&all[800..], &[7u8; 800][..]);
}

#[test]
fn special_of_reads_only_the_marker_bits() {
    assert_eq!(Special::of(&[]), Special::None);
    assert_eq!(Special::of(&[0u8; 31]), Special::None);
    for (code, want) in [
        (0u8, Special::None),
        (1, Special::Zero),
        (2, Special::Nan),
        (3, Special::Value),
        (4, Special::Uninit),
        (5, Special::None),
    ] {
        let mut header = [0u8; 32];
        header[31] = (code << 4) | 0x0f;
        assert_eq!(Special::of(&header), want, "code {code}");
    }
}

#[test]
fn new_arrays_are_made_of_special_chunks_until_written() {
    let s = spec(&[10, 10], &[5, 5], &[5, 5], "<i4", 4);
    let zeros = NdArray::zeros(&s).unwrap();
    assert_eq!(zeros.to_vec().unwrap(), vec![0u8; 400]);
    let mut arr = NdArray::uninit(&s).unwrap();
    let sc = arr.schunk();
    assert_eq!(sc.nchunks(), 4);
    for n in 0..4 {
        assert_eq!(
            Special::of(&zeros.schunk().chunk(n).unwrap()),
            Special::Zero
        );
        assert_eq!(Special::of(&sc.chunk(n).unwrap()), Special::Uninit);
    }
    // Filling one whole chunk makes it a real chunk; the others stay unwritten.
    let block = ints(25);
    arr.write_box(&[5, 0], &[10, 5], &block).unwrap();
    let sc = arr.schunk();
    assert_eq!(Special::of(&sc.chunk(2).unwrap()), Special::None);
    for n in [0, 1, 3] {
        assert_eq!(
            Special::of(&sc.chunk(n).unwrap()),
            Special::Uninit,
            "chunk {n}"
        );
    }
    let mut back = vec![0u8; 100];
    arr.read_box(&[5, 0], &[10, 5], &mut back).unwrap();
    assert_eq!(back, block);
}

// --- writes, resizes and frames of new arrays

#[test]
fn write_box_then_read_everything() {
    let shape = [7i64, 9];
    let data = ints(63);
    let mut arr = NdArray::from_buffer(&spec(&shape, &[3, 4], &[2, 2], "<i4", 4), &data).unwrap();
    let patch: Vec<u8> = (0..6i32).flat_map(|v| (-v).to_le_bytes()).collect();
    arr.write_box(&[2, 3], &[4, 6], &patch).unwrap();
    let mut want = data.clone();
    for (k, (r, c)) in [(2, 3), (2, 4), (2, 5), (3, 3), (3, 4), (3, 5)]
        .iter()
        .enumerate()
    {
        let at = (r * 9 + c) * 4;
        want[at..at + 4].copy_from_slice(&patch[k * 4..k * 4 + 4]);
    }
    assert_eq!(arr.to_vec().unwrap(), want);
    let copy = NdArray::from_cframe(&arr.to_cframe().unwrap()).unwrap();
    assert_eq!(copy.to_vec().unwrap(), want);
    let b = c_order_box(&want, &shape, 4, &[1, 2], &[6, 8]);
    let mut got = vec![0u8; b.len()];
    copy.read_box(&[1, 2], &[6, 8], &mut got).unwrap();
    assert_eq!(got, b);
}

#[test]
fn resize_keeps_items_and_zero_fills() {
    let mut arr =
        NdArray::from_buffer(&spec(&[4, 3], &[2, 2], &[1, 2], "<i4", 4), &ints(12)).unwrap();
    arr.resize(&[6, 3]).unwrap();
    assert_eq!(arr.shape(), vec![6, 3]);
    let all = arr.to_vec().unwrap();
    assert_eq!(&all[..48], &ints(12)[..]);
    assert_eq!(&all[48..], &[0u8; 24][..]);
    assert_eq!(arr.schunk().nchunks(), 3 * 2);
    assert!(arr.resize(&[6]).is_err());
    assert!(arr.resize(&[-1, 3]).is_err());
}

#[test]
fn zero_sized_arrays_have_no_items() {
    let arr = NdArray::from_buffer(&spec(&[0, 5], &[0, 5], &[0, 5], "<f8", 8), &[]).unwrap();
    assert_eq!(arr.shape(), vec![0, 5]);
    assert!(arr.to_vec().unwrap().is_empty());
    let copy = NdArray::from_cframe(&arr.to_cframe().unwrap()).unwrap();
    assert_eq!(copy.shape(), vec![0, 5]);
}

fn wide_items() -> Vec<u8> {
    (0..4 * 300).map(|i| (i % 256) as u8).collect()
}

#[test]
fn items_wider_than_255_bytes_work_with_their_full_typesize() {
    // python-blosc2 keeps typesize = itemsize (300) in the frame; C-Blosc2
    // writes 1 into each chunk header by itself.
    let data = wide_items();
    let mut s = spec(&[4], &[2], &[1], "|S300", 300);
    s.cparams.typesize = 300;
    let arr = NdArray::from_buffer(&s, &data).unwrap();
    assert_eq!(arr.itemsize(), 300);
    assert_eq!(arr.to_vec().unwrap(), data);
    let chunk = arr.schunk().chunk(0).unwrap();
    assert_eq!(chunk[3], 1, "chunk header typesize");
    let mut one = vec![0u8; 300];
    arr.read_box(&[3], &[4], &mut one).unwrap();
    assert_eq!(one, data[900..]);
}

#[test]
fn saved_arrays_of_wide_items_reopen_with_their_itemsize() {
    let data = wide_items();
    let mut s = spec(&[4], &[2], &[1], "|S300", 300);
    s.cparams.typesize = 300;
    let arr = NdArray::from_buffer(&s, &data).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wide.b2nd");
    arr.save(&path).unwrap();
    let back = NdArray::open(&path).unwrap();
    assert_eq!(back.itemsize(), 300);
    assert_eq!(back.to_vec().unwrap(), data);
}

#[test]
fn arrays_of_items_wider_than_255_bytes_keep_every_byte() {
    let data = wide_items();
    let arr = NdArray::from_buffer(&spec(&[4], &[2], &[1], "|S300", 300), &data).unwrap();
    assert_eq!(arr.itemsize(), 300);
    assert_eq!(arr.to_vec().unwrap(), data);
}

// --- errors

fn valid_array_frame() -> Vec<u8> {
    NdArray::from_buffer(&spec(&[50], &[20], &[10], "<i4", 4), &ints(50))
        .unwrap()
        .to_cframe()
        .unwrap()
}

fn valid_schunk_frame() -> Vec<u8> {
    let mut sc = SChunk::from_bytes(&ints(300), 400, &CParams::zstd_shuffle(4)).unwrap();
    sc.set_vlmeta("k", &rmpv::Value::from("v")).unwrap();
    sc.to_cframe().unwrap()
}

#[test]
fn garbage_bytes_are_not_frames() {
    let mut fake_magic = vec![0x9e, 0xa8];
    fake_magic.extend_from_slice(b"b2frame\0");
    fake_magic.extend_from_slice(&[0xff; 200]);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        b"hello".to_vec(),
        vec![0u8; 4096],
        (0..1000u32).map(|i| (i * 7919 % 256) as u8).collect(),
        fake_magic,
    ];
    for g in &garbage {
        assert!(NdArray::from_cframe(g).is_err(), "{} bytes", g.len());
        assert!(SChunk::from_cframe(g).is_err(), "{} bytes", g.len());
    }
}

#[test]
fn truncated_frames_are_errors() {
    for frame in [valid_array_frame(), valid_schunk_frame()] {
        let n = frame.len();
        for cut in [0, 1, 16, 40, n / 4, n / 2, n - 40, n - 1] {
            let part = &frame[..cut];
            assert!(SChunk::from_cframe(part).is_err(), "{cut} of {n} bytes");
            assert!(NdArray::from_cframe(part).is_err(), "{cut} of {n} bytes");
        }
    }
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = valid_array_frame();
    let cases = [
        ("half.b2nd", frame[..frame.len() / 2].to_vec()),
        ("empty.b2nd", vec![]),
        ("text.b2nd", b"not a frame at all".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        assert!(NdArray::open(&p).is_err(), "{name}");
        assert!(SChunk::open(&p).is_err(), "{name}");
    }
}

#[test]
fn missing_files_and_directories_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.b2nd");
    let e = NdArray::open(&missing).err().expect("a missing file fails");
    assert!(!e.to_string().is_empty());
    assert!(SChunk::open(&missing).is_err());
    assert!(NdArray::open(tmp.path()).is_err());
    assert!(SChunk::open(tmp.path()).is_err());
}

#[test]
fn boxes_outside_the_array_are_errors() {
    let arr = NdArray::from_buffer(&spec(&[5, 6], &[2, 3], &[1, 3], "<i4", 4), &ints(30)).unwrap();
    let bad: [(&[i64], &[i64]); 6] = [
        (&[0, 0], &[6, 6]),
        (&[0, 0], &[5, 7]),
        (&[-1, 0], &[2, 2]),
        (&[3, 3], &[2, 4]),
        (&[0], &[5]),
        (&[0, 0, 0], &[1, 1, 1]),
    ];
    for (start, stop) in bad {
        let n: i64 = start
            .iter()
            .zip(stop)
            .map(|(a, b)| (b - a).max(0))
            .product();
        let mut out = vec![0u8; n as usize * 4];
        let e = arr.read_box(start, stop, &mut out);
        assert!(
            matches!(e, Err(Error::Invalid(_))),
            "{start:?}..{stop:?}: {e:?}"
        );
    }
    // A buffer of the wrong size.
    let mut small = vec![0u8; 3];
    assert!(matches!(
        arr.read_box(&[0, 0], &[1, 1], &mut small),
        Err(Error::Invalid(_))
    ));
    let mut arr = arr;
    assert!(arr.write_box(&[0, 0], &[1, 2], &[0u8; 4]).is_err());
    assert!(arr.write_box(&[4, 5], &[6, 6], &[0u8; 8]).is_err());
}

#[test]
fn chunk_numbers_outside_the_superchunk_are_errors() {
    let sc = SChunk::from_cframe(&valid_schunk_frame()).unwrap();
    let n = sc.nchunks();
    let mut out = Vec::new();
    for bad in [-1, n, n + 10, i64::MAX] {
        assert!(sc.chunk(bad).is_err(), "chunk {bad}");
        assert!(sc.decompress_chunk(bad, &mut out).is_err(), "chunk {bad}");
    }
    let items = sc.nbytes() / 4;
    for (a, b) in [(-1, 2), (0, items + 1), (5, 4)] {
        assert!(sc.slice(a, b).is_err(), "slice {a}..{b}");
    }
    assert!(sc.slice(3, 3).unwrap().is_empty());
}

#[test]
fn bad_array_specs_are_errors() {
    let ok = spec(&[10], &[5], &[5], "<i4", 4);
    assert!(
        NdArray::from_buffer(&ok, &ints(9)).is_err(),
        "too few bytes"
    );
    let mismatched = spec(&[10, 2], &[5], &[5, 1], "<i4", 4);
    assert!(NdArray::zeros(&mismatched).is_err());
    let dims = MAX_DIM + 1;
    let too_many = spec(&vec![1; dims], &vec![1; dims], &vec![1; dims], "<i4", 4);
    assert!(NdArray::uninit(&too_many).is_err());
    let nul = spec(&[10], &[5], &[5], "<i4\0", 4);
    assert!(NdArray::zeros(&nul).is_err());
    assert!(SChunk::from_bytes(b"abc", 0, &CParams::zstd_shuffle(1)).is_err());
}

#[test]
fn from_buffer_with_too_many_bytes_is_an_error() {
    let s = spec(&[10], &[5], &[5], "<i4", 4);
    assert!(NdArray::from_buffer(&s, &ints(11)).is_err());
}

#[test]
fn bad_chunks_are_errors() {
    let mut dctx = Decompressor::new(1).unwrap();
    let mut out = Vec::new();
    assert!(chunk_sizes(&[0u8; 8]).is_err());
    assert!(dctx.decompress(&[], &mut out).is_err());
    assert!(dctx.decompress(&[0u8; 8], &mut out).is_err());
    let chunk = Compressor::new(&CParams::zstd_shuffle(4))
        .unwrap()
        .compress(&ints(1000))
        .unwrap();
    // Cut short: the header promises more bytes than there are.
    assert!(dctx
        .decompress(&chunk[..chunk.len() / 2], &mut out)
        .is_err());
    let mut sc = SChunk::new(&CParams::zstd_shuffle(4)).unwrap();
    assert!(sc.append_chunk(&chunk[..chunk.len() - 1]).is_err());
    assert!(sc.append_chunk(b"short").is_err());
    assert_eq!(sc.nchunks(), 0);
}

#[test]
fn python_chunks_decompress_with_a_standalone_context() {
    // A chunk python-blosc2 stored, decompressed without its super-chunk.
    let sc = SChunk::open(&fixtures_dir().join("frame_ts4.b2frame")).unwrap();
    let mut dctx = Decompressor::new(2).unwrap();
    let mut all = Vec::new();
    let mut out = Vec::new();
    for n in 0..sc.nchunks() {
        dctx.decompress(&sc.chunk(n).unwrap(), &mut out).unwrap();
        all.extend_from_slice(&out);
    }
    assert_eq!(all, sc.to_bytes().unwrap());
}

/// Boxes whose chunks differ only along the first dimension are decompressed and placed
/// in parallel, each chunk into its own run of the output, or, when the chunks' bytes are
/// already in C order, decompressed straight into a new buffer; other boxes scatter chunk
/// by chunk. All give the items in C order, for partial first and last chunks too.
/// The bytes of the 3-D box `[start, stop)` in C order, item `(i, j, k)` given by `item`.
fn box_bytes(
    start: &[i64; 3],
    stop: &[i64; 3],
    item: impl Fn(i64, i64, i64) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for i in start[0]..stop[0] {
        for j in start[1]..stop[1] {
            for k in start[2]..stop[2] {
                out.extend(item(i, j, k));
            }
        }
    }
    out
}

#[test]
fn boxes_over_runs_of_chunks_read_the_right_items() {
    let shape = [7i64, 5, 6];
    let data: Vec<u8> = (0..7 * 5 * 6u16).flat_map(u16::to_le_bytes).collect();
    let at = |i: i64, j: i64, k: i64| ((i * 5 + j) * 6 + k) as u16;
    for (chunks, blocks) in [
        ([2, 5, 6], [1, 3, 4]),
        ([2, 3, 6], [2, 2, 4]),
        ([3, 5, 6], [3, 5, 6]),
    ] {
        let spec = ArraySpec {
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            blocks: blocks.to_vec(),
            dtype: "<u2".into(),
            cparams: CParams::zstd_shuffle(2),
            urlpath: None,
        };
        let arr = NdArray::from_buffer(&spec, &data).unwrap();
        for (start, stop) in [
            ([0, 0, 0], [7, 5, 6]),
            ([1, 1, 2], [6, 4, 5]),
            ([3, 0, 0], [4, 5, 6]),
        ] {
            let n: i64 = start.iter().zip(&stop).map(|(a, b)| b - a).product();
            let mut got = vec![0u8; n as usize * 2];
            arr.read_box(&start, &stop, &mut got).unwrap();
            let want = box_bytes(&start, &stop, |i, j, k| at(i, j, k).to_le_bytes().to_vec());
            assert_eq!(got, want, "chunks {chunks:?}, box {start:?}..{stop:?}");
            let vec = arr.read_box_vec(&start, &stop).unwrap();
            assert_eq!(
                vec, want,
                "read_box_vec: chunks {chunks:?}, box {start:?}..{stop:?}"
            );
        }
    }
}

#[test]
fn small_boxes_of_a_big_chunk_read_the_right_items() {
    // One chunk of many blocks (also uneven ones, padded at the edges): a small box
    // decompresses only the blocks it touches, and must read the same items.
    let shape = [2i64, 40, 50];
    let n = shape.iter().product::<i64>() as u32;
    let data: Vec<u8> = (0..n).flat_map(u32::to_le_bytes).collect();
    let at = |i: i64, j: i64, k: i64| ((i * 40 + j) * 50 + k) as u32;
    for (codec_cp, blocks) in [
        (CParams::zstd_shuffle(4), [1, 8, 50]),
        (CParams::lz4_fast(4), [1, 7, 16]),
        (CParams::zstd_shuffle(4), [2, 5, 9]),
    ] {
        let spec = ArraySpec {
            shape: shape.to_vec(),
            chunks: vec![2, 40, 50],
            blocks: blocks.to_vec(),
            dtype: "<u4".into(),
            cparams: codec_cp,
            urlpath: None,
        };
        let arr = NdArray::from_buffer(&spec, &data).unwrap();
        for (start, stop) in [
            ([0, 0, 0], [1, 3, 4]),
            ([1, 10, 20], [2, 14, 26]),
            ([0, 39, 49], [2, 40, 50]),
            ([1, 5, 0], [2, 6, 50]),
        ] {
            let n: i64 = start.iter().zip(&stop).map(|(a, b)| b - a).product();
            let mut got = vec![0u8; n as usize * 4];
            arr.read_box(&start, &stop, &mut got).unwrap();
            let want = box_bytes(&start, &stop, |i, j, k| at(i, j, k).to_le_bytes().to_vec());
            assert_eq!(got, want, "blocks {blocks:?}, box {start:?}..{stop:?}");
        }
    }
}
