//! Library-level mailbox timings (not a test of correctness; ignored by
//! default): cold open, re-open through the index cache (unchanged and with
//! one message appended), verify, and DELE 1, on a fixture file.
//!
//!     MBOX_BENCH_FILE=target/bench/mbox/m1g.s1 \
//!         cargo test --release --test mbox_bench -- --ignored --nocapture
//!
//! The file is copied next to itself first (`.bench` suffix) and removed.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pop3d::config::MailboxLimits;
use pop3d::mbox::{IndexCache, Mailbox};

#[test]
#[ignore]
fn timings() {
    let Ok(src) = std::env::var("MBOX_BENCH_FILE") else {
        eprintln!("set MBOX_BENCH_FILE to a fixture (bench/mbox/gen.py)");
        return;
    };
    let path = PathBuf::from(format!("{src}.bench"));
    fs::copy(&src, &path).unwrap();
    let limits = MailboxLimits {
        lock_wait: Duration::from_secs(5),
        ..MailboxLimits::default()
    };
    // Old enough that the index can be trusted without reading.
    std::thread::sleep(Duration::from_millis(1100));
    let mut cache = IndexCache::default();
    // MBOX_BENCH_COLD=N: only N cold opens (for profiling the scanner).
    if let Some(n) = std::env::var("MBOX_BENCH_COLD")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let t = Instant::now();
        for _ in 0..n {
            Mailbox::open(&path, &limits).unwrap();
        }
        eprintln!("cold open: {:?}", t.elapsed() / n.max(1));
        fs::remove_file(&path).unwrap();
        return;
    }
    let t = Instant::now();
    let mb = Mailbox::open_cached(&path, &limits, &mut cache).unwrap();
    let cold = t.elapsed();
    let n = mb.count();
    let bytes = fs::metadata(&path).unwrap().len();
    mb.into_cache(&mut cache);
    let t = Instant::now();
    let mut mb = Mailbox::open_cached(&path, &limits, &mut cache).unwrap();
    let warm = t.elapsed();
    let t = Instant::now();
    for _ in 0..1000 {
        mb.verify().unwrap();
    }
    let verify = t.elapsed() / 1000;
    mb.into_cache(&mut cache);
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"From x Mon Jan  1 00:00:00 2024\nSubject: new\n\nnew\n\n")
        .unwrap();
    let t = Instant::now();
    let mut mb = Mailbox::open_cached(&path, &limits, &mut cache).unwrap();
    let appended = t.elapsed();
    assert_eq!(mb.count(), n + 1);
    let t = Instant::now();
    mb.expunge(&[true]).unwrap();
    let dele = t.elapsed();
    fs::remove_file(&path).unwrap();
    let _ = fs::remove_file(format!(
        "{}/.{}.pop3d-uids",
        path.parent().unwrap().display(),
        path.file_name().unwrap().to_string_lossy()
    ));
    eprintln!(
        "{n} messages, {bytes} bytes: cold open {cold:?} ({:.0} MB/s), warm open {warm:?}, \
         verify {verify:?}, open after an append {appended:?}, DELE 1 {dele:?}",
        bytes as f64 / cold.as_secs_f64() / 1e6
    );
}
