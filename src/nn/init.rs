//! Parameter initialisation matching PyTorch's defaults, so that a wgnas network
//! starts from the same distribution as its PyTorch twin.

use crate::util::rng::Rng;

/// PyTorch's default for conv and linear weights (`kaiming_uniform_(a = √5)`):
/// U(−b, b) with b = 1/√fan_in, where fan_in = in_channels/groups · kh · kw (or `in` for linear).
pub fn default_weight(rng: &mut Rng, numel: usize, fan_in: usize) -> Vec<f32> {
    let b = 1.0 / (fan_in.max(1) as f32).sqrt();
    rng.uniform_vec(numel, -b, b)
}

/// PyTorch's default for conv and linear biases: U(−1/√fan_in, 1/√fan_in).
pub fn default_bias(rng: &mut Rng, numel: usize, fan_in: usize) -> Vec<f32> {
    default_weight(rng, numel, fan_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_weight_stays_within_its_bound() {
        let mut r = Rng::new(0);
        let w = default_weight(&mut r, 1000, 16 * 9);
        let b = 1.0 / 12.0;
        assert!(w.iter().all(|&v| v.abs() <= b));
        assert!(w.iter().any(|&v| v.abs() > 0.8 * b), "spread over the interval");
    }
}
