// SPDX-License-Identifier: MIT OR Apache-2.0
//! Inspection images: which frames may leave the device, and how they travel.
//!
//! Per stream, `image-retention`: `none` (the default: no image ever leaves), `failures` (the
//! frame of an NG part, JPEG-encoded on the device, travels as an `image` record tied to its
//! `inspection` record; OK frames are dropped right after the decision, never encoded), `all`
//! (explicit opt-in: every inspected part's frame). The record body carries the JPEG in base64
//! with its SHA-256, which the inspection record names.

use base64::Engine;
use sha2::{Digest, Sha256};
use veil_wire::event::{Decision, ImageRecord};

/// The JPEG of an RGB frame (tightly packed, `w`×`h`), at `quality` 1–100. Deterministic: the
/// same pixels give the same bytes.
pub fn encode_jpeg(rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>, String> {
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| format!("width {w} is beyond JPEG's 65535"))?,
        u16::try_from(h).map_err(|_| format!("height {h} is beyond JPEG's 65535"))?,
    );
    if rgb.len() != (w as usize) * (h as usize) * 3 {
        return Err(format!("{} bytes are not a {w}×{h} RGB frame", rgb.len()));
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `image` record of a kept frame.
pub fn image_record(
    part: u64,
    decision: Decision,
    time: &str,
    jpeg: &[u8],
    w: u32,
    h: u32,
) -> ImageRecord {
    ImageRecord {
        version: 1,
        part,
        decision,
        time: time.to_owned(),
        format: "jpeg".into(),
        width: w,
        height: h,
        bytes: jpeg.len() as u64,
        sha256: sha256_hex(jpeg),
        data: base64::engine::general_purpose::STANDARD.encode(jpeg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_deterministic_jpegs() {
        let rgb: Vec<u8> = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        let a = encode_jpeg(&rgb, 32, 16, 85).unwrap();
        assert_eq!(&a[..3], &[0xff, 0xd8, 0xff], "a JPEG starts with SOI");
        assert_eq!(a, encode_jpeg(&rgb, 32, 16, 85).unwrap());
        assert!(encode_jpeg(&rgb, 32, 17, 85).is_err());
        let image = image_record(
            3,
            Decision::Ng,
            "2026-11-23T10:00:00.000000000Z",
            &a,
            32,
            16,
        );
        assert_eq!(image.sha256, sha256_hex(&a));
        assert_eq!(image.bytes, a.len() as u64);
        assert!(image.data.starts_with("/9j/"));
    }
}
