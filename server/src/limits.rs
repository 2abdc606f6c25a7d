//! Rate limits and caps. A [`Budget`] is a token bucket: `rate` tokens a second, at most
//! `burst` saved up. The room socket uses one per connection to pace reading (nothing is
//! lost; TCP pushes back), [`AddressBudgets`] one per client address to refuse join storms,
//! [`CreationLimiter`] one per address and one for the whole server for room creation.
//! [`ConnectionLimiter`] counts open connections, in total and per address.
//!
//! Policy only: the callers resolve the client address (`client_addr`) and turn refusals
//! into HTTP answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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
        match self.charge(cost) {
            None => false,
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
        }
    }

    /// Takes `cost` tokens, in debt if need be; returns how long to wait before going on
    /// when the bucket was short (what [`Budget::take`] sleeps), without sleeping. A caller
    /// whose future must stay small sleeps in a box on the rare slow path.
    pub fn charge(&mut self, cost: f64) -> Option<Duration> {
        self.refill(Instant::now());
        self.tokens -= cost.min(self.burst);
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }

    /// Returns `cost` tokens taken by [`Budget::try_take`] for something that did not happen
    /// after all.
    pub fn give_back(&mut self, cost: f64) {
        self.tokens = (self.tokens + cost).min(self.burst);
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

/// A budget per client address (joins, room creation).
pub struct AddressBudgets {
    rate: f64,
    burst: f64,
    by_ip: Mutex<HashMap<IpAddr, Budget>>,
}

/// Room socket joins per client address.
pub type JoinLimiter = AddressBudgets;

impl Default for AddressBudgets {
    fn default() -> Self {
        Self::new(JOIN_RATE, JOIN_BURST)
    }
}

impl AddressBudgets {
    /// A limiter with this rate and burst per address.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    /// The rate, per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The burst.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Admits one join (or creation) from `ip`, or says how long to wait.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.by_ip.lock().expect("address budgets lock");
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            // A full bucket is the same as no bucket: forget those.
            map.retain(|_, b| !b.is_full(now));
        }
        map.entry(ip)
            .or_insert_with(|| Budget::new(self.rate, self.burst))
            .try_take(1.0, now)
    }

    fn give_back(&self, ip: IpAddr) {
        if let Some(b) = self.by_ip.lock().expect("address budgets lock").get_mut(&ip) {
            b.give_back(1.0);
        }
    }
}

/// Rooms created per client address: enough for a person or a script setting up a class,
/// not for filling the disk (an attacker made 3,000 rooms in 4 s before this limit).
pub const CREATE_RATE: f64 = 0.5;
/// See [`CREATE_RATE`].
pub const CREATE_BURST: f64 = 60.0;
/// Rooms created on the whole server, from every address together: well above what people
/// create by hand, low enough that many addresses together cannot flood the store.
pub const CREATE_RATE_GLOBAL: f64 = 20.0;
/// See [`CREATE_RATE_GLOBAL`].
pub const CREATE_BURST_GLOBAL: f64 = 1000.0;

/// Which room-creation limit refused a request, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationRefusal {
    /// The client's address created too many rooms lately.
    PerAddress(Duration),
    /// The server as a whole created too many rooms lately.
    Global(Duration),
}

/// Room creation budgets: one per client address and one for the server.
pub struct CreationLimiter {
    per_address: AddressBudgets,
    global: Mutex<Budget>,
}

impl CreationLimiter {
    /// `rate`/`burst` per address, `global_rate`/`global_burst` for the server.
    pub fn new(rate: f64, burst: f64, global_rate: f64, global_burst: f64) -> Self {
        Self {
            per_address: AddressBudgets::new(rate, burst),
            global: Mutex::new(Budget::new(global_rate, global_burst)),
        }
    }

    /// Admits one room creation from `ip`. A request refused by the global budget does not
    /// spend the address's.
    pub fn admit(&self, ip: IpAddr) -> Result<(), CreationRefusal> {
        self.per_address.admit(ip).map_err(CreationRefusal::PerAddress)?;
        let taken = self
            .global
            .lock()
            .expect("creation limiter lock")
            .try_take(1.0, Instant::now());
        taken.map_err(|wait| {
            self.per_address.give_back(ip);
            CreationRefusal::Global(wait)
        })
    }
}

/// Open connections on the whole server. Each costs a file descriptor and some memory; the
/// default stays below common descriptor limits with room for the store and containers.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Open connections per client address: a NAT'd office or the benchmark's 1,000 clients
/// from one machine fit, one host cannot take the whole server.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 2_000;

