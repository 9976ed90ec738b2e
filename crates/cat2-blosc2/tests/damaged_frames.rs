//! Damaged frames are errors, never aborts.
//!
//! C-Blosc2 2.21 aborts the process on some damaged frames: it frees a frame
//! twice when opening one from a file fails, follows chunk offsets of a frame
//! in memory without bounds checks, and reads the b2nd metalayer at fixed
//! positions (dividing by its chunk and block shapes). cat2-blosc2 checks
//! these parts first; each case here aborted before it did.

use cat2_blosc2::{
    check_b2nd_meta, check_cframe, check_header, ArraySpec, CParams, NdArray, SChunk,
};

fn array_frame() -> Vec<u8> {
    let data: Vec<u8> = (0i32..1000).flat_map(|v| v.to_le_bytes()).collect();
    let spec = ArraySpec {
        shape: vec![1000],
        chunks: vec![100],
        blocks: vec![10],
        dtype: "<i4".into(),
        cparams: CParams::zstd_shuffle(4),
        urlpath: None,
    };
    NdArray::from_buffer(&spec, &data)
        .unwrap()
        .to_cframe()
        .unwrap()
}

fn header_len(frame: &[u8]) -> usize {
    i32::from_be_bytes(frame[11..15].try_into().unwrap()) as usize
}

fn open_file(bytes: &[u8]) -> (bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, bytes).unwrap();
    (NdArray::open(&p).is_ok(), SChunk::open(&p).is_ok())
}

/// Where a frame's offsets index starts: right after the chunks, the
/// header's length plus their bytes (big-endian fields of the header).
fn offsets_index_at(f: &[u8]) -> usize {
    let be = |at: usize, n: usize| {
        f[at..at + n]
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b))
    };
    (be(11, 4) + be(39, 8)) as usize
}

/// `bad` is refused by `check_cframe` with a reason mentioning `why`, and
/// opens neither from memory nor from a file.
fn refused_everywhere(bad: &[u8], why: &str) {
    let e = check_cframe(bad).unwrap_err();
    assert!(e.contains(why), "{e}");
    assert!(NdArray::from_cframe(bad).is_err());
    assert!(SChunk::from_cframe(bad).is_err());
    assert_eq!(open_file(bad), (false, false));
}

#[test]
fn a_sound_frame_passes_every_check() {
    let f = array_frame();
    assert_eq!(check_header(&f).unwrap(), f.len() as u64);
    check_cframe(&f).unwrap();
    assert_eq!(open_file(&f), (true, true));
    assert!(NdArray::from_cframe(&f).is_ok());
}

#[test]
fn a_damaged_filter_count_is_refused_from_a_file() {
    // Byte 70 is the number of filters; C-Blosc2 refuses more than 6, then
    // frees the frame twice.
    let mut f = array_frame();
    f[70] = 0x08;
    assert!(check_header(&f).is_err());
    assert_eq!(open_file(&f), (false, false));
}

/// A filter id C-Blosc2 reserves but does not define made it fail opening
/// the frame after allocating the super-chunk, which it leaked (~65 kB per
/// open; the `stored_file` fuzz target under LeakSanitizer).
#[test]
fn an_undefined_filter_is_refused_before_c_blosc2_opens_the_frame() {
    let f = array_frame();
    let nfilters = usize::from(f[70]);
    assert!(nfilters > 0);
    for id in [5u8, 31, 37, 159] {
        let mut bad = f.clone();
        bad[71] = id;
        let e = check_header(&bad).unwrap_err();
        assert!(e.contains(&format!("filter {id} ")), "{e}");
        assert!(NdArray::from_cframe(&bad).is_err());
        assert!(SChunk::from_cframe(&bad).is_err());
        assert_eq!(open_file(&bad), (false, false));
    }
    for id in [0u8, 4, 32, 36, 160, 255] {
        let mut other = f.clone();
        other[71] = id;
        assert!(check_header(&other).is_ok(), "filter {id}");
    }
}

#[test]
fn a_frame_claiming_no_data_but_holding_some_is_refused() {
    // nbytes (offset 30) negative: C-Blosc2 then reads the trailer right
    // after the header, finds chunks, and frees the frame twice.
    let mut f = array_frame();
    f[30] |= 0x80;
    assert_eq!(open_file(&f), (false, false));
}

