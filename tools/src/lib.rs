//! Shared helpers for Veil's command-line tools and end-to-end tests.

pub mod assets;
pub mod certs;
pub mod frames;
pub mod faceval;
pub mod synth;
