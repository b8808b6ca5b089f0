//! CPU references of the elementwise ops (f64 arithmetic).

/// max(x, 0).
pub fn relu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

/// ∂L/∂x of ReLU: dy where x > 0, else 0 (the subgradient at 0 is taken as 0).
pub fn relu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter().zip(dy).map(|(&v, &g)| if v > 0.0 { g } else { 0.0 }).collect()
}

/// a + b.
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 + y as f64) as f32).collect()
}

/// alpha · a.
pub fn scale(a: &[f32], alpha: f32) -> Vec<f32> {
    a.iter().map(|&x| (alpha as f64 * x as f64) as f32).collect()
}

/// y + alpha · x.
pub fn axpy(y: &[f32], alpha: f32, x: &[f32]) -> Vec<f32> {
    y.iter().zip(x).map(|(&y, &x)| (y as f64 + alpha as f64 * x as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;

    #[test]
    fn relu_backward_matches_finite_differences() {
        // d relu(x)/dx = 1 for x > 0, 0 for x < 0 (points kept away from the kink).
        let x = vec![-1.3f32, -0.2, 0.4, 2.0, 0.7];
        let dy = vec![0.5f32, -1.0, 2.0, 0.3, -0.7];
        let loss = |x: &[f32]| relu(x).iter().zip(&dy).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>();
        let num = finite_diff(&x, loss, 1e-3);
        let ana = relu_backward(&x, &dy);
        for (a, n) in ana.iter().zip(&num) {
            assert!((*a as f64 - n).abs() < 1e-3, "{a} vs {n}");
        }
    }
}
