//! Authentication benchmark driver (run by `bench/auth/run.sh`, not a test).
//!
//! `pop3d-auth-bench verify FILE RUNS`: FILE has one `label<TAB>password<TAB>hash`
//! line per case; each hash is verified with `pop3d::auth::crypt::verify` RUNS
//! times (after one warm-up) and the median is printed as
//! `label<TAB>nanoseconds`. Times are the thread's CPU time (user + system,
//! `CLOCK_THREAD_CPUTIME_ID`), so that other work on a shared machine inflates
//! them less than wall-clock time would. The C twin `xcrypt_bench.c` does the
//! same with libxcrypt's `crypt_rn`.
//!
//! `pop3d-auth-bench logins PORT USER ROUNDS`: against a running server with
//! `--fail-delay 0`, alternately logs in as an unknown user and as USER, both
//! with a wrong password, ROUNDS times each, timing PASS to `-ERR`; prints both
//! medians in nanoseconds and their ratio.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pop3d::auth::crypt::{Verdict, verify};

/// CPU time used by this thread, in nanoseconds (CLOCK_THREAD_CPUTIME_ID;
/// /proc's schedstat advances only at scheduler ticks, 4 ms on some kernels,
/// and read 0 for a whole md5-crypt verification).
fn thread_cpu_ns() -> u128 {
    pop3d::sys::clock::thread_cpu_time().as_nanos()
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn bench_verify(file: &str, runs: usize) {
    let text = std::fs::read_to_string(file).expect("read cases");
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut f = line.splitn(3, '\t');
        let (label, pw, hash) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        assert_eq!(verify(hash, pw.as_bytes()), Verdict::Match, "{label}");
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = thread_cpu_ns();
            let v = verify(
                std::hint::black_box(hash),
                std::hint::black_box(pw.as_bytes()),
            );
            times.push(thread_cpu_ns() - t);
            assert_eq!(v, Verdict::Match);
        }
        println!("{label}\t{}", median(times));
    }
}

/// One failed login: connect, USER, time PASS until the `-ERR` line.
fn failed_login(port: u16, user: &str) -> u128 {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("+OK"), "{line}");
    w.write_all(format!("USER {user}\r\n").as_bytes()).unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("+OK"), "{line}");
    let t = Instant::now();
    w.write_all(b"PASS not-the-password\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let took = t.elapsed().as_nanos();
    assert!(line.starts_with("-ERR [AUTH]"), "{line}");
    let _ = w.write_all(b"QUIT\r\n");
    took
}

fn bench_logins(port: u16, user: &str, rounds: usize) {
    // Warm-up (page cache, allocator).
    failed_login(port, "nosuchuser");
    failed_login(port, user);
    let mut unknown = Vec::with_capacity(rounds);
    let mut wrong = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        unknown.push(failed_login(port, "nosuchuser"));
        wrong.push(failed_login(port, user));
    }
    let (u, w) = (median(unknown), median(wrong));
    println!("unknown\t{u}");
    println!("wrong\t{w}");
    println!("ratio\t{:.3}", u as f64 / w as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("verify") if args.len() == 4 => bench_verify(&args[2], args[3].parse().unwrap()),
        Some("logins") if args.len() == 5 => {
            bench_logins(args[2].parse().unwrap(), &args[3], args[4].parse().unwrap())
        }
        _ => {
            eprintln!("usage: pop3d-auth-bench verify FILE RUNS | logins PORT USER ROUNDS");
            std::process::exit(2);
        }
    }
}
