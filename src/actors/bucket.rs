//! [`Bucket`]: how fast a client may send, as a token bucket (its data messages, and its frames
//! of any kind; see [`super::session::WsSession`]).

use std::time::Instant;

/// Frames of any kind a client may send per data message of its allowance.
pub const FRAMES_PER_MESSAGE: f64 = 10.0;
/// The frame allowance is never below this, per second and at once.
pub const MIN_FRAME_RATE: f64 = 100.0;

/// A token bucket: `rate` per second, at most `burst` at once.
pub struct Bucket {
    allowance: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            allowance: burst,
            rate,
            burst,
            last: Instant::now(),
        }
    }

    /// Takes one; false when the bucket is empty.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.allowance = (self.allowance + refill).min(self.burst);
        if self.allowance >= 1.0 {
            self.allowance -= 1.0;
            true
        } else {
            false
        }
    }
}
