// SPDX-License-Identifier: MIT OR Apache-2.0
//! Mask regions in frame pixels, snapped to the chroma grid.
//!
//! A region is a rectangle plus, for ellipses and polygons, a coverage bitmap over grid cells.
//! The grid is the chroma sampling grid of the format (2×2 luma pixels for I420/NV12, 1×1 for
//! RGB): a cell is masked if any of its pixels is inside the shape, so no chroma sample is ever
//! half-masked and luma and chroma masks agree exactly.

/// A point or box coordinate normalized to the frame (0..1).
pub type Norm = f64;

/// Mask shape for detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Box,
    Ellipse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Pixel rectangle `[x0, x1) × [y0, y1)`, multiples of the grid (clipped to the frame).
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    /// Grid cell size in pixels (1 or 2).
    pub grid: u32,
    /// Row-major coverage of the grid cells of the rectangle; `None` means all covered.
    pub coverage: Option<Vec<bool>>,
}

impl Region {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }
    /// Grid cells across and down; at the right/bottom edge of an odd-sized frame the last
    /// cell is partial but still a cell.
    fn cells(&self) -> (u32, u32) {
        (
            self.width().div_ceil(self.grid),
            self.height().div_ceil(self.grid),
        )
    }

    /// Whether the frame pixel `(x, y)` is masked.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        if x < self.x0 || x >= self.x1 || y < self.y0 || y >= self.y1 {
            return false;
        }
        match &self.coverage {
            None => true,
            Some(cov) => {
                let (cw, _) = self.cells();
                cov[(((y - self.y0) / self.grid) * cw + (x - self.x0) / self.grid) as usize]
            }
        }
    }

    /// Whether the cell at cell coordinates (relative to the rectangle) is covered.
    pub fn cell_covered(&self, cx: u32, cy: u32) -> bool {
        match &self.coverage {
            None => true,
            Some(cov) => cov[(cy * self.cells().0 + cx) as usize],
        }
    }

    /// A rectangle from a pixel box (floating point), snapped outward to the grid and clipped.
    pub fn rect(b: [f64; 4], frame_w: u32, frame_h: u32, grid: u32) -> Region {
        let [x0, y0, x1, y1] = b;
        let g = grid as f64;
        let snap_down = |v: f64, max: u32| ((v / g).floor().max(0.0) * g).min(max as f64) as u32;
        let snap_up = |v: f64, max: u32| ((v / g).ceil().max(0.0) * g).min(max as f64) as u32;
        // Frames with odd sizes: the last cell is partial; clipping keeps it inside the frame.
        Region {
            x0: snap_down(x0, frame_w),
            y0: snap_down(y0, frame_h),
            x1: snap_up(x1, frame_w),
            y1: snap_up(y1, frame_h),
            grid,
            coverage: None,
        }
    }

    /// An ellipse inscribed in the pixel box, at grid resolution.
    pub fn ellipse(b: [f64; 4], frame_w: u32, frame_h: u32, grid: u32) -> Region {
        let [x0, y0, x1, y1] = b;
        let mut r = Region::rect(b, frame_w, frame_h, grid);
        if r.is_empty() {
            return r;
        }
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let (rx, ry) = (((x1 - x0) / 2.0).max(0.5), ((y1 - y0) / 2.0).max(0.5));
        r.coverage = Some(r.cover(|px0, py0, px1, py1| {
            // A cell is in if the point of the cell closest to the centre is inside.
            let nx = cx.clamp(px0, px1);
            let ny = cy.clamp(py0, py1);
            ((nx - cx) / rx).powi(2) + ((ny - cy) / ry).powi(2) <= 1.0
        }));
        r
    }

    /// A polygon (pixel coordinates), at grid resolution; a cell is in if it intersects the
    /// polygon (its centre or any corner inside, or a polygon vertex inside the cell).
    pub fn polygon(points: &[(f64, f64)], frame_w: u32, frame_h: u32, grid: u32) -> Region {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(x, y) in points {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        let mut r = Region::rect([x0, y0, x1, y1], frame_w, frame_h, grid);
        if r.is_empty() || points.len() < 3 {
            return Region { x1: r.x0, ..r };
        }
        r.coverage = Some(r.cover(|px0, py0, px1, py1| {
            let probes = [
                ((px0 + px1) / 2.0, (py0 + py1) / 2.0),
                (px0, py0),
                (px1, py0),
                (px0, py1),
                (px1, py1),
            ];
            probes.iter().any(|&(x, y)| point_in_polygon(points, x, y))
                || points
                    .iter()
                    .any(|&(x, y)| x >= px0 && x <= px1 && y >= py0 && y <= py1)
        }));
        r
    }

    /// Coverage of every grid cell by `inside(cell_x0, cell_y0, cell_x1, cell_y1)`.
    fn cover(&self, inside: impl Fn(f64, f64, f64, f64) -> bool) -> Vec<bool> {
        let (cw, ch) = self.cells();
        let g = self.grid as f64;
        let mut cov = Vec::with_capacity((cw * ch) as usize);
        for j in 0..ch {
            for i in 0..cw {
                let px0 = self.x0 as f64 + i as f64 * g;
                let py0 = self.y0 as f64 + j as f64 * g;
                cov.push(inside(px0, py0, px0 + g, py0 + g));
            }
        }
        cov
    }
}

