//! Reconnect delays: exponential backoff with full jitter (a uniformly random delay between zero and an
//! exponentially growing ceiling), so a relay restart is not met by every browser reconnecting in the same
//! millisecond. Pure: the random number comes in as an argument.

/// First ceiling.
const BASE_MS: u64 = 250;
/// Largest ceiling.
const CAP_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    /// Failures since the last reset.
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BASE_MS, CAP_MS)
    }
}

impl Backoff {
    pub(crate) const fn new(base_ms: u64, cap_ms: u64) -> Backoff {
        Backoff { base_ms, cap_ms, attempt: 0 }
    }

    /// Failures since the last [`Backoff::reset`].
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling for the next delay: `base · 2^attempt`, capped.
    fn ceiling_ms(&self) -> u64 {
        let factor = 1u64.checked_shl(self.attempt).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// Records a failure and returns how long to wait before the next attempt. `unit_random` is uniform in
    /// `[0, 1)`; values outside are clamped.
    pub(crate) fn next_delay_ms(&mut self, unit_random: f64) -> u64 {
        let ceiling = self.ceiling_ms();
        self.attempt = self.attempt.saturating_add(1);
        let r = if unit_random.is_finite() { unit_random.clamp(0.0, 1.0) } else { 0.5 };
        (r * ceiling as f64).round() as u64
    }

    /// After a connection that stayed up long enough, start again from the smallest ceiling.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let mut ceilings = vec![];
        for _ in 0..10 {
            ceilings.push(b.ceiling_ms());
            b.next_delay_ms(0.5);
        }
        assert_eq!(ceilings, [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        assert_eq!(b.attempt(), 10);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn full_jitter_spans_zero_to_ceiling() {
        let mut b = Backoff::default();
        for _ in 0..3 {
            b.next_delay_ms(0.0);
        }
        // Ceiling is now 2 s.
        assert_eq!(b.clone().next_delay_ms(0.0), 0);
        assert_eq!(b.clone().next_delay_ms(0.5), 1_000);
        assert_eq!(b.clone().next_delay_ms(1.0), 2_000);
        assert_eq!(b.clone().next_delay_ms(7.0), 2_000, "clamped");
        assert_eq!(b.clone().next_delay_ms(f64::NAN), 1_000);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn never_overflows() {
        let mut b = Backoff::default();
        for _ in 0..200 {
            assert!(b.next_delay_ms(1.0) <= CAP_MS);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay_ms(1.0);
        }
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.next_delay_ms(1.0), BASE_MS);
    }
}