/// Which connection cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// The server holds its maximum of open connections.
    Total(usize),
    /// The address holds its maximum of open connections.
    PerAddress(usize),
}

/// Counts open connections, in total and per address. A connection holds a
/// [`ConnectionPermit`] for as long as it is open.
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One open connection's place in the count; dropping it frees the place.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    total: bool,
    ip: Option<IpAddr>,
}

impl ConnectionLimiter {
    /// A limiter with these caps.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            open: Mutex::new(OpenConnections::default()),
        })
    }

    /// Takes a place: in the total when `total`, and for `ip` when given (a connection from a
    /// trusted proxy counts in the total only; its clients' WebSockets count per address).
    pub fn acquire(self: &Arc<Self>, total: bool, ip: Option<IpAddr>) -> Result<ConnectionPermit, ConnectionRefusal> {
        let mut open = self.open.lock().expect("connection limiter lock");
        if total && open.total >= self.max_total {
            return Err(ConnectionRefusal::Total(self.max_total));
        }
        if let Some(ip) = ip {
            let n = open.by_ip.entry(ip).or_insert(0);
            if *n >= self.max_per_address {
                return Err(ConnectionRefusal::PerAddress(self.max_per_address));
            }
            *n += 1;
        }
        if total {
            open.total += 1;
        }
        Ok(ConnectionPermit {
            limiter: self.clone(),
            total,
            ip,
        })
    }

    /// Open connections in total.
    pub fn open_total(&self) -> usize {
        self.open.lock().expect("connection limiter lock").total
    }

    /// Open connections of `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().expect("connection limiter lock");
        open.by_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Addresses with open connections (the map forgets an address at zero).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.open.lock().expect("connection limiter lock").by_ip.len()
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("connection limiter lock");
        if self.total {
            open.total -= 1;
        }
        if let Some(ip) = self.ip {
            if let Some(n) = open.by_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.by_ip.remove(&ip);
                }
            }
        }
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

    #[tokio::test(start_paused = true)]
    async fn room_creation_is_limited_per_address_and_globally() {
        let limiter = CreationLimiter::new(1.0, 2.0, 10.0, 3.0);
        let ips: Vec<IpAddr> = (1..=4).map(|i| format!("192.0.2.{i}").parse().unwrap()).collect();
        assert!(limiter.admit(ips[0]).is_ok());
        assert!(limiter.admit(ips[0]).is_ok());
        assert_eq!(
            limiter.admit(ips[0]),
            Err(CreationRefusal::PerAddress(Duration::from_secs(1)))
        );
        assert!(limiter.admit(ips[1]).is_ok(), "the global burst has one left");
        assert_eq!(
            limiter.admit(ips[2]),
            Err(CreationRefusal::Global(Duration::from_millis(100)))
        );
        // A tenth of a second refills one global token.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(limiter.admit(ips[2]).is_ok());
        assert!(matches!(limiter.admit(ips[3]), Err(CreationRefusal::Global(_))));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(limiter.admit(ips[2]).is_ok(), "the refused attempt cost ips[2] nothing");
    }

    #[test]
    fn connections_are_capped_in_total_and_per_address() {
        let limiter = ConnectionLimiter::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let a1 = limiter.acquire(true, Some(a)).unwrap();
        let _a2 = limiter.acquire(true, Some(a)).unwrap();
        assert_eq!(
            limiter.acquire(true, Some(a)).err(),
            Some(ConnectionRefusal::PerAddress(2))
        );
        let _b1 = limiter.acquire(true, Some(b)).unwrap();
        assert_eq!(limiter.acquire(true, Some(b)).err(), Some(ConnectionRefusal::Total(3)));
        assert_eq!(limiter.open_total(), 3);
        drop(a1);
        assert_eq!(limiter.open_from(a), 1);
        assert!(
            limiter.acquire(true, Some(b)).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn proxied_clients_count_per_address_without_a_second_total() {
        let limiter = ConnectionLimiter::new(1, 1);
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let _proxy_conn = limiter.acquire(true, None).unwrap();
        let ws = limiter.acquire(false, Some(client)).unwrap();
        assert_eq!(limiter.open_total(), 1);
        assert_eq!(
            limiter.acquire(false, Some(client)).err(),
            Some(ConnectionRefusal::PerAddress(1))
        );
        drop(ws);
        assert_eq!(limiter.tracked(), 0, "an address with no connection is forgotten");
    }
}
