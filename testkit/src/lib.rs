// SPDX-License-Identifier: MIT OR Apache-2.0
//! Helpers for Veil's tests, benchmarks and tools that need no GStreamer and no ONNX Runtime,
//! so the sink service's own tests build without either.
//!
//! [`certs`]: a development CA and certificates; [`mesh`]: `zenohd` routers and a relay that
//! cuts a device off; [`net`]: free ports and Zenoh client configs;
//! [`teststore`]: a small acknowledging store over a real Zenoh session; [`paths`]: where the
//! repository and the set-up's Python client are; [`service`]: `sink-service` processes;
//! [`zenoh_acl`]: the service's Zenoh access control for device and operator certificates.

pub mod certs;
pub mod mesh;
pub mod net;
pub mod paths;
pub mod service;
pub mod teststore;
pub mod zenoh_acl;
