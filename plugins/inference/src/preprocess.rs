// SPDX-License-Identifier: MIT OR Apache-2.0
//! Frame → model input tensor: colour conversion and letterboxed resize.
//!
//! The frame is resized *before* colour conversion, in its own layout (for I420 and NV12 the luma
//! and chroma planes separately), so converting 1080p costs what converting the small model input
//! costs. Resizing is done by `fast_image_resize` and YUV→RGB by `yuvutils-rs`, both SIMD. The
//! scaled content sits in the top-left corner of the model input; the rest is padding.

use fast_image_resize as fr;
use fr::{ImageView, pixels};
use yuvutils_rs::{
    YuvBiPlanarImage, YuvConversionMode, YuvPlanarImage, YuvRange, YuvStandardMatrix,
};

/// Where the frame lands inside the model input, and how to map model pixels back to the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub frame_w: u32,
    pub frame_h: u32,
    pub model_w: u32,
    pub model_h: u32,
    /// Size of the scaled frame inside the model input (top-left aligned).
    pub content_w: u32,
    pub content_h: u32,
}

impl Letterbox {
    /// Fits a `frame_w`×`frame_h` frame into a `model_w`×`model_h` input, keeping its aspect
    /// ratio. Content sizes are even so that 4:2:0 chroma planes scale by exactly one half.
    pub fn new(frame_w: u32, frame_h: u32, model_w: u32, model_h: u32) -> Self {
        let scale = (model_w as f64 / frame_w as f64).min(model_h as f64 / frame_h as f64);
        let even = |v: f64, max: u32| (((v.round() as u32) & !1).max(2)).min(max & !1).max(1);
        Letterbox {
            frame_w,
            frame_h,
            model_w,
            model_h,
            content_w: even(frame_w as f64 * scale, model_w),
            content_h: even(frame_h as f64 * scale, model_h),
        }
    }

    /// Maps a point in model-input pixels to coordinates normalized to the frame (0..1 inside).
    pub fn to_frame(&self, x: f32, y: f32) -> (f64, f64) {
        (
            x as f64 / self.content_w as f64,
            y as f64 / self.content_h as f64,
        )
    }
}

/// Channel order the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How pixel values become tensor values: `(value - mean[c]) / std[c]`, channels in the order
/// the model expects, planar NCHW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub order: ChannelOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The packed RGB-family layouts accepted directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackedFormat {
    Rgb,
    Rgba,
    Bgrx,
    Bgra,
    /// 8-bit grey (infrared and night cameras): the one value feeds all three channels.
    Gray8,
}

impl PackedFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PackedFormat::Gray8 => 1,
            PackedFormat::Rgb => 3,
            _ => 4,
        }
    }
    /// Byte offsets of R, G and B inside a pixel.
    fn rgb_offsets(self) -> [usize; 3] {
        match self {
            PackedFormat::Gray8 => [0, 0, 0],
            PackedFormat::Rgb | PackedFormat::Rgba => [0, 1, 2],
            PackedFormat::Bgrx | PackedFormat::Bgra => [2, 1, 0],
        }
    }
}

/// YUV colour description, from the caps' colorimetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YuvColor {
    pub bt709: bool,
    pub full_range: bool,
}

