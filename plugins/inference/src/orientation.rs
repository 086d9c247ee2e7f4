// SPDX-License-Identifier: MIT OR Apache-2.0
//! Turning a frame upright for the model, and its detections back: for cameras mounted
//! sideways or upside down (face models are trained on upright faces). The frame itself is
//! not changed; the model sees an upright copy, and what it finds is mapped back to the frame
//! as it is.
//!
//! Turns are named as `videoflip`'s `video-direction` names them: `90r` turns the picture 90°
//! clockwise (the camera is mounted turned 90° counter-clockwise).

/// How the picture is turned before the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    None,
    /// 90° clockwise.
    Clockwise,
    Half,
    /// 90° counter-clockwise.
    CounterClockwise,
}

impl Turn {
    /// The size of a `w`×`h` picture once turned.
    pub fn size(self, w: u32, h: u32) -> (u32, u32) {
        match self {
            Turn::Clockwise | Turn::CounterClockwise => (h, w),
            _ => (w, h),
        }
    }

    /// A point of the turned picture (pixels, continuous coordinates) in the `w`×`h` frame.
    pub fn back(self, x: f32, y: f32, w: u32, h: u32) -> (f32, f32) {
        let (w, h) = (w as f32, h as f32);
        match self {
            Turn::None => (x, y),
            // Clockwise: the frame's (x, y) went to (h - y, x).
            Turn::Clockwise => (y, h - x),
            Turn::Half => (w - x, h - y),
            // Counter-clockwise: the frame's (x, y) went to (y, w - x).
            Turn::CounterClockwise => (w - y, x),
        }
    }

    /// A box `[x0, y0, x1, y1]` of the turned picture in the `w`×`h` frame.
    pub fn box_back(self, b: [f32; 4], w: u32, h: u32) -> [f32; 4] {
        let (ax, ay) = self.back(b[0], b[1], w, h);
        let (bx, by) = self.back(b[2], b[3], w, h);
        [ax.min(bx), ay.min(by), ax.max(bx), ay.max(by)]
    }

    /// Turns one plane of `w`×`h` pixels of `bpp` bytes (rows `stride` bytes apart) into `out`,
    /// rows packed. Returns the turned size.
    ///
    /// Errors: `src` shorter than its declared size.
    pub fn plane(
        self,
        src: &[u8],
        stride: usize,
        w: u32,
        h: u32,
        bpp: usize,
        out: &mut Vec<u8>,
    ) -> Result<(u32, u32), &'static str> {
        let (w, h) = (w as usize, h as usize);
        if h > 0 && src.len() < stride * (h - 1) + w * bpp {
            return Err("frame data too small for its declared size");
        }
        let (tw, th) = self.size(w as u32, h as u32);
        out.clear();
        out.resize(w * h * bpp, 0);
        let row = tw as usize * bpp;
        for y in 0..h {
            for x in 0..w {
                let (tx, ty) = match self {
                    Turn::None => (x, y),
                    Turn::Clockwise => (h - 1 - y, x),
                    Turn::Half => (w - 1 - x, h - 1 - y),
                    Turn::CounterClockwise => (y, w - 1 - x),
                };
                let s = y * stride + x * bpp;
                let d = ty * row + tx * bpp;
                out[d..d + bpp].copy_from_slice(&src[s..s + bpp]);
            }
        }
        Ok((tw, th))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 picture, one byte per pixel: 1 2 3 / 4 5 6.
    const PICTURE: [u8; 6] = [1, 2, 3, 4, 5, 6];

    #[test]
    fn planes_turn_as_videoflip_turns_them() {
        let mut out = Vec::new();
        assert_eq!(
            Turn::Clockwise.plane(&PICTURE, 3, 3, 2, 1, &mut out),
            Ok((2, 3))
        );
        assert_eq!(out, [4, 1, 5, 2, 6, 3]);
        Turn::CounterClockwise
            .plane(&PICTURE, 3, 3, 2, 1, &mut out)
            .unwrap();
        assert_eq!(out, [3, 6, 2, 5, 1, 4]);
        Turn::Half.plane(&PICTURE, 3, 3, 2, 1, &mut out).unwrap();
        assert_eq!(out, [6, 5, 4, 3, 2, 1]);
        // Padded rows and two bytes per pixel (NV12's chroma).
        let padded = [1, 10, 2, 20, 0, 0, 3, 30, 4, 40, 0, 0];
        Turn::Clockwise
            .plane(&padded, 6, 2, 2, 2, &mut out)
            .unwrap();
        assert_eq!(out, [3, 30, 1, 10, 4, 40, 2, 20]);
        assert!(
            Turn::Clockwise
                .plane(&[1, 2], 3, 3, 2, 1, &mut out)
                .is_err()
        );
    }

    #[test]
    fn boxes_found_upright_map_back_to_the_frame_as_it_is() {
        // A box in the top-left corner of a 100×50 frame.
        let frame_box = [0.0, 0.0, 20.0, 10.0];
        for turn in [
            Turn::None,
            Turn::Clockwise,
            Turn::Half,
            Turn::CounterClockwise,
        ] {
            // Where the turned picture shows it, by turning a 100×50 plane with the box drawn.
            let (w, h) = (100u32, 50u32);
            let src: Vec<u8> = (0..h)
                .flat_map(|y| (0..w).map(move |x| u8::from(x < 20 && y < 10)))
                .collect();
            let mut out = Vec::new();
            let (tw, th) = turn.plane(&src, w as usize, w, h, 1, &mut out).unwrap();
            let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
            for y in 0..th {
                for x in 0..tw {
                    if out[(y * tw + x) as usize] == 1 {
                        (x0, y0) = (x0.min(x), y0.min(y));
                        (x1, y1) = (x1.max(x + 1), y1.max(y + 1));
                    }
                }
            }
            let seen = [x0 as f32, y0 as f32, x1 as f32, y1 as f32];
            assert_eq!(turn.box_back(seen, w, h), frame_box, "{turn:?}");
        }
    }
}
