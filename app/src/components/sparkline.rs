//! A sparkline: the last values of one figure as an inline SVG polyline, right-aligned
//! in a window of `capacity` points so it grows from the right as samples arrive.

use crate::model::number::fixed;
use leptos::prelude::*;

/// The polyline's `points` for `values` scaled to `0..max`, in a 100 x 20 box.
pub fn points(values: &[f64], capacity: usize, max: f64) -> String {
    let capacity = capacity.max(2);
    let step = 100.0 / (capacity - 1) as f64;
    let start = values.len().saturating_sub(capacity);
    let shown = &values[start..];
    let offset = capacity - shown.len();
    let mut points: Vec<String> = shown
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = (offset + i) as f64 * step;
            let y = 20.0 - (v / max.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0) * 20.0;
            format!("{},{}", fixed(x, 2), fixed(y, 2))
        })
        .collect();
    if points.len() == 1 {
        // a zero-length segment with round caps draws the lone first sample as a dot
        points.push(points[0].clone());
    }
    points.join(" ")
}

#[component]
pub fn Sparkline(
    #[prop(into)] values: Signal<Vec<f64>>,
    #[prop(default = 100.0)] max: f64,
    #[prop(default = 300)] capacity: usize,
    #[prop(into)] label: String,
) -> impl IntoView {
    view! {
        <svg class="sparkline" viewBox="0 0 100 20" preserveAspectRatio="none" role="img" aria-label=label>
            <polyline points=move || values.with(|v| points(v, capacity, max))/>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::points;

    #[test]
    fn right_aligned_and_scaled() {
        assert_eq!(points(&[], 5, 100.0), "");
        assert_eq!(points(&[50.0], 5, 100.0), "100.00,10.00 100.00,10.00");
        assert_eq!(points(&[0.0, 100.0], 3, 100.0), "50.00,20.00 100.00,0.00");
    }

    #[test]
    fn keeps_only_the_window_and_clamps() {
        let p = points(&[1.0, 2.0, 3.0, 500.0], 2, 100.0);
        assert_eq!(p, "0.00,19.40 100.00,0.00");
        assert_eq!(points(&[-5.0], 2, 0.0), "100.00,20.00 100.00,20.00");
    }
}
