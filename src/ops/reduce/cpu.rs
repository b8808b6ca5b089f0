//! CPU references of the reductions (f64 accumulation).
//!
//! The reductions are not tape ops, so they have no backward; the gradient a
//! reduction would have is pinned in the unit tests below all the same, because
//! later code (losses, regularizers) differentiates through these formulas.

/// Σ x.
pub fn sum(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}

/// Σ aᵢ bᵢ.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>() as f32
}

/// Σ_t Σ_i t_i² over all tensors.
pub fn sum_squares(tensors: &[&[f32]]) -> f32 {
    sum_squares_f64(tensors) as f32
}

fn sum_squares_f64(tensors: &[&[f32]]) -> f64 {
    tensors.iter().flat_map(|t| t.iter()).map(|&v| (v as f64).powi(2)).sum()
}

/// sqrt(Σ_t Σ_i t_i²) over all tensors.
pub fn global_norm(tensors: &[&[f32]]) -> f32 {
    sum_squares_f64(tensors).sqrt() as f32
}

/// torch.nn.utils.clip_grad_norm_: returns the pre-clip norm `n` and the gradients
/// scaled by `min(1, max_norm / (n + 1e-6))`.
pub fn clip_grad_norm(grads: &[&[f32]], max_norm: f32) -> (f32, Vec<Vec<f32>>) {
    let norm = global_norm(grads);
    let coef = (max_norm as f64 / (norm as f64 + 1e-6)).min(1.0);
    let scaled = grads.iter().map(|g| g.iter().map(|&v| (v as f64 * coef) as f32).collect()).collect();
    (norm, scaled)
}

/// Σ |aᵢ − bᵢ|.
pub fn abs_diff_sum(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).sum::<f64>() as f32
}

/// Sample standard deviation `sqrt(Σ(x − x̄)² / (n − 1))` (`torch.std`); NaN below 2 elements.
pub fn std(x: &[f32]) -> f32 {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() as f32
}

/// DNA's path score on one batch: mean|s − t| · inv_std_t.
pub fn score(s: &[f32], t: &[f32], inv_std_t: f32) -> f32 {
    (abs_diff_sum(s, t) as f64 / s.len() as f64 * inv_std_t as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;

    #[test]
    fn references_agree_with_hand_values() {
        assert_eq!(sum(&[1.0, 2.0, -4.0]), -1.0);
        assert_eq!(dot(&[1.0, 2.0], &[3.0, -1.0]), 1.0);
        assert_eq!(sum_squares(&[&[3.0], &[4.0]]), 25.0);
        assert_eq!(global_norm(&[&[3.0], &[], &[4.0]]), 5.0);
        assert_eq!(global_norm(&[]), 0.0);
    }

    #[test]
    fn rating_references_agree_with_hand_values() {
        assert_eq!(abs_diff_sum(&[1.0, -2.0, 3.0], &[0.5, 1.0, 3.0]), 3.5);
        // x = 1, 2, 3, 4: mean 2.5, Σ(x − x̄)² = 5, std = sqrt(5 / 3).
        assert!((std(&[1.0, 2.0, 3.0, 4.0]) as f64 - (5.0f64 / 3.0).sqrt()).abs() < 1e-7);
        assert!(std(&[3.0]).is_nan());
        assert_eq!(score(&[1.0, 3.0], &[0.0, 0.0], 0.5), 1.0);
    }

    #[test]
    fn std_gradient_matches_finite_differences() {
        // d std / dxᵢ = (xᵢ − x̄) / ((n − 1) std)
        let x = vec![0.3f32, -1.2, 2.0, 0.7, 1.1];
        let num = finite_diff(&x, |x| std(x) as f64, 1e-2);
        let (n, s) = (x.len() as f64, std(&x) as f64);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        for (xi, gi) in x.iter().zip(&num) {
            assert!(((*xi as f64 - mean) / ((n - 1.0) * s) - gi).abs() < 1e-3, "{gi}");
        }
    }

    #[test]
    fn clip_scales_only_above_the_threshold() {
        let (n, g) = clip_grad_norm(&[&[3.0], &[4.0]], 1.0);
        assert_eq!(n, 5.0);
        assert!((g[0][0] - 0.6).abs() < 1e-6 && (g[1][0] - 0.8).abs() < 1e-6);
        let (n, g) = clip_grad_norm(&[&[0.3], &[0.4]], 1.0);
        assert!((n - 0.5).abs() < 1e-7);
        assert_eq!(g, vec![vec![0.3], vec![0.4]]);
    }

    #[test]
    fn norm_gradient_matches_finite_differences() {
        // d‖x‖/dx = x / ‖x‖
        let x = vec![0.3f32, -1.2, 2.0, 0.7];
        let num = finite_diff(&x, |x| global_norm(&[x]) as f64, 1e-3);
        let n = global_norm(&[&x]) as f64;
        for (xi, gi) in x.iter().zip(&num) {
            assert!((*xi as f64 / n - gi).abs() < 1e-3, "{gi}");
        }
    }

    #[test]
    fn dot_gradient_matches_finite_differences() {
        // d⟨a, b⟩/da = b
        let a = vec![0.3f32, -1.2, 2.0];
        let b = vec![1.5f32, 0.25, -0.5];
        let num = finite_diff(&a, |a| dot(a, &b) as f64, 1e-2);
        for (bi, gi) in b.iter().zip(&num) {
            assert!((*bi as f64 - gi).abs() < 1e-3, "{gi}");
        }
    }
}
