//! cat2-blosc2
