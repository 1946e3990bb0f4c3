//! Library-level mailbox timings (not a test; bench/mbox/run.sh measures the
//! daemon against popa3d and Dovecot): cold open, re-open through the index
//! cache (unchanged and with one message appended), re-open from the index
//! file (as a new process would), verify, and DELE 1, on a fixture file
//! (bench/mbox/gen.py).
//!
//!     cargo run --release --example mbox_timings -- target/bench/mbox/m1g.s1
//!     cargo run --release --example mbox_timings -- target/bench/mbox/m1g.s1 --cold 5
//!
//! `--cold N`: only N cold opens, averaged (for profiling the scanner).
//! `--threads N` (last): scan with N threads (`--scan-threads`; default 0,
//! one per CPU up to 4).
//! The file is copied next to itself first (`.bench` suffix) and removed.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pop3d::config::MailboxLimits;
use pop3d::mbox::{IndexCache, Mailbox};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut scan_threads = 0;
    if let [.., flag, n] = args.as_slice()
        && flag == "--threads"
    {
        scan_threads = n.parse().unwrap_or_else(|_| usage());
        args.truncate(args.len() - 2);
    }
    let (src, cold_only) = match args.as_slice() {
        [file] => (file.clone(), None),
        [file, flag, n] if flag == "--cold" => match n.parse::<u32>() {
            Ok(n) => (file.clone(), Some(n)),
            Err(_) => usage(),
        },
        _ => usage(),
    };
    let path = PathBuf::from(format!("{src}.bench"));
    if let Err(e) = fs::copy(&src, &path) {
        eprintln!("mbox_timings: cannot copy {src} to {}: {e}", path.display());
        std::process::exit(1);
    }
    let limits = MailboxLimits {
        lock_wait: Duration::from_secs(5),
        scan_threads,
        ..MailboxLimits::default()
    };
    // Old enough that the index can be trusted without reading.
    std::thread::sleep(Duration::from_millis(1100));
    let mut cache = IndexCache::default();
    // The files pop3d keeps next to a mailbox.
    let sibling = |suffix: &str| {
        path.with_file_name(format!(
            ".{}{suffix}",
            path.file_name().unwrap().to_string_lossy()
        ))
    };
    let index_file = sibling(".pop3d-index");
    if let Some(n) = cold_only {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let _ = fs::remove_file(&index_file);
            let t = Instant::now();
            Mailbox::open(&path, &limits).unwrap();
            total += t.elapsed();
        }
        eprintln!("cold open: {:?}", total / n.max(1));
        fs::remove_file(&path).unwrap();
        let _ = fs::remove_file(&index_file);
        return;
    }
    let t = Instant::now();
    let mb = Mailbox::open_cached(&path, &limits, &mut cache).unwrap();
    let cold = t.elapsed();
    let n = mb.count();
    let bytes = fs::metadata(&path).unwrap().len();
    mb.into_cache(&mut cache);
    // As a new process (inetd) would: no cache, the index file the cold
    // open wrote (the first time confirmed under the lock, then trusted).
    let mut from_file = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        let mb = Mailbox::open(&path, &limits).unwrap();
        from_file.push(t.elapsed());
        assert_eq!((mb.count(), mb.scanned_bytes()), (n, 0));
    }
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
    for suffix in [".pop3d-uids", ".pop3d-index"] {
        let _ = fs::remove_file(sibling(suffix));
    }
    eprintln!(
        "{n} messages, {bytes} bytes: cold open {cold:?} ({:.0} MB/s), warm open {warm:?}, \
         open from the index file {:?} then {:?}, verify {verify:?}, \
         open after an append {appended:?}, DELE 1 {dele:?}",
        bytes as f64 / cold.as_secs_f64() / 1e6,
        from_file[0],
        from_file[1],
    );
}

fn usage() -> ! {
    eprintln!("usage: mbox_timings MBOX_FILE [--cold N] [--threads N]");
    std::process::exit(2)
}
