//! cat2-proto
