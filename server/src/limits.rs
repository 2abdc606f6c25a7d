//! Rate limits. A [`Budget`] is a token bucket: `rate` tokens a second, at most `burst`
//! saved up. The room socket uses one per connection to pace reading (nothing is lost; TCP
//! pushes back), [`JoinLimiter`] one per client address to refuse connection storms.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket.
pub struct Budget {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes `cost` tokens now, or says how long until they would be there (taking nothing).
    pub fn try_take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let cost = cost.min(self.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            return Ok(());
        }
        Err(Duration::from_secs_f64((cost - self.tokens) / self.rate))
    }

    /// Takes `cost` tokens, sleeping first until they are there. Returns whether it waited.
    pub async fn take(&mut self, cost: f64) -> bool {
        let now = Instant::now();
        self.refill(now);
        self.tokens -= cost.min(self.burst);
        if self.tokens >= 0.0 {
            return false;
        }
        tokio::time::sleep(Duration::from_secs_f64(-self.tokens / self.rate)).await;
        true
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
    }

    fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate >= self.burst
    }
}

/// Room socket joins per client address: a generous burst (a class joining at once, the
/// benchmark's 500 clients from one machine), then a steady rate.
pub const JOIN_RATE: f64 = 50.0;
/// See [`JOIN_RATE`].
pub const JOIN_BURST: f64 = 1000.0;
/// Addresses tracked before full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Join budgets per client address.
pub struct JoinLimiter {
    rate: f64,
    burst: f64,
    by_ip: Mutex<HashMap<IpAddr, Budget>>,
}

impl Default for JoinLimiter {
    fn default() -> Self {
        Self::new(JOIN_RATE, JOIN_BURST)
    }
}

impl JoinLimiter {
    /// A limiter with this rate and burst per address.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one join from `ip`, or says how long to wait.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.by_ip.lock().expect("join limiter lock");
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            // A full bucket is the same as no bucket: forget those.
            map.retain(|_, b| !b.is_full(now));
        }
        map.entry(ip)
            .or_insert_with(|| Budget::new(self.rate, self.burst))
            .try_take(1.0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_lets_a_burst_through_then_paces() {
        let mut b = Budget::new(10.0, 5.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(!b.take(1.0).await, "the burst passes without waiting");
        }
        assert!(b.take(1.0).await, "the sixth waits");
        assert_eq!(Instant::now() - t0, Duration::from_millis(100));
        // Idle time refills up to the burst, no more.
        tokio::time::sleep(Duration::from_secs(10)).await;
        for _ in 0..5 {
            assert!(!b.take(1.0).await);
        }
        assert!(b.take(1.0).await);
    }

    #[tokio::test(start_paused = true)]
    async fn joins_are_limited_per_address() {
        let limiter = JoinLimiter::new(2.0, 3.0);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.admit(a).is_ok());
        }
        let wait = limiter.admit(a).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.admit(b).is_ok(), "another address has its own budget");
        tokio::time::sleep(wait).await;
        assert!(limiter.admit(a).is_ok());
    }
}
