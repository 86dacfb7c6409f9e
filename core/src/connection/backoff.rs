//! Exponential reconnect backoff: 1 s, doubling, capped at 30 s.

use std::time::Duration;

/// The first delay after a failed attempt.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Delays between connection attempts. A fresh value starts at [`INITIAL_DELAY`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// Start at [`INITIAL_DELAY`].
    pub fn new() -> Self {
        Self {
            next: INITIAL_DELAY,
        }
    }

    /// The delay to wait now; the following one is doubled (up to [`MAX_DELAY`]).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(MAX_DELAY);
        delay
    }

    /// Back to [`INITIAL_DELAY`] (after a successful connection).
    pub fn reset(&mut self) {
        self.next = INITIAL_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new();
        b.next_delay();
        b.next_delay();
        b.reset();
        assert_eq!(b.next_delay(), INITIAL_DELAY);
        assert_eq!(b.next_delay(), Duration::from_secs(2));
    }
}