#[test]
fn chunk_offsets_pointing_outside_the_frame_are_refused_in_memory() {
    let f = array_frame();
    let hl = header_len(&f);
    // Move the first chunk's header out of the frame by damaging the
    // offsets index (the last chunk before the trailer); find it by
    // checking every single-byte change near the end.
    let mut refused = 0;
    for at in hl..f.len() {
        let mut bad = f.clone();
        bad[at] ^= 0x40;
        if check_cframe(&bad).is_err() {
            refused += 1;
            assert!(NdArray::from_cframe(&bad).is_err());
            assert!(SChunk::from_cframe(&bad).is_err());
        } else {
            // What passes the check C-Blosc2 must survive.
            let _ = NdArray::from_cframe(&bad).map(|a| a.to_vec());
        }
    }
    assert!(refused > 0);
}

#[test]
fn b2nd_metadata_is_checked_before_c_reads_it() {
    // version 0, ndim 1, shape [10], chunks [5], blocks [5], dtype "<i4"
    let mut m = vec![0x97, 0, 1, 0x91, 0xd3];
    m.extend_from_slice(&10i64.to_be_bytes());
    m.extend_from_slice(&[0x91, 0xd2]);
    m.extend_from_slice(&5i32.to_be_bytes());
    m.extend_from_slice(&[0x91, 0xd2]);
    m.extend_from_slice(&5i32.to_be_bytes());
    m.extend_from_slice(&[0, 0xdb]);
    m.extend_from_slice(&3i32.to_be_bytes());
    m.extend_from_slice(b"<i4");
    check_b2nd_meta(&m).unwrap();

    let mut zero_chunks = m.clone();
    zero_chunks[15..19].copy_from_slice(&0i32.to_be_bytes());
    assert!(check_b2nd_meta(&zero_chunks).is_err());

    let mut many_dims = m.clone();
    many_dims[2] = 100;
    assert!(check_b2nd_meta(&many_dims).is_err());

    let mut long_dtype = m.clone();
    let n = long_dtype.len();
    long_dtype[n - 7..n - 3].copy_from_slice(&1000i32.to_be_bytes());
    assert!(check_b2nd_meta(&long_dtype).is_err());

    assert!(check_b2nd_meta(&m[..10]).is_err());
}

#[test]
fn every_single_byte_change_of_a_file_is_survived() {
    let f = array_frame();
    for at in 0..f.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = f.clone();
            bad[at] ^= flip;
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.b2nd");
            std::fs::write(&p, &bad).unwrap();
            if let Ok(a) = NdArray::open(&p) {
                if a.shape().iter().product::<i64>() <= 1 << 20 {
                    let _ = a.to_vec();
                }
            }
            if let Ok(s) = SChunk::open(&p) {
                if s.nbytes() <= 1 << 20 {
                    let _ = s.to_bytes();
                }
            }
        }
    }
}

/// Found by the `blosc2_frame` fuzz target (LeakSanitizer): C-Blosc2's
/// `b2nd_from_cframe` leaks the super-chunk it made from a frame that has no
/// b2nd metalayer, so such a frame is refused before it is called.
#[test]
fn a_super_chunk_is_not_opened_as_an_array_from_memory() {
    let data: Vec<u8> = (0i32..100).flat_map(|v| v.to_le_bytes()).collect();
    let frame = SChunk::from_bytes(&data, 40, &CParams::zstd_shuffle(4))
        .unwrap()
        .to_cframe()
        .unwrap();
    let err = NdArray::from_cframe(&frame).err().unwrap().to_string();
    assert!(err.contains("no b2nd metalayer"), "{err}");
    assert_eq!(
        SChunk::from_cframe(&frame).unwrap().to_bytes().unwrap(),
        data
    );
}

