// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared helpers for Veil's command-line tools and end-to-end tests.

pub mod anonymize;
pub mod assets;
pub use veil_testkit::certs;
pub mod faceval;
pub mod frames;
pub mod synth;
