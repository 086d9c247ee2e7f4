// SPDX-License-Identifier: MIT OR Apache-2.0
//! Zones (polygons) and directed lines from a TOML config, in normalized coordinates; people
//! are placed by the bottom-centre of their box (their feet), as DeepStream's analytics do.
//!
//! ```toml
//! [[zone]]
//! name = "screen-front"
//! polygon = [[0.2, 0.5], [0.8, 0.5], [0.8, 1.0], [0.2, 1.0]]
//!
//! [[line]]
//! name = "entrance"
//! from = [0.5, 0.0]
//! to = [0.5, 1.0]
//!
//! # Detections placed here are ignored before tracking (a poster, a mannequin, an object the
//! # detector keeps taking for a person).
//! [[exclude]]
//! name = "poster"
//! polygon = [[0.0, 0.0], [0.1, 0.0], [0.1, 0.2], [0.0, 0.2]]
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Zone {
    pub name: String,
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Line {
    pub name: String,
    pub from: [f64; 2],
    pub to: [f64; 2],
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ZoneConfig {
    #[serde(default, rename = "zone")]
    pub zones: Vec<Zone>,
    #[serde(default, rename = "line")]
    pub lines: Vec<Line>,
    #[serde(default, rename = "exclude")]
    pub excludes: Vec<Zone>,
}

impl ZoneConfig {
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: ZoneConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        for z in cfg.zones.iter().chain(&cfg.excludes) {
            if z.polygon.len() < 3 {
                return Err(format!("zone '{}' needs at least 3 points", z.name));
            }
        }
        let mut names: Vec<&str> = cfg
            .zones
            .iter()
            .map(|z| z.name.as_str())
            .chain(cfg.lines.iter().map(|l| l.name.as_str()))
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the name '{}' is used twice", w[0]));
        }
        Ok(cfg)
    }
}

impl ZoneConfig {
    /// Whether a box's anchor lies in an exclusion polygon.
    pub fn excluded(&self, b: &[f64; 4]) -> bool {
        let a = anchor(b);
        self.excludes.iter().any(|z| in_polygon(&z.polygon, a))
    }
}

/// The anchor of a box: its bottom centre.
pub fn anchor(b: &[f64; 4]) -> (f64, f64) {
    ((b[0] + b[2]) / 2.0, b[3])
}

pub fn in_polygon(poly: &[[f64; 2]], p: (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ([xi, yi], [xj, yj]) = (poly[i], poly[j]);
        if (yi > p.1) != (yj > p.1) && p.0 < (xj - xi) * (p.1 - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Anchors closer to a line than this (normalized units) do not decide which side they are on:
/// a person standing on the line, whose box jitters by a few pixels, crosses nothing.
pub const LINE_MARGIN: f64 = 0.02;

/// Where a point is relative to a line segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Clearly on one side: `true` right, `false` left (looking from `from` to `to`, image
    /// coordinates with y down).
    Side(bool),
    /// Within [`LINE_MARGIN`] of the line.
    Near,
    /// Beyond the segment's ends.
    Beyond,
}

pub fn place(line: &Line, p: (f64, f64)) -> Place {
    let (a, b) = ((line.from[0], line.from[1]), (line.to[0], line.to[1]));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        ((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2
    } else {
        -1.0
    };
    if !(0.0..=1.0).contains(&t) {
        return Place::Beyond;
    }
    let distance = cross(a, b, p) / len2.sqrt();
    if distance.abs() < LINE_MARGIN {
        Place::Near
    } else {
        Place::Side(distance >= 0.0)
    }
}

/// Follows one track across one line: a crossing counts when the side the track was last
/// clearly on changes; going around the line's ends forgets the side. Returns `Some(true)` for
/// forward (right to left), `Some(false)` backward.
pub fn crossing(line: &Line, last_side: &mut Option<bool>, p: (f64, f64)) -> Option<bool> {
    match place(line, p) {
        Place::Near => None,
        Place::Beyond => {
            *last_side = None;
            None
        }
        Place::Side(now) => {
            let crossed = last_side.is_some_and(|was| was != now);
            *last_side = Some(now);
            crossed.then_some(!now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format_and_rejects_bad_configs() {
        let cfg = ZoneConfig::parse(
            "[[zone]]\nname='a'\npolygon=[[0,0],[0.5,0],[0.5,1],[0,1]]\n[[line]]\nname='door'\nfrom=[0.5,0]\nto=[0.5,1]\n",
        )
        .unwrap();
        assert_eq!((cfg.zones.len(), cfg.lines.len()), (1, 1));
        assert!(
            ZoneConfig::parse("[[zone]]\nname='a'\npolygon=[[0,0],[1,1]]")
                .unwrap_err()
                .contains("3 points")
        );
        assert!(ZoneConfig::parse("[[zone]]\nname='a'\npolygon=[[0,0],[1,0],[1,1]]\n[[line]]\nname='a'\nfrom=[0,0]\nto=[1,1]").unwrap_err().contains("twice"));
        assert!(ZoneConfig::parse("zone = 3").is_err());
        let ex = ZoneConfig::parse(
            "[[exclude]]\nname='cone'\npolygon=[[0.2,0.3],[0.3,0.3],[0.3,0.4],[0.2,0.4]]",
        )
        .unwrap();
        assert!(ex.excluded(&[0.21, 0.2, 0.25, 0.35]));
        assert!(!ex.excluded(&[0.21, 0.2, 0.25, 0.45]));
    }

    #[test]
    fn crossings_have_a_direction_and_jitter_on_the_line_is_not_one() {
        let line = Line {
            name: "l".into(),
            from: [0.5, 0.0],
            to: [0.5, 1.0],
        };
        let walk = |xs: &[f64]| {
            let mut last = None;
            xs.iter()
                .filter_map(|&x| crossing(&line, &mut last, (x, 0.5)))
                .collect::<Vec<bool>>()
        };
        // Looking down the screen (from top to bottom), the right side is x < 0.5.
        assert_eq!(walk(&[0.40, 0.45, 0.50, 0.55, 0.60]), vec![true]);
        assert_eq!(walk(&[0.60, 0.50, 0.40]), vec![false]);
        // Standing on the line with a jittering box: nothing.
        assert!(walk(&[0.49, 0.51, 0.495, 0.505, 0.49, 0.51]).is_empty());
        // Walking around the end of the line is not crossing it.
        let short = Line {
            name: "s".into(),
            from: [0.5, 0.4],
            to: [0.5, 0.6],
        };
        let mut last = None;
        assert_eq!(crossing(&short, &mut last, (0.4, 0.5)), None);
        assert_eq!(crossing(&short, &mut last, (0.45, 0.8)), None);
        assert_eq!(crossing(&short, &mut last, (0.6, 0.8)), None);
        assert_eq!(
            crossing(&short, &mut last, (0.6, 0.5)),
            None,
            "came round the end, did not cross"
        );
        assert_eq!(crossing(&short, &mut last, (0.4, 0.5)), Some(false));
        assert!(in_polygon(
            &[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            anchor(&[0.2, 0.2, 0.4, 0.6])
        ));
    }
}