/// Found by the `stored_file` fuzz target: a frame file whose header
/// declares more chunk bytes than lie before its trailer made C-Blosc2
/// allocate a negative size for the offsets index (`get_coffsets`).
#[test]
fn chunk_bytes_running_into_the_trailer_are_refused_from_a_file() {
    let mut f = array_frame();
    let len = f.len() as i64;
    f[39..47].copy_from_slice(&len.to_be_bytes());
    assert_eq!(open_file(&f), (false, false));
    let mut f = array_frame();
    f[39..47].copy_from_slice(&(-1i64).to_be_bytes());
    assert_eq!(open_file(&f), (false, false));
}

/// Opens `bytes` from a file as a super-chunk and as an array, and reads
/// every chunk each way: whatever fails must fail as an error. The errors,
/// those of opening first.
fn read_every_chunk(bytes: &[u8]) -> Vec<cat2_blosc2::Error> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, bytes).unwrap();
    let read = |sc: &SChunk, errors: &mut Vec<cat2_blosc2::Error>| {
        let mut buf = Vec::new();
        for n in 0..sc.nchunks().min(64) {
            errors.extend(sc.chunk(n).err());
            errors.extend(sc.decompress_chunk(n, &mut buf).err());
        }
    };
    let mut errors = Vec::new();
    match SChunk::open(&p) {
        Ok(sc) => read(&sc, &mut errors),
        Err(e) => errors.push(e),
    }
    match NdArray::open(&p) {
        Ok(arr) => read(arr.schunk(), &mut errors),
        Err(e) => errors.push(e),
    }
    errors
}

/// Found by the `stored_file` fuzz target: an offsets index stored as a
/// plain copy (memcpyed) declaring more bytes than it holds made C-Blosc2's
/// `blosc2_getitem` copy from far outside it (a segmentation fault) when a
/// chunk was fetched. Refused when the frame is opened.
#[test]
fn an_offsets_index_copy_shorter_than_it_declares_is_refused() {
    let bytes = include_bytes!("fixtures/fuzz/offsets-copy-too-short.b2frame");
    let errors = read_every_chunk(bytes);
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("offsets index")),
        "{errors:?}"
    );
}

/// Found by the `blosc2_frame` fuzz target: a chunk whose header declares
/// ~600 MB in a 406-byte file made C-Blosc2 allocate (and zero, and leak)
/// that much for every read of it. Reads larger than any part of the frame
/// are refused before C-Blosc2 gets them, as damage naming the chunk.
#[test]
fn a_chunk_declaring_more_than_the_chunk_size_is_damage_not_an_allocation() {
    let bytes = include_bytes!("fixtures/fuzz/chunk-declares-600mb.b2nd");
    let errors = read_every_chunk(bytes);
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.is_damaged_data(), "{e}");
    }
    // The same, made by hand: chunk 3 of a sound array claims 1.5 GB.
    let mut f = array_frame();
    let sc = SChunk::from_cframe(&f).unwrap();
    let chunk = sc.chunk(3).unwrap();
    let at = f.windows(chunk.len()).position(|w| w == chunk).unwrap();
    f[at + 12..at + 16].copy_from_slice(&(1_500_000_000i32).to_le_bytes());
    let errors = read_every_chunk(&f);
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.is_damaged_data(), "{e}");
        assert_eq!(e.chunk(), Some(3), "{e}");
    }
}

/// Uploads read every stored chunk's header (`check_chunk_headers`).
#[test]
fn chunk_headers_are_checked_without_decompressing() {
    use cat2_blosc2::{check_chunk_headers, FileIo};
    let check = |bytes: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.b2nd");
        std::fs::write(&p, bytes).unwrap();
        let io = FileIo::new(std::fs::File::open(&p).unwrap(), "x.b2nd");
        check_chunk_headers(&io, 0)
    };
    let f = array_frame();
    check(&f).unwrap();
    let sc = SChunk::from_cframe(&f).unwrap();
    let chunk = sc.chunk(7).unwrap();
    let at = f.windows(chunk.len()).position(|w| w == chunk).unwrap();
    for (field, value) in [(4, 1_000_000i32), (12, 1_000_000), (12, 8)] {
        let mut bad = f.clone();
        bad[at + field..at + field + 4].copy_from_slice(&value.to_le_bytes());
        let e = check(&bad).unwrap_err();
        assert_eq!(e.chunk(), Some(7), "{e}");
        assert!(e.is_damaged_data(), "{e}");
    }
}

