// SPDX-License-Identifier: MIT OR Apache-2.0
//! An evaluation of face anonymization that cannot be tuned to by accident: clips composed
//! from public photos over named conditions and seeded random draws, with analytic ground truth
//! ([`conditions`], [`scene`]), a scorer for leaked faces and over-masking ([`score`]), and the
//! glue that encodes clips, runs a job on them and adds the scores up ([`run`]).
//!
//! The material is split in two ([`sources::Split`]): settings are chosen on `tune`; figures
//! are reported on `holdout`, whose faces, backgrounds and seeds tuning never sees.

pub mod conditions;
pub mod image;
pub mod run;
pub mod scene;
pub mod score;
pub mod sources;