/// A borrowed frame in one of the supported layouts. Strides are in bytes.
#[derive(Clone, Copy)]
pub enum FrameView<'a> {
    Packed {
        format: PackedFormat,
        data: &'a [u8],
        stride: usize,
    },
    I420 {
        y: (&'a [u8], usize),
        u: (&'a [u8], usize),
        v: (&'a [u8], usize),
        color: YuvColor,
    },
    Nv12 {
        y: (&'a [u8], usize),
        uv: (&'a [u8], usize),
        color: YuvColor,
    },
}

impl<'a> FrameView<'a> {
    /// The same frame seen from `(x0, y0)`: a view of a region, to be read with a letterbox of
    /// the region's size. For I420 and NV12, `x0` and `y0` must be even (the chroma grid).
    pub fn crop(&self, x0: u32, y0: u32) -> Option<FrameView<'a>> {
        let (x0, y0) = (x0 as usize, y0 as usize);
        let from =
            |plane: (&'a [u8], usize), offset: usize| Some((plane.0.get(offset..)?, plane.1));
        Some(match *self {
            FrameView::Packed {
                format,
                data,
                stride,
            } => FrameView::Packed {
                format,
                data: data.get(y0 * stride + x0 * format.bytes_per_pixel()..)?,
                stride,
            },
            FrameView::I420 { y, u, v, color } => {
                if x0 % 2 == 1 || y0 % 2 == 1 {
                    return None;
                }
                FrameView::I420 {
                    y: from(y, y0 * y.1 + x0)?,
                    u: from(u, y0 / 2 * u.1 + x0 / 2)?,
                    v: from(v, y0 / 2 * v.1 + x0 / 2)?,
                    color,
                }
            }
            FrameView::Nv12 { y, uv, color } => {
                if x0 % 2 == 1 || y0 % 2 == 1 {
                    return None;
                }
                FrameView::Nv12 {
                    y: from(y, y0 * y.1 + x0)?,
                    uv: from(uv, y0 / 2 * uv.1 + x0)?,
                    color,
                }
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("frame data too small for its declared size")]
    ShortFrame,
    #[error("resize failed: {0}")]
    Resize(String),
    #[error("colour conversion failed: {0}")]
    Color(String),
}

/// A strided, read-only view of packed `u8` pixels, so frames with padded rows resize in place.
struct StridedView<'a, P> {
    data: &'a [u8],
    stride: usize,
    width: u32,
    height: u32,
    _pixel: std::marker::PhantomData<P>,
}

impl<'a, P: fr::pixels::InnerPixel<Component = u8>> StridedView<'a, P> {
    fn new(
        data: &'a [u8],
        stride: usize,
        width: u32,
        height: u32,
    ) -> Result<Self, PreprocessError> {
        let row = width as usize * std::mem::size_of::<P>();
        let needed = if height == 0 {
            0
        } else {
            stride * (height as usize - 1) + row
        };
        if stride < row || data.len() < needed {
            return Err(PreprocessError::ShortFrame);
        }
        Ok(StridedView {
            data,
            stride,
            width,
            height,
            _pixel: std::marker::PhantomData,
        })
    }
}

// SAFETY: rows handed out are exactly `width` pixels inside `data` (checked in `new`); the pixel
// types used are arrays of `u8` (alignment 1), so the cast from bytes is sound.
unsafe impl<P: fr::pixels::InnerPixel<Component = u8>> ImageView for StridedView<'_, P> {
    type Pixel = P;
    fn width(&self) -> u32 {
        self.width
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn iter_rows(&self, start_row: u32) -> impl Iterator<Item = &[P]> {
        debug_assert_eq!(std::mem::align_of::<P>(), 1);
        let width = self.width as usize;
        (start_row..self.height).map(move |row| {
            let start = row as usize * self.stride;
            let bytes = &self.data[start..start + width * std::mem::size_of::<P>()];
            unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const P, width) }
        })
    }
}

/// Reusable buffers and resizer; one per element instance.
#[derive(Default)]
pub struct Preprocessor {
    resizer: fr::Resizer,
    scratch_a: Vec<u8>,
    scratch_b: Vec<u8>,
    scratch_c: Vec<u8>,
    rgb: Vec<u8>,
}

impl Preprocessor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills `tensor` (NCHW, `3 × model_h × model_w`) from `frame`.
    pub fn run(
        &mut self,
        frame: &FrameView,
        lb: &Letterbox,
        norm: &Normalization,
        tensor: &mut [f32],
    ) -> Result<(), PreprocessError> {
        let (cw, ch) = (lb.content_w, lb.content_h);
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
            .use_alpha(false);
        match *frame {
            FrameView::Packed {
                format,
                data,
                stride,
            } => {
                let bpp = format.bytes_per_pixel();
                let mut out = std::mem::take(&mut self.rgb);
                out.resize(cw as usize * ch as usize * bpp, 0);
                if bpp == 1 {
                    self.resize::<pixels::U8>(
                        data, stride, lb.frame_w, lb.frame_h, &mut out, cw, ch, &options,
                    )?;
                } else if bpp == 3 {
                    self.resize::<pixels::U8x3>(
                        data, stride, lb.frame_w, lb.frame_h, &mut out, cw, ch, &options,
                    )?;
                } else {
                    self.resize::<pixels::U8x4>(
                        data, stride, lb.frame_w, lb.frame_h, &mut out, cw, ch, &options,
                    )?;
                }
                write_tensor(&out, bpp, format.rgb_offsets(), lb, norm, tensor);
                self.rgb = out;
            }
            FrameView::I420 { y, u, v, color } => {
                let (cw2, ch2) = (cw / 2, ch / 2);
                let (fw2, fh2) = (lb.frame_w.div_ceil(2), lb.frame_h.div_ceil(2));
                let mut ys = std::mem::take(&mut self.scratch_a);
                let mut us = std::mem::take(&mut self.scratch_b);
                let mut vs = std::mem::take(&mut self.scratch_c);
                ys.resize((cw * ch) as usize, 0);
                us.resize((cw2 * ch2) as usize, 0);
                vs.resize((cw2 * ch2) as usize, 0);
                self.resize::<pixels::U8>(
                    y.0, y.1, lb.frame_w, lb.frame_h, &mut ys, cw, ch, &options,
                )?;
                self.resize::<pixels::U8>(u.0, u.1, fw2, fh2, &mut us, cw2, ch2, &options)?;
                self.resize::<pixels::U8>(v.0, v.1, fw2, fh2, &mut vs, cw2, ch2, &options)?;
                let image = YuvPlanarImage {
                    y_plane: &ys,
                    y_stride: cw,
                    u_plane: &us,
                    u_stride: cw2,
                    v_plane: &vs,
                    v_stride: cw2,
                    width: cw,
                    height: ch,
                };
                let mut rgb = std::mem::take(&mut self.rgb);
                rgb.resize((cw * ch * 3) as usize, 0);
                let (range, matrix) = yuv_params(color);
                yuvutils_rs::yuv420_to_rgb(&image, &mut rgb, cw * 3, range, matrix)
                    .map_err(|e| PreprocessError::Color(e.to_string()))?;
                write_tensor(&rgb, 3, [0, 1, 2], lb, norm, tensor);
                (self.scratch_a, self.scratch_b, self.scratch_c, self.rgb) = (ys, us, vs, rgb);
            }
            FrameView::Nv12 { y, uv, color } => {
                let (cw2, ch2) = (cw / 2, ch / 2);
                let (fw2, fh2) = (lb.frame_w.div_ceil(2), lb.frame_h.div_ceil(2));
                let mut ys = std::mem::take(&mut self.scratch_a);
                let mut uvs = std::mem::take(&mut self.scratch_b);
                ys.resize((cw * ch) as usize, 0);
                uvs.resize((cw2 * ch2 * 2) as usize, 0);
                self.resize::<pixels::U8>(
                    y.0, y.1, lb.frame_w, lb.frame_h, &mut ys, cw, ch, &options,
                )?;
                self.resize::<pixels::U8x2>(uv.0, uv.1, fw2, fh2, &mut uvs, cw2, ch2, &options)?;
                let image = YuvBiPlanarImage {
                    y_plane: &ys,
                    y_stride: cw,
                    uv_plane: &uvs,
                    uv_stride: cw2 * 2,
                    width: cw,
                    height: ch,
                };
                let mut rgb = std::mem::take(&mut self.rgb);
                rgb.resize((cw * ch * 3) as usize, 0);
                let (range, matrix) = yuv_params(color);
                yuvutils_rs::yuv_nv12_to_rgb(
                    &image,
                    &mut rgb,
                    cw * 3,
                    range,
                    matrix,
                    YuvConversionMode::Balanced,
                )
                .map_err(|e| PreprocessError::Color(e.to_string()))?;
                write_tensor(&rgb, 3, [0, 1, 2], lb, norm, tensor);
                (self.scratch_a, self.scratch_b, self.rgb) = (ys, uvs, rgb);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn resize<P: fr::PixelTrait<Component = u8>>(
        &mut self,
        src: &[u8],
        src_stride: usize,
        src_w: u32,
        src_h: u32,
        dst: &mut [u8],
        dst_w: u32,
        dst_h: u32,
        options: &fr::ResizeOptions,
    ) -> Result<(), PreprocessError> {
        let src_view = StridedView::<P>::new(src, src_stride, src_w, src_h)?;
        let mut dst_view = fr::images::TypedImage::<P>::from_buffer(dst_w, dst_h, dst)
            .map_err(|e| PreprocessError::Resize(e.to_string()))?;
        self.resizer
            .resize_typed(&src_view, &mut dst_view, options)
            .map_err(|e| PreprocessError::Resize(e.to_string()))?;
        Ok(())
    }
}

fn yuv_params(color: YuvColor) -> (YuvRange, YuvStandardMatrix) {
    (
        if color.full_range {
            YuvRange::Full
        } else {
            YuvRange::Limited
        },
        if color.bt709 {
            YuvStandardMatrix::Bt709
        } else {
            YuvStandardMatrix::Bt601
        },
    )
}

/// Writes the scaled content (`content_w × content_h` pixels of `bpp` bytes, R/G/B at `offsets`)
/// into the planar tensor, normalizing, and fills the padding with normalized black.
fn write_tensor(
    content: &[u8],
    bpp: usize,
    offsets: [usize; 3],
    lb: &Letterbox,
    norm: &Normalization,
    tensor: &mut [f32],
) {
    let (mw, mh) = (lb.model_w as usize, lb.model_h as usize);
    let (cw, ch) = (lb.content_w as usize, lb.content_h as usize);
    let plane = mw * mh;
    for c in 0..3 {
        // Which source channel feeds tensor channel c.
        let src = match norm.order {
            ChannelOrder::Rgb => offsets[c],
            ChannelOrder::Bgr => offsets[2 - c],
        };
        let scale = 1.0 / norm.std[c];
        let shift = -norm.mean[c] * scale;
        let out = &mut tensor[c * plane..(c + 1) * plane];
        for (y, row) in out.chunks_exact_mut(mw).enumerate() {
            if y < ch {
                let line = &content[y * cw * bpp..(y + 1) * cw * bpp];
                for (dst, px) in row[..cw].iter_mut().zip(line.chunks_exact(bpp)) {
                    *dst = px[src] as f32 * scale + shift;
                }
                row[cw..].fill(shift);
            } else {
                row.fill(shift);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN_RGB: Normalization = Normalization {
        order: ChannelOrder::Rgb,
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    #[test]
    fn letterbox_keeps_aspect_and_maps_back() {
        let lb = Letterbox::new(1920, 1080, 640, 384);
        assert_eq!((lb.content_w, lb.content_h), (640, 360));
        let (x, y) = lb.to_frame(320.0, 180.0);
        assert!((x - 0.5).abs() < 1e-9 && (y - 0.5).abs() < 1e-9);
        let tall = Letterbox::new(480, 640, 416, 416);
        assert_eq!((tall.content_w, tall.content_h), (312, 416));
    }

    fn tensor_pixel(t: &[f32], lb: &Letterbox, x: usize, y: usize) -> [f32; 3] {
        let plane = (lb.model_w * lb.model_h) as usize;
        let i = y * lb.model_w as usize + x;
        [t[i], t[plane + i], t[2 * plane + i]]
    }

    #[test]
    fn grey_frames_give_the_tensor_of_the_same_picture_in_rgb() {
        let (w, h) = (64u32, 48u32);
        let lb = Letterbox::new(w, h, 32, 32);
        let value = |x: usize, y: usize| (x * 3 + y * 2) as u8;
        let grey: Vec<u8> = (0..h as usize)
            .flat_map(|y| (0..w as usize).map(move |x| value(x, y)))
            .collect();
        let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
        let run = |format, data: &[u8], bpp: usize| {
            let mut t = vec![0f32; 3 * 32 * 32];
            Preprocessor::new()
                .run(
                    &FrameView::Packed {
                        format,
                        data,
                        stride: w as usize * bpp,
                    },
                    &lb,
                    &PLAIN_RGB,
                    &mut t,
                )
                .unwrap();
            t
        };
        let from_grey = run(PackedFormat::Gray8, &grey, 1);
        assert_eq!(from_grey, run(PackedFormat::Rgb, &rgb, 3));
        let px = tensor_pixel(&from_grey, &lb, 10, 10);
        assert!(px[0] > 0.0 && px[0] == px[1] && px[1] == px[2], "{px:?}");
    }

    #[test]
    fn packed_formats_give_the_same_tensor() {
        let (w, h) = (64u32, 48u32);
        let lb = Letterbox::new(w, h, 32, 32);
        let mut reference = None;
        for format in [
            PackedFormat::Rgb,
            PackedFormat::Rgba,
            PackedFormat::Bgrx,
            PackedFormat::Bgra,
        ] {
            let bpp = format.bytes_per_pixel();
            let stride = w as usize * bpp + 8; // padded rows
            let mut data = vec![0u8; stride * h as usize];
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let rgb = [(x * 4) as u8, (y * 5) as u8, 200];
                    let o = format.rgb_offsets();
                    for c in 0..3 {
                        data[y * stride + x * bpp + o[c]] = rgb[c];
                    }
                }
            }
            let mut t = vec![0f32; 3 * 32 * 32];
            Preprocessor::new()
                .run(
                    &FrameView::Packed {
                        format,
                        data: &data,
                        stride,
                    },
                    &lb,
                    &PLAIN_RGB,
                    &mut t,
                )
                .unwrap();
            match &reference {
                None => reference = Some(t),
                Some(r) => assert_eq!(r, &t, "{format:?} differs from RGB"),
            }
        }
        let t = reference.unwrap();
        // Blue is constant; content is 32×24 in the top-left, padding below is black.
        assert!((tensor_pixel(&t, &lb, 10, 10)[2] - 200.0).abs() < 1.0);
        assert_eq!(tensor_pixel(&t, &lb, 10, 30), [0.0; 3]);
    }

    #[test]
    fn i420_and_nv12_convert_colours_and_swap_to_bgr() {
        let (w, h) = (64u32, 32u32);
        let lb = Letterbox::new(w, h, 32, 32);
        // Full-range BT.601 pure red: Y=76, U=85, V=255.
        let (yv, uv, vv) = (76u8, 85u8, 255u8);
        let y = vec![yv; (w * h) as usize];
        let u = vec![uv; (w * h / 4) as usize];
        let v = vec![vv; (w * h / 4) as usize];
        let uv_plane: Vec<u8> = (0..w * h / 4).flat_map(|_| [uv, vv]).collect();
        let color = YuvColor {
            bt709: false,
            full_range: true,
        };
        let bgr = Normalization {
            order: ChannelOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let frames = [
            FrameView::I420 {
                y: (&y, w as usize),
                u: (&u, w as usize / 2),
                v: (&v, w as usize / 2),
                color,
            },
            FrameView::Nv12 {
                y: (&y, w as usize),
                uv: (&uv_plane, w as usize),
                color,
            },
        ];
        for frame in &frames {
            let mut t = vec![0f32; 3 * 32 * 32];
            Preprocessor::new().run(frame, &lb, &bgr, &mut t).unwrap();
            let [b, g, r] = tensor_pixel(&t, &lb, 5, 5);
            assert!(r > 240.0 && g < 15.0 && b < 15.0, "got r={r} g={g} b={b}");
            assert_eq!(
                tensor_pixel(&t, &lb, 5, 20),
                [0.0; 3],
                "padding must be black"
            );
        }
    }

    #[test]
    fn normalization_applies_mean_and_std() {
        let data = vec![100u8; 4 * 4 * 3];
        let lb = Letterbox::new(4, 4, 4, 4);
        let norm = Normalization {
            order: ChannelOrder::Rgb,
            mean: [50.0; 3],
            std: [25.0; 3],
        };
        let mut t = vec![0f32; 3 * 16];
        Preprocessor::new()
            .run(
                &FrameView::Packed {
                    format: PackedFormat::Rgb,
                    data: &data,
                    stride: 12,
                },
                &lb,
                &norm,
                &mut t,
            )
            .unwrap();
        assert!(t.iter().all(|v| (v - 2.0).abs() < 1e-4));
    }

    #[test]
    fn short_frames_are_rejected() {
        let data = vec![0u8; 10];
        let lb = Letterbox::new(64, 64, 32, 32);
        let mut t = vec![0f32; 3 * 32 * 32];
        let frame = FrameView::Packed {
            format: PackedFormat::Rgb,
            data: &data,
            stride: 192,
        };
        assert!(matches!(
            Preprocessor::new().run(&frame, &lb, &PLAIN_RGB, &mut t),
            Err(PreprocessError::ShortFrame)
        ));
    }
}
