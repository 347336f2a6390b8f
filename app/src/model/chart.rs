//! The arithmetic of the metric charts: the bounds of the shown series, their SVG
//! polylines, round tick values, and the point nearest the pointer. Plain Rust, tested
//! on the host.

use super::number::fixed;
use super::workflow::Series;

/// The plotting area inside the SVG's view box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Default for Frame {
    fn default() -> Self {
        Frame { width: 600.0, height: 240.0, left: 48.0, right: 12.0, top: 12.0, bottom: 28.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub x_min: f64,
    pub x_max: f64,
    pub y_min: f64,
    pub y_max: f64,
}

impl Bounds {
    /// Over every point of `series`; a flat or single-point range is widened so that
    /// nothing divides by zero. None without points.
    pub fn of<'a>(series: impl IntoIterator<Item = &'a Series>) -> Option<Bounds> {
        let mut b: Option<Bounds> = None;
        for &(x, y) in series.into_iter().flatten() {
            if !x.is_finite() || !y.is_finite() {
                continue;
            }
            b = Some(match b {
                None => Bounds { x_min: x, x_max: x, y_min: y, y_max: y },
                Some(b) => Bounds { x_min: b.x_min.min(x), x_max: b.x_max.max(x), y_min: b.y_min.min(y), y_max: b.y_max.max(y) },
            });
        }
        b.map(|mut b| {
            if b.x_max - b.x_min < f64::EPSILON {
                b.x_min -= 1.0;
                b.x_max += 1.0;
            }
            if b.y_max - b.y_min < f64::EPSILON {
                let pad = if b.y_max.abs() > 0.0 { b.y_max.abs() * 0.1 } else { 1.0 };
                b.y_min -= pad;
                b.y_max += pad;
            }
            // a zero baseline when the data sit close to it (loss, accuracy)
            if b.y_min > 0.0 && b.y_min < (b.y_max - b.y_min) {
                b.y_min = 0.0;
            }
            b
        })
    }

    pub fn x_to_px(&self, f: &Frame, x: f64) -> f64 {
        f.left + (x - self.x_min) / (self.x_max - self.x_min) * (f.width - f.left - f.right)
    }

    pub fn y_to_px(&self, f: &Frame, y: f64) -> f64 {
        f.height - f.bottom - (y - self.y_min) / (self.y_max - self.y_min) * (f.height - f.top - f.bottom)
    }

    pub fn px_to_x(&self, f: &Frame, px: f64) -> f64 {
        self.x_min + (px - f.left) / (f.width - f.left - f.right) * (self.x_max - self.x_min)
    }
}

/// The `points` attribute of a series' polyline.
pub fn polyline(series: &Series, b: &Bounds, f: &Frame) -> String {
    series
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| format!("{},{}", fixed(b.x_to_px(f, x), 1), fixed(b.y_to_px(f, y), 1)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// About `count` round values (1, 2 or 5 times a power of ten) covering min..max.
pub fn ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    if !(max > min) || count == 0 {
        return vec![min];
    }
    let raw = (max - min) / count as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .min_by(|a, b| (a - raw).abs().total_cmp(&(b - raw).abs()))
        .unwrap_or(power);
    // values as i * step, rounded at the step's precision: 0.1 * 3 reads 0.3
    let factor = 10f64.powi((-step.log10().floor()).max(0.0) as i32 + 2);
    let first = (min / step).ceil() as i64;
    let mut out = Vec::new();
    let mut i = first;
    while (i as f64) * step <= max + step * 1e-9 && out.len() < 50 {
        out.push(((i as f64) * step * factor).round() / factor);
        i += 1;
    }
    out
}

/// A tick's label: as few decimals as its step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10()).ceil().min(6.0) as u32 };
    fixed(v, decimals)
}

/// The point of `series` whose x is nearest to `x`.
pub fn nearest(series: &Series, x: f64) -> Option<(f64, f64)> {
    series.iter().copied().min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()))
}

/// Eight colours that tell series apart in both themes (CSS variables hold them).
pub const SERIES_COLOURS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_every_series_and_never_collapse() {
        let loss: Series = vec![(1.0, 2.3), (2.0, 1.1), (8.0, 0.2)];
        let acc: Series = vec![(1.0, 0.4), (8.0, 0.95)];
        let b = Bounds::of([&loss, &acc]).unwrap();
        assert_eq!((b.x_min, b.x_max, b.y_min, b.y_max), (1.0, 8.0, 0.0, 2.3));
        let one: Series = vec![(3.0, 5.0)];
        let b = Bounds::of([&one]).unwrap();
        assert!(b.x_max > b.x_min && b.y_max > b.y_min);
        assert_eq!(Bounds::of(std::iter::empty::<&Series>()), None);
        let bad: Series = vec![(f64::NAN, 1.0)];
        assert_eq!(Bounds::of([&bad]), None);
    }

    #[test]
    fn points_map_into_the_frame() {
        let f = Frame::default();
        let s: Series = vec![(0.0, 0.0), (10.0, 10.0)];
        let b = Bounds::of([&s]).unwrap();
        assert_eq!(polyline(&s, &b, &f), "48.0,212.0 588.0,12.0");
        assert!((b.px_to_x(&f, 318.0) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 2.3, 4), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(ticks(1.0, 8.0, 4), vec![2.0, 4.0, 6.0, 8.0]);
        assert_eq!(ticks(0.0, 0.3, 3), vec![0.0, 0.1, 0.2, 0.3]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(4.0, 2.0), "4");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
    }

    #[test]
    fn the_nearest_point_to_the_pointer() {
        let s: Series = vec![(1.0, 5.0), (2.0, 6.0), (4.0, 7.0)];
        assert_eq!(nearest(&s, 2.9), Some((2.0, 6.0)));
        assert_eq!(nearest(&s, 3.1), Some((4.0, 7.0)));
        assert_eq!(nearest(&Vec::new(), 1.0), None);
    }
}
