//! Colour scales: a colour-blind-safe colormap (colorous) plus a value mapping (linear, log,
//! power) and range. The one place colours are defined.

use serde::{Deserialize, Serialize};

/// Colormaps offered everywhere. Sequential maps are perceptually uniform and colour-blind
/// safe; [`Colormap::RedBlue`] is the diverging map for signed errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Colormap {
    /// Viridis (default for attention).
    Viridis,
    /// Magma.
    Magma,
    /// Cividis (optimised for colour-vision deficiency).
    Cividis,
    /// Red–blue diverging (negative blue, zero white, positive red).
    RedBlue,
}

impl Colormap {
    /// Every colormap.
    pub const ALL: &'static [Colormap] = &[
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Cividis,
        Colormap::RedBlue,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Cividis => "cividis",
            Colormap::RedBlue => "red-blue (diverging)",
        }
    }

    /// Whether this map is diverging (centred on zero).
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::RedBlue)
    }

    /// Colour at `t ∈ [0, 1]` (clamped) as RGB.
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let c = match self {
            Colormap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            Colormap::Magma => colorous::MAGMA.eval_continuous(t),
            Colormap::Cividis => colorous::CIVIDIS.eval_continuous(t),
            // RED_BLUE runs red → blue; flip so that positive is red.
            Colormap::RedBlue => colorous::RED_BLUE.eval_continuous(1.0 - t),
        };
        [c.r, c.g, c.b]
    }
}

/// How values map onto the colormap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum ValueScale {
    /// Linear.
    Linear,
    /// Logarithmic over `[max·10^-decades, max]` (values at or below the floor take the lowest
    /// colour). For diverging maps: symmetric log of |x|.
    Log {
        /// Decades shown below the maximum.
        decades: f32,
    },
    /// `t^gamma` (gamma < 1 brightens small values).
    Power {
        /// Exponent.
        gamma: f32,
    },
}

/// A complete colour scale: map, value mapping and range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorScale {
    /// Colormap.
    pub colormap: Colormap,
    /// Value mapping.
    pub scale: ValueScale,
    /// Value at the low end (ignored for diverging maps, which use `−max..max`).
    pub min: f32,
    /// Value at the high end (for diverging maps: the largest |value|).
    pub max: f32,
}

/// Colour drawn for NaN / infinite cells (a neutral grey distinct from every map's ends).
pub const NON_FINITE_RGB: [u8; 3] = [128, 128, 128];

impl ColorScale {
    /// A sequential scale over the finite range of `values` (0..1 if none are finite).
    pub fn fit(colormap: Colormap, scale: ValueScale, values: impl Iterator<Item = f32>) -> Self {
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for x in values.filter(|x| x.is_finite()) {
            min = min.min(x);
            max = max.max(x);
        }
        if min > max {
            (min, max) = (0.0, 1.0);
        }
        if colormap.is_diverging() {
            let m = min.abs().max(max.abs());
            return Self {
                colormap,
                scale,
                min: -m,
                max: m,
            };
        }
        Self {
            colormap,
            scale,
            min,
            max,
        }
    }

    /// Position of `x` on the colormap, in `[0, 1]`; `None` for non-finite `x`.
    pub fn position(&self, x: f32) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let x = f64::from(x);
        if self.colormap.is_diverging() {
            let m = f64::from(self.max.abs().max(self.min.abs()));
            if m == 0.0 {
                return Some(0.5);
            }
            let mag = self.map_unit((x.abs() / m).min(1.0));
            return Some(0.5 + 0.5 * mag * x.signum());
        }
        let (lo, hi) = (f64::from(self.min), f64::from(self.max));
        let t = match self.scale {
            ValueScale::Log { decades } => {
                let hi_pos = hi.max(f64::MIN_POSITIVE);
                let floor = hi_pos * 10f64.powf(-f64::from(decades.max(0.1)));
                if x <= floor {
                    0.0
                } else {
                    (x / floor).log10() / (hi_pos / floor).log10()
                }
            }
            _ => {
                if hi > lo {
                    self.map_unit((x - lo) / (hi - lo))
                } else {
                    0.5
                }
            }
        };
        Some(t.clamp(0.0, 1.0))
    }

    fn map_unit(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self.scale {
            ValueScale::Linear => t,
            ValueScale::Power { gamma } => t.powf(f64::from(gamma.max(1e-3))),
            ValueScale::Log { decades } => {
                let d = f64::from(decades.max(0.1));
                if t <= 10f64.powf(-d) {
                    0.0
                } else {
                    1.0 + t.log10() / d
                }
            }
        }
    }

    /// RGB for one value (grey for NaN/inf).
    pub fn rgb(&self, x: f32) -> [u8; 3] {
        self.position(x)
            .map_or(NON_FINITE_RGB, |t| self.colormap.rgb(t))
    }

    /// The value at colormap position `t` (inverse of [`ColorScale::position`], for colorbar
    /// labels).
    pub fn value_at(&self, t: f64) -> f64 {
        let (lo, hi) = (f64::from(self.min), f64::from(self.max));
        if self.colormap.is_diverging() {
            return lo + (hi - lo) * t;
        }
        match self.scale {
            ValueScale::Linear => lo + (hi - lo) * t,
            ValueScale::Power { gamma } => {
                lo + (hi - lo) * t.powf(1.0 / f64::from(gamma.max(1e-3)))
            }
            ValueScale::Log { decades } => {
                let hi_pos = hi.max(f64::MIN_POSITIVE);
                hi_pos * 10f64.powf(-f64::from(decades.max(0.1)) * (1.0 - t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_scale_is_white_at_zero_and_symmetric() {
        let s = ColorScale::fit(
            Colormap::RedBlue,
            ValueScale::Linear,
            [-2.0_f32, 1.0].into_iter(),
        );
        assert_eq!((s.min, s.max), (-2.0, 2.0));
        assert_eq!(s.position(0.0), Some(0.5));
        let pos = s.rgb(2.0);
        let neg = s.rgb(-2.0);
        assert!(pos[0] > pos[2], "positive is red: {pos:?}");
        assert!(neg[2] > neg[0], "negative is blue: {neg:?}");
    }

    #[test]
    fn nan_gets_the_marker_colour_never_a_map_colour() {
        let s = ColorScale::fit(
            Colormap::Viridis,
            ValueScale::Linear,
            [0.0_f32, 1.0].into_iter(),
        );
        assert_eq!(s.rgb(f32::NAN), NON_FINITE_RGB);
        assert_eq!(s.position(f32::INFINITY), None);
    }

    #[test]
    fn log_scale_floors_zero_and_inverts() {
        let s = ColorScale {
            colormap: Colormap::Viridis,
            scale: ValueScale::Log { decades: 3.0 },
            min: 0.0,
            max: 1.0,
        };
        assert_eq!(s.position(0.0), Some(0.0));
        assert!((s.position(1.0).unwrap() - 1.0).abs() < 1e-12);
        assert!(
            (s.position(0.01).unwrap() - 1.0 / 3.0).abs() < 1e-6,
            "f32 rounding of 0.01 only"
        );
        assert!((s.value_at(1.0 / 3.0) - 0.01).abs() < 1e-9);
    }
}