/// Found by the `hdf5_filters` fuzz target (a Blosc2-filtered HDF5 chunk is
/// a frame in memory): a frame C-Blosc2 fails to open from memory made it
/// free pointers it never set (`blosc2_schunk_free` in `frame_to_schunk`).
#[test]
fn a_frame_in_memory_that_fails_to_open_is_an_error() {
    let bytes = include_bytes!("fixtures/fuzz/trailer-frees-garbage.b2frame");
    assert!(SChunk::from_cframe(bytes).is_err());
    assert!(NdArray::from_cframe(bytes).is_err());
    // The same through b2nd_from_cframe (found by the `blosc2_frame` target).
    let bytes = include_bytes!("fixtures/fuzz/array-copy-frees-garbage.b2nd");
    assert!(NdArray::from_cframe(bytes).is_err());
}

/// Found by the `b2z` fuzz target: a vlmeta whose content declares a
/// negative size made C-Blosc2's `blosc2_vlmeta_get` ask malloc for 16
/// exabytes (and write through the NULL it got). Vlmeta are decompressed
/// here instead, their sizes checked first.
#[test]
fn a_vlmeta_declaring_a_negative_size_is_damage() {
    let mut sc = SChunk::new(&CParams::zstd_shuffle(4)).unwrap();
    sc.append_buffer(&[7u8; 400]).unwrap();
    sc.set_vlmeta_raw("x", b"\xb4twenty bytes of meta").unwrap();
    let mut f = sc.to_cframe().unwrap();
    // The content, in the trailer: 0xc6, its length (big-endian), then a
    // Blosc2 chunk whose header declares that many compressed bytes.
    let at = (0..f.len() - 21)
        .find(|&i| {
            let len = u32::from_be_bytes(f[i + 1..i + 5].try_into().unwrap());
            let cbytes = u32::from_le_bytes(f[i + 17..i + 21].try_into().unwrap());
            f[i] == 0xc6 && len == cbytes && len >= 32
        })
        .expect("the vlmeta content")
        + 5;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2frame");
    std::fs::write(&p, &f).unwrap();
    assert_eq!(SChunk::open(&p).unwrap().vlmeta().unwrap().len(), 1);
    f[at + 4..at + 8].copy_from_slice(&(-100i32).to_le_bytes());
    std::fs::write(&p, &f).unwrap();
    let e = SChunk::open(&p).unwrap().vlmeta().unwrap_err();
    assert!(e.is_damaged_data(), "{e}");
    assert!(
        e.to_string().contains("vlmeta \"x\" declares -100 bytes"),
        "{e}"
    );
}

/// Found by the `blosc2_frame` fuzz target: C-Blosc2 reads each chunk offset
/// as an item of the offsets index's own typesize into an 8-byte slot, so an
/// index declaring 4-byte items left half of each offset unset (a read from
/// freed memory under AddressSanitizer, a pointer anywhere without it).
#[test]
fn an_offsets_index_of_items_other_than_8_bytes_is_refused() {
    let f = array_frame();
    let off_pos = offsets_index_at(&f);
    assert_eq!(f[off_pos + 3], 8, "the offsets index's typesize");
    for typesize in [1u8, 4, 16] {
        let mut bad = f.clone();
        bad[off_pos + 3] = typesize;
        refused_everywhere(&bad, "offsets index");
    }
}

/// Found by the `blosc2_frame` fuzz target: an offsets index stored as an
/// "uninitialised" special chunk makes C-Blosc2's `blosc2_getitem` leave
/// the 8-byte slot it reads each offset into as it was, so a chunk was
/// fetched from wherever stack garbage pointed (a heap overflow).
#[test]
fn an_offsets_index_stored_as_uninitialised_is_refused() {
    let f = array_frame();
    let off_pos = offsets_index_at(&f);
    for kind in [4u8, 5, 7] {
        let mut bad = f.clone();
        bad[off_pos + 31] = (bad[off_pos + 31] & !0x70) | (kind << 4);
        refused_everywhere(&bad, "special chunk");
    }
    let bytes = include_bytes!("fixtures/fuzz/offsets-uninit.b2nd");
    assert!(NdArray::from_cframe(bytes).is_err());
    assert_eq!(open_file(bytes), (false, false));
}

