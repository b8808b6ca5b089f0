//! CPU references of the losses (f64 accumulation).

/// The class index a label stands for: rounded, then clamped into `[0, k−1]` (as the kernels do).
pub fn label_index(label: f32, k: usize) -> usize {
    let r = label.round();
    if r.is_nan() || r <= 0.0 {
        0
    } else {
        (r as usize).min(k - 1)
    }
}

/// `log Σ_j exp z[j]` of one row, computed stably around the row maximum.
fn lse(row: &[f32]) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// Index of the row maximum, the lowest one on ties.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Mean softmax cross-entropy of `logits` `[n, k]` against `labels` `[n]`, and the number
/// of rows whose argmax equals the label: `(L, correct)`, `L = (1/n) Σ_i (lse_i − z[i, y_i])`.
pub fn cross_entropy(logits: &[f32], labels: &[f32], n: usize, k: usize) -> (f32, f32) {
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for (row, &label) in logits.chunks(k).zip(labels).take(n) {
        let y = label_index(label, k);
        loss += lse(row) - row[y] as f64;
        correct += usize::from(argmax(row) == y);
    }
    ((loss / n as f64) as f32, correct as f32)
}

/// `∂L/∂logits = (softmax(z) − onehot(y)) / n · dl`.
pub fn cross_entropy_backward(logits: &[f32], labels: &[f32], n: usize, k: usize, dl: f32) -> Vec<f32> {
    let scale = dl as f64 / n as f64;
    let mut out = Vec::with_capacity(n * k);
    for (row, &label) in logits.chunks(k).zip(labels).take(n) {
        let (l, y) = (lse(row), label_index(label, k));
        for (j, &v) in row.iter().enumerate() {
            let hot = if j == y { 1.0 } else { 0.0 };
            out.push((((v as f64 - l).exp() - hot) * scale) as f32);
        }
    }
    out
}

/// `mean((a − b)²)` over all elements.
pub fn mse(a: &[f32], b: &[f32]) -> f32 {
    let s: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    (s / a.len() as f64) as f32
}

/// `(∂L/∂a, ∂L/∂b) = (2(a − b)/n · dl, −2(a − b)/n · dl)` for `L = mean((a − b)²)`.
pub fn mse_backward(a: &[f32], b: &[f32], dl: f32) -> (Vec<f32>, Vec<f32>) {
    let scale = 2.0 * dl as f64 / a.len() as f64;
    let da: Vec<f32> = a.iter().zip(b).map(|(&x, &y)| ((x as f64 - y as f64) * scale) as f32).collect();
    let db = da.iter().map(|v| -v).collect();
    (da, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    fn check(what: &str, ana: &[f32], num: &[f64]) {
        for (a, n) in ana.iter().zip(num) {
            assert!((*a as f64 - n).abs() < 1e-3 * (1.0 + n.abs()), "{what}: {a} vs {n}");
        }
    }

    #[test]
    fn cross_entropy_backward_matches_finite_differences() {
        // dL/dz[i, j] = (softmax(z_i)[j] − [j = y_i]) / n · dl, here with dl = 0.7.
        let (n, k, dl) = (3, 4, 0.7f32);
        let z = Rng::new(1).normal_vec(n * k, 2.0);
        let y = [2.0f32, 0.0, 3.0];
        let num = finite_diff(&z, |z| cross_entropy(z, &y, n, k).0 as f64 * dl as f64, 1e-2);
        check("dz", &cross_entropy_backward(&z, &y, n, k, dl), &num);
    }

    #[test]
    fn mse_backward_matches_finite_differences() {
        // dL/da = 2(a − b)/n · dl, dL/db = −2(a − b)/n · dl, here with dl = −1.3.
        let dl = -1.3f32;
        let a = Rng::new(2).normal_vec(7, 1.0);
        let b = Rng::new(3).normal_vec(7, 1.0);
        let (da, db) = mse_backward(&a, &b, dl);
        let num_a = finite_diff(&a, |a| mse(a, &b) as f64 * dl as f64, 1e-2);
        let num_b = finite_diff(&b, |b| mse(&a, b) as f64 * dl as f64, 1e-2);
        check("da", &da, &num_a);
        check("db", &db, &num_b);
    }

    #[test]
    fn cross_entropy_is_stable_for_large_logits() {
        // Subtracting the row max keeps exp() finite: logits of 1000 give the same loss as of 0.
        let (l1, c1) = cross_entropy(&[1000.0, 1000.0], &[1.0], 1, 2);
        assert!((l1 - std::f32::consts::LN_2).abs() < 1e-6);
        assert_eq!(c1, 0.0, "a tie picks the lowest index, 0, not the label 1");
    }

    #[test]
    fn labels_round_and_clamp() {
        assert_eq!(label_index(2.2, 5), 2);
        assert_eq!(label_index(-3.0, 5), 0);
        assert_eq!(label_index(9.0, 5), 4);
        assert_eq!(label_index(f32::NAN, 5), 0);
    }
}
