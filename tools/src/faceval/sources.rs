// SPDX-License-Identifier: MIT OR Apache-2.0
//! The photos the evaluation composes clips from, and the two splits.
//!
//! Faces come from public photos that the set-up already fetches the same way as the project's
//! other media (the scikit-image wheel, Debian's `opencv-doc`): each identity is a photo and the
//! box of its face in photo pixels (from CenterFace at full size on the photo, checked by eye).
//! Backgrounds are face-free photos from the same packages.
//!
//! **Splits.** `tune` and `holdout` share no identity, no background and no seed: settings are
//! chosen on `tune` only, and figures are reported on `holdout`, which tuning never looks at.

/// A face photo and where its face is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    pub name: &'static str,
    /// Path under `$VEIL_ASSETS/media/`.
    pub media: &'static str,
    /// Face box `[x0, y0, x1, y1]` in photo pixels.
    pub face: [f64; 4],
}

/// A face-free photo a clip's background is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Background {
    pub media: &'static str,
}

const ASTRONAUT: Identity = Identity {
    name: "astronaut",
    media: "astronaut.png",
    face: [181.5, 58.2, 269.9, 177.8],
};
const BASKETBALL: Identity = Identity {
    name: "basketball",
    media: "faceval/basketball1.png",
    face: [70.0, 93.0, 103.0, 134.0],
};
const MESSI: Identity = Identity {
    name: "messi",
    media: "messi5.jpg",
    face: [225.5, 92.8, 257.1, 135.0],
};
const CAMERAMAN: Identity = Identity {
    name: "cameraman",
    media: "faceval/camera.png",
    face: [202.0, 119.0, 258.0, 197.0],
};

const TUNE_IDENTITIES: [Identity; 2] = [ASTRONAUT, BASKETBALL];
const HOLDOUT_IDENTITIES: [Identity; 2] = [MESSI, CAMERAMAN];

const TUNE_BACKGROUNDS: [Background; 6] = [
    Background {
        media: "faceval/coffee.png",
    },
    Background {
        media: "faceval/brick.png",
    },
    Background {
        media: "faceval/grass.png",
    },
    Background {
        media: "faceval/building.jpg",
    },
    Background {
        media: "faceval/fruits.jpg",
    },
    Background {
        media: "faceval/motorcycle_left.png",
    },
];
const HOLDOUT_BACKGROUNDS: [Background; 6] = [
    Background {
        media: "faceval/rocket.jpg",
    },
    Background {
        media: "faceval/gravel.png",
    },
    Background {
        media: "faceval/chelsea.png",
    },
    Background {
        media: "faceval/home.jpg",
    },
    Background {
        media: "faceval/aero1.jpg",
    },
    Background {
        media: "faceval/board.jpg",
    },
];

/// Which half of the material a clip is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Settings are chosen on this split only.
    Tune,
    /// Figures are reported on this split; tuning never looks at it.
    Holdout,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Tune => "tune",
            Split::Holdout => "holdout",
        }
    }

    pub fn parse(text: &str) -> Option<Split> {
        match text {
            "tune" => Some(Split::Tune),
            "holdout" => Some(Split::Holdout),
            _ => None,
        }
    }

    pub fn identities(self) -> &'static [Identity] {
        match self {
            Split::Tune => &TUNE_IDENTITIES,
            Split::Holdout => &HOLDOUT_IDENTITIES,
        }
    }

    pub fn backgrounds(self) -> &'static [Background] {
        match self {
            Split::Tune => &TUNE_BACKGROUNDS,
            Split::Holdout => &HOLDOUT_BACKGROUNDS,
        }
    }

    /// Seeds of the two splits never meet: draw `d` of a split uses `seed_base + d`.
    pub fn seed_base(self) -> u64 {
        match self {
            Split::Tune => 0x7475_6e65_0000_0000,
            Split::Holdout => 0x686f_6c64_0000_0000,
        }
    }
}

/// Every photo the evaluation reads, for the set-up's checks.
pub fn all_media() -> Vec<&'static str> {
    let mut media: Vec<&'static str> = [Split::Tune, Split::Holdout]
        .iter()
        .flat_map(|s| {
            s.identities()
                .iter()
                .map(|i| i.media)
                .chain(s.backgrounds().iter().map(|b| b.media))
        })
        .collect();
    media.sort_unstable();
    media.dedup();
    media
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_share_no_identity_background_or_seed() {
        let (t, h) = (Split::Tune, Split::Holdout);
        for i in t.identities() {
            assert!(!h.identities().iter().any(|j| j.media == i.media));
        }
        for b in t.backgrounds() {
            assert!(!h.backgrounds().contains(b));
        }
        assert!(t.seed_base().abs_diff(h.seed_base()) > 1 << 32);
        assert_eq!(all_media().len(), 16);
    }
}
