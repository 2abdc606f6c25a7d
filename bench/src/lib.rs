//! What the benchmark programs share.

pub mod procstat;

/// Nearest-rank percentile `q` (0..=1) of unsorted values; NaN without values.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(super::percentile(&v, 0.5), 50.0);
        assert_eq!(super::percentile(&v, 0.99), 99.0);
        assert_eq!(super::percentile(&v, 1.0), 100.0);
        assert!(super::percentile(&[], 0.5).is_nan());
    }
}
