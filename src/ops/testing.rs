//! Helpers to check ops against references: closeness with a stated tolerance and
//! central finite differences. Used by the test suites and by debugging tools.

/// Central finite-difference gradient of the scalar `f` at `x` with step `h`
/// (evaluated in f64 on an f32 input, perturbing one element at a time).
pub fn finite_diff(x: &[f32], f: impl Fn(&[f32]) -> f64, h: f32) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xs[i];
            xs[i] = orig + h;
            let up = f(&xs);
            xs[i] = orig - h;
            let down = f(&xs);
            xs[i] = orig;
            let step = ((orig + h) as f64) - ((orig - h) as f64);
            (up - down) / step
        })
        .collect()
}

/// Largest violation of `|got − want| ≤ rtol · (|want| + rms(want))` over all elements,
/// as a multiple of the allowed error (≤ 1 passes). The RMS term keeps elements that
/// are near zero through cancellation from demanding more than f32 can give.
pub fn closeness(got: &[f32], want: &[f32], rtol: f64) -> f64 {
    let rms = (want.iter().map(|&w| (w as f64).powi(2)).sum::<f64>() / want.len().max(1) as f64).sqrt();
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let allowed = rtol * ((w as f64).abs() + rms) + f64::MIN_POSITIVE;
            ((g as f64) - (w as f64)).abs() / allowed
        })
        .fold(0.0, f64::max)
}

/// Panics with the worst element when `got` and `want` are not close (see [`closeness`]).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite values");
    let c = closeness(got, want, rtol);
    if c > 1.0 {
        let rms = (want.iter().map(|&w| (w as f64).powi(2)).sum::<f64>() / want.len().max(1) as f64).sqrt();
        let (i, _) = got
            .iter()
            .zip(want)
            .enumerate()
            .map(|(i, (&g, &w))| (i, ((g - w) as f64).abs() / ((w as f64).abs() + rms)))
            .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        panic!("{what}: not within rtol {rtol}: element {i} got {} want {} (worst ratio {c:.2})", got[i], want[i]);
    }
}

/// Same as [`assert_close`] for an f64 reference (finite differences).
pub fn assert_close_f64(what: &str, got: &[f32], want: &[f64], rtol: f64) {
    let w: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_close(what, got, &w, rtol);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_diff_of_a_cubic() {
        // d/dx Σ x³ = 3x²
        let x = vec![0.5f32, -1.0, 2.0];
        let g = finite_diff(&x, |x| x.iter().map(|&v| (v as f64).powi(3)).sum(), 1e-2);
        for (gi, xi) in g.iter().zip(&x) {
            assert!((gi - 3.0 * (*xi as f64).powi(2)).abs() < 1e-3);
        }
    }

    #[test]
    fn closeness_flags_real_differences() {
        assert!(closeness(&[1.0, 2.0], &[1.0, 2.0], 1e-4) <= 1.0);
        assert!(closeness(&[1.0, 2.1], &[1.0, 2.0], 1e-4) > 1.0);
    }
}