/// Even-odd rule.
pub fn point_in_polygon(points: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = points.len() - 1;
    for i in 0..points.len() {
        let (xi, yi) = points[i];
        let (xj, yj) = points[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Grows a box about its centre by `scale` (1.3 = 30% larger in each dimension).
pub fn scale_box(b: [f64; 4], scale: f64) -> [f64; 4] {
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let (hw, hh) = ((b[2] - b[0]) / 2.0 * scale, (b[3] - b[1]) / 2.0 * scale);
    [cx - hw, cy - hh, cx + hw, cy + hh]
}

/// Parses static privacy masks: polygons separated by `;`, points by spaces, coordinates by
/// commas, normalized: `"0,0 0.2,0 0.2,0.3; 0.5,0.5 0.9,0.5 0.9,0.9"`. Lines starting with `#`
/// are comments (so a file can hold one polygon per line).
pub fn parse_polygons(text: &str) -> Result<Vec<Vec<(Norm, Norm)>>, String> {
    let mut polygons = Vec::new();
    let cleaned: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l};"))
        .collect();
    for (i, poly) in cleaned
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let mut points = Vec::new();
        for pt in poly.split_whitespace() {
            let (x, y) = pt
                .split_once(',')
                .ok_or_else(|| format!("polygon {}: point '{pt}' is not 'x,y'", i + 1))?;
            let parse = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| {
                        format!(
                            "polygon {}: coordinate '{v}' is not a number in 0..1",
                            i + 1
                        )
                    })
            };
            points.push((parse(x)?, parse(y)?));
        }
        if points.len() < 3 {
            return Err(format!(
                "polygon {} has {} points; a polygon needs at least 3",
                i + 1,
                points.len()
            ));
        }
        polygons.push(points);
    }
    Ok(polygons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_snap_outward_to_the_chroma_grid() {
        let r = Region::rect([10.5, 11.0, 20.2, 21.0], 100, 100, 2);
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (10, 10, 22, 22));
        let r = Region::rect([-5.0, 95.0, 3.0, 130.0], 100, 99, 2);
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (0, 94, 4, 99));
        let r = Region::rect([10.5, 11.0, 20.2, 21.0], 100, 100, 1);
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (10, 11, 21, 21));
    }

    #[test]
    fn ellipse_covers_centre_not_corners_and_respects_the_grid() {
        let r = Region::ellipse([0.0, 0.0, 40.0, 20.0], 100, 100, 2);
        assert!(r.contains(20, 10));
        assert!(!r.contains(0, 0) && !r.contains(39, 19));
        // Cells are 2×2: both pixels of a cell agree.
        for y in (0..20).step_by(2) {
            for x in (0..40).step_by(2) {
                let c = r.contains(x, y);
                assert!(
                    r.contains(x + 1, y) == c
                        && r.contains(x, y + 1) == c
                        && r.contains(x + 1, y + 1) == c
                );
            }
        }
    }

    #[test]
    fn polygons_parse_and_rasterize() {
        let polys = parse_polygons("# door\n0,0 0.5,0 0,0.5\n0.5,0.5 1,0.5 1,1 0.5,1").unwrap();
        assert_eq!(polys.len(), 2);
        let px: Vec<(f64, f64)> = polys[0]
            .iter()
            .map(|&(x, y)| (x * 100.0, y * 100.0))
            .collect();
        let r = Region::polygon(&px, 100, 100, 2);
        assert!(r.contains(5, 5) && !r.contains(45, 45));
        assert!(
            parse_polygons("0,0 1,1")
                .unwrap_err()
                .contains("at least 3")
        );
        assert!(parse_polygons("0,0 1,x 0,1").unwrap_err().contains("'x'"));
        assert!(parse_polygons("0,0 1.5,0 0,1").is_err());
        assert!(parse_polygons("0,0 0.5").unwrap_err().contains("not 'x,y'"));
    }

    #[test]
    fn ellipses_reaching_the_edge_of_odd_sized_frames_have_partial_cells() {
        let r = Region::ellipse([90.0, 40.0, 140.0, 80.0], 101, 75, 2);
        assert_eq!((r.x1, r.y1), (101, 75));
        // Every pixel of the clipped rectangle can be asked about, the last column and row too.
        let covered = (r.x0..r.x1)
            .flat_map(|x| (r.y0..r.y1).map(move |y| (x, y)))
            .filter(|&(x, y)| r.contains(x, y))
            .count();
        assert!(covered > 0 && r.contains(100, 60));
    }

    #[test]
    fn boxes_scale_about_their_centre() {
        assert_eq!(
            scale_box([10.0, 10.0, 20.0, 30.0], 1.5),
            [7.5, 5.0, 22.5, 35.0]
        );
    }
}
