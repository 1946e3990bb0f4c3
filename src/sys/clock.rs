//! The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), which std does
//! not offer. The authentication benchmark times one hash verification with
//! it: /proc's per-thread counters advance only at scheduler ticks (4 ms on
//! some kernels), longer than a whole md5-crypt or sha-crypt verification.

use std::time::Duration;

/// CPU time the calling thread has used, at the kernel's full resolution.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call,
    // which only writes into it; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::thread_cpu_time;
    use std::time::{Duration, Instant};

    #[test]
    fn counts_this_threads_work_finely_and_not_its_sleep() {
        let t0 = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - t0;
        assert!(
            slept < Duration::from_millis(20),
            "sleep counted: {slept:?}"
        );
        // 200 µs of work, 21 times: a counter that advances only at
        // scheduler ticks would read 0 for most of them.
        let mut worked: Vec<Duration> = (0..21)
            .map(|_| {
                let t = thread_cpu_time();
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_micros(200) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                thread_cpu_time() - t
            })
            .collect();
        worked.sort();
        let median = worked[10];
        assert!(
            median > Duration::from_micros(50) && median < Duration::from_millis(5),
            "200 µs of work measured as {median:?} (all: {worked:?})"
        );
    }
}
