//! Admission control in popa3d's style: at most `max_sessions` sessions and at
//! most `max_per_source` per client address, where a session keeps counting
//! until it has ended *and* `min_delay` has passed since it started. A client
//! that connects and quits in a loop therefore cannot exceed
//! `max_per_source / min_delay` sessions per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every session slot is busy.
    Sessions,
    /// This address already has its share.
    PerSource,
}

/// The counts. One lease per admitted session, released by [`Limits::release`]
/// at the end of the session or at `start + min_delay`, whichever is later.
#[derive(Debug)]
pub struct Limits {
    max_sessions: usize,
    max_per_source: usize,
    min_delay: Duration,
    busy: usize,
    per_source: HashMap<IpAddr, usize>,
    /// Leases of ended sessions still inside their minimum delay.
    lingering: Vec<(Instant, IpAddr)>,
}

impl Limits {
    /// Empty counts with these bounds.
    pub fn new(max_sessions: usize, max_per_source: usize, min_delay: Duration) -> Limits {
        Limits {
            max_sessions,
            max_per_source,
            min_delay,
            busy: 0,
            per_source: HashMap::new(),
            lingering: Vec::new(),
        }
    }

    /// Takes a lease for a new session from `ip`, or says why not.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        self.expire(now);
        if self.busy >= self.max_sessions {
            return Err(Refused::Sessions);
        }
        let n = self.per_source.entry(ip).or_insert(0);
        if *n >= self.max_per_source {
            return Err(Refused::PerSource);
        }
        *n += 1;
        self.busy += 1;
        Ok(())
    }

    /// The session from `ip` that started at `started` has ended.
    pub fn release(&mut self, ip: IpAddr, started: Instant, now: Instant) {
        let until = started + self.min_delay;
        if until > now {
            self.lingering.push((until, ip));
        } else {
            self.drop_lease(ip);
        }
    }

    /// Releases the leases whose minimum delay has passed.
    pub fn expire(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.lingering.len() {
            if self.lingering[i].0 <= now {
                let (_, ip) = self.lingering.swap_remove(i);
                self.drop_lease(ip);
            } else {
                i += 1;
            }
        }
    }

    fn drop_lease(&mut self, ip: IpAddr) {
        self.busy -= 1;
        if let Some(n) = self.per_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&ip);
            }
        }
    }

    /// Sessions counted now (live or inside their minimum delay).
    pub fn busy(&self) -> usize {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_source_and_global_bounds() {
        let t0 = Instant::now();
        let mut l = Limits::new(3, 2, Duration::from_secs(10));
        assert_eq!(l.admit(ip("10.0.0.1"), t0), Ok(()));
        assert_eq!(l.admit(ip("10.0.0.1"), t0), Ok(()));
        assert_eq!(l.admit(ip("10.0.0.1"), t0), Err(Refused::PerSource));
        assert_eq!(l.admit(ip("10.0.0.2"), t0), Ok(()));
        assert_eq!(l.admit(ip("10.0.0.3"), t0), Err(Refused::Sessions));
    }

    #[test]
    fn ended_sessions_count_until_the_minimum_delay() {
        let t0 = Instant::now();
        let mut l = Limits::new(10, 1, Duration::from_secs(10));
        l.admit(ip("::1"), t0).unwrap();
        l.release(ip("::1"), t0, t0 + Duration::from_secs(1));
        assert_eq!(
            l.admit(ip("::1"), t0 + Duration::from_secs(9)),
            Err(Refused::PerSource)
        );
        assert_eq!(l.admit(ip("::1"), t0 + Duration::from_secs(10)), Ok(()));
        // A long session releases at once when it ends.
        l.release(
            ip("::1"),
            t0 + Duration::from_secs(10),
            t0 + Duration::from_secs(100),
        );
        assert_eq!(l.busy(), 0);
        assert_eq!(l.admit(ip("::1"), t0 + Duration::from_secs(100)), Ok(()));
    }
}
