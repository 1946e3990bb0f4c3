//! Process-wide budgets of things sessions may hold for a while, whatever
//! the number of sessions: a [`Budget`] hands out at most its maximum of
//! [`Lease`]s at once, and a lease gives its share back when dropped. Used
//! for the threads that help scan large mailboxes and for the large reply
//! buffers lent to fast clients.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `max` leases out at once.
#[derive(Debug)]
pub struct Budget {
    in_use: AtomicUsize,
    max: usize,
}

/// One share of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Lease(&'static Budget);

impl Budget {
    /// A budget of `max` leases.
    pub const fn new(max: usize) -> Budget {
        Budget {
            in_use: AtomicUsize::new(0),
            max,
        }
    }

    /// A lease, or None when all are out.
    pub fn take(&'static self) -> Option<Lease> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Lease(self))
    }

    /// Leases out now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_leases_and_each_given_back() {
        static B: Budget = Budget::new(3);
        let leases: Vec<Lease> = std::iter::from_fn(|| B.take()).take(10).collect();
        assert_eq!((leases.len(), B.in_use()), (3, 3));
        assert!(B.take().is_none());
        drop(leases);
        assert_eq!(B.in_use(), 0);
        assert!(B.take().is_some());
        assert_eq!(B.in_use(), 0);
    }
}