/// Found by the `b2z` fuzz target: C-Blosc2 checks a metalayer's content
/// against its header (or a vlmeta's against its trailer) by adding offset
/// and length in 32 bits, so a length near 2^31 passed the check and 2 GB
/// were copied from the header (a heap overflow). Both indexes are checked
/// before C-Blosc2 reads them.
#[test]
fn a_metalayer_declaring_two_gigabytes_is_refused() {
    let mut sc = SChunk::new(&CParams::zstd_shuffle(4)).unwrap();
    sc.append_buffer(&[7u8; 400]).unwrap();
    sc.set_vlmeta_raw("x", b"\xa5hello").unwrap();
    let sound = sc.to_cframe().unwrap();
    check_cframe(&sound).unwrap();
    // The first metalayer's content in the header ("b2nd" of an array), and
    // the vlmeta's in the trailer: 0xc6 and a big-endian u32 length.
    let header_content = |f: &[u8]| {
        let at = i32::from_be_bytes(f[100..104].try_into().unwrap()) as usize;
        assert_eq!(f[at], 0xc6);
        at + 1
    };
    let trailer_len =
        |f: &[u8]| u32::from_be_bytes(f[f.len() - 22..f.len() - 18].try_into().unwrap()) as usize;
    let trailer_content = |f: &[u8]| {
        let t = f.len() - trailer_len(f);
        let name_len = usize::from(f[t + 9] & 0x1f);
        let at = i32::from_be_bytes(f[t + 11 + name_len..t + 15 + name_len].try_into().unwrap());
        assert_eq!(f[t + at as usize], 0xc6);
        t + at as usize + 1
    };
    let arr = array_frame();
    let cases = [
        (arr.clone(), header_content(&arr)),
        (sound.clone(), trailer_content(&sound)),
    ];
    for (frame, at) in cases {
        for len in [0x7fff_ffffu32, 0x7fff_fff0, 0xffff_ffff, 1 << 20] {
            let mut bad = frame.clone();
            bad[at..at + 4].copy_from_slice(&len.to_be_bytes());
            refused_everywhere(&bad, "does not fit");
        }
    }
}

/// Found by the `blosc2_frame` fuzz target: a frame whose offsets index
/// marks chunk 0 special and stores chunks 1–3, which are themselves
/// "uninitialised" special chunks. Whether a frame in memory is read in
/// place (C-Blosc2 2.21's copy frees a pointer into the frame when a stored
/// chunk follows a special one) was decided from the chunks' headers, all
/// special here, so it was copied: an abort. It is decided from the index.
#[test]
fn a_stored_chunk_after_a_special_slot_is_read_in_place() {
    let bytes = include_bytes!("fixtures/fuzz/stored-special-after-special.b2nd");
    let sc = SChunk::from_cframe(bytes).expect("opens in place");
    assert_eq!(sc.nchunks(), 4);
    let mut buf = Vec::new();
    for n in 0..4 {
        sc.decompress_chunk(n, &mut buf).expect("a chunk reads");
    }
    let _ = NdArray::from_cframe(bytes).map(|a| a.to_vec());
}

/// Found by the `blosc2_frame` fuzz target: an index of eight chunks
/// "stored" at offset 0 (the index itself: the frame stores no chunk) and
/// two special ones, whose chunks hold more bytes than the header declares.
/// C-Blosc2 2.21's copy of such a frame fails, and on the way out freed a
/// pointer into the frame (an abort). The sizes are compared before the copy.
#[test]
fn chunks_holding_other_than_the_declared_bytes_are_refused_before_the_copy() {
    let bytes = include_bytes!("fixtures/fuzz/offsets-stored-at-the-index.b2nd");
    let Err(e) = NdArray::from_cframe(bytes) else {
        panic!("opened as an array")
    };
    assert!(e.to_string().contains("where its header declares"), "{e}");
    let Err(e) = SChunk::from_cframe(bytes) else {
        panic!("opened as a super-chunk")
    };
    assert!(e.to_string().contains("where its header declares"), "{e}");
}
