//! cat2-server
