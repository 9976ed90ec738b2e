//! Compression parameters, as plain data.
//!
//! The numbers are C-Blosc2's own enum values, which are also what
//! python-blosc2 (and so the Caterva2 wire format) uses for `codec`, `filters`
//! and `splitmode`.

/// Codec ids (`BLOSC_BLOSCLZ` ...).
pub mod codec {
    pub const BLOSCLZ: u8 = 0;
    pub const LZ4: u8 = 1;
    pub const LZ4HC: u8 = 2;
    pub const ZLIB: u8 = 4;
    pub const ZSTD: u8 = 5;
}

/// Filter ids (`BLOSC_NOFILTER` ...).
pub mod filter {
    pub const NOFILTER: u8 = 0;
    pub const SHUFFLE: u8 = 1;
    pub const BITSHUFFLE: u8 = 2;
    pub const DELTA: u8 = 3;
    pub const TRUNC_PREC: u8 = 4;
}

/// Split modes (`BLOSC_ALWAYS_SPLIT` ...).
pub mod splitmode {
    pub const ALWAYS: i32 = 1;
    pub const NEVER: i32 = 2;
    pub const AUTO: i32 = 3;
    pub const FORWARD_COMPAT: i32 = 4;
}

/// Number of filter slots in a Blosc2 pipeline.
pub const MAX_FILTERS: usize = 6;

/// The compression parameters of a super-chunk, or for creating one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CParams {
    pub codec: u8,
    pub codec_meta: u8,
    pub clevel: u8,
    pub filters: [u8; MAX_FILTERS],
    pub filters_meta: [u8; MAX_FILTERS],
    pub typesize: i32,
    /// Bytes per block; 0 lets C-Blosc2 choose.
    pub blocksize: i32,
    pub nthreads: i16,
    pub splitmode: i32,
    pub use_dict: bool,
    pub tuner: i32,
}

impl CParams {
    /// ZSTD level 1 with byte shuffle: python-blosc2's default, cheap and good.
    pub fn zstd_shuffle(typesize: usize) -> Self {
        CParams {
            codec: codec::ZSTD,
            codec_meta: 0,
            clevel: 1,
            filters: [0, 0, 0, 0, 0, filter::SHUFFLE],
            filters_meta: [0; MAX_FILTERS],
            typesize: clamp_typesize(typesize),
            blocksize: 0,
            nthreads: default_nthreads(),
            splitmode: splitmode::ALWAYS,
            use_dict: false,
            tuner: 0,
        }
    }

    /// LZ4 level 1 with byte shuffle: the fastest standard choice, for data
    /// that is compressed only to travel and be thrown away.
    pub fn lz4_fast(typesize: usize) -> Self {
        CParams {
            codec: codec::LZ4,
            clevel: 1,
            ..CParams::zstd_shuffle(typesize)
        }
    }
}

/// The typesize to record for items of `itemsize` bytes. A super-chunk keeps
/// the real item size (b2nd derives item strides from it); C-Blosc2 itself
/// compresses items wider than 255 bytes as a byte stream in each chunk.
pub fn clamp_typesize(itemsize: usize) -> i32 {
    i32::try_from(itemsize.max(1)).unwrap_or(i32::MAX)
}

/// Threads used inside one compression or decompression call: one on a
/// rayon worker (the work is already spread over the cores there, and
/// C-Blosc2's own threads would only compete with rayon's), else the cores.
pub fn default_nthreads() -> i16 {
    if rayon::current_thread_index().is_some() {
        return 1;
    }
    // Asked once: the answer reads cgroup files, which costs more than a
    // small compression.
    static CORES: std::sync::OnceLock<i16> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().min(16) as i16)
            .unwrap_or(1)
    })
}
