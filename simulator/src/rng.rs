//! The simulator's random numbers: SplitMix64, seeded per scenario and
//! device, so the same seed gives the same physical noise and therefore the
//! same frames, byte for byte. Small and dependency-free on purpose: the
//! sequence must never change under a library upgrade.

/// A seeded generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one stream of `seed` (a device id, a purpose).
    pub fn derive(seed: u64, stream: &str) -> Self {
        // FNV-1a of the stream name, mixed into the seed.
        let h = stream.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut r = Self::new(seed ^ h);
        r.next_u64();
        r
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_other_seed_others() {
        let a: Vec<u64> = (0..8).map(|_| Rng::derive(7, "gas-1").next_u64()).collect();
        let mut r1 = Rng::derive(7, "gas-1");
        let mut r2 = Rng::derive(7, "gas-1");
        let mut r3 = Rng::derive(8, "gas-1");
        let x: Vec<u64> = (0..8).map(|_| r1.next_u64()).collect();
        let y: Vec<u64> = (0..8).map(|_| r2.next_u64()).collect();
        let z: Vec<u64> = (0..8).map(|_| r3.next_u64()).collect();
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(a.iter().all(|v| *v == a[0]));
    }

    #[test]
    fn normal_has_unit_spread() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
