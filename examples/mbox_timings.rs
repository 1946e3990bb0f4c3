//! Library-level mailbox timings (not a test; bench/mbox/run.sh measures the
//! daemon against popa3d and Dovecot): cold open, re-open through the index
//! cache (unchanged and with one message appended), verify, and DELE 1, on a
//! fixture file (bench/mbox/gen.py).
//!
//!     cargo run --release --example mbox_timings -- target/bench/mbox/m1g.s1
//!     cargo run --release --example mbox_timings -- target/bench/mbox/m1g.s1 --cold 5
//!
//! `--cold N`: only N cold opens, averaged (for profiling the scanner).
//! The file is copied next to itself first (`.bench` suffix) and removed.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pop3d::config::MailboxLimits;
use pop3d::mbox::{IndexCache, Mailbox};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        ..MailboxLimits::default()
    };
    // Old enough that the index can be trusted without reading.
    std::thread::sleep(Duration::from_millis(1100));
    let mut cache = IndexCache::default();
    if let Some(n) = cold_only {
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

fn usage() -> ! {
    eprintln!("usage: mbox_timings MBOX_FILE [--cold N]");
    std::process::exit(2)
}
