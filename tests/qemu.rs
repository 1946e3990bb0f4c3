//! The spawn helper honours `TEST_EXEC_RUNNER`: when it is set (the aarch64
//! run exports `TEST_EXEC_RUNNER=qemu-aarch64-static`), every pop3d process
//! the tests start, standalone or inetd with pre-set stdin/stdout, is the
//! runner with the pop3d binary as its argument, not the binary itself; when
//! it is not set, it is the binary. A whole POP3 session then runs through
//! it. Under the aarch64 target this file, like all the others, runs the
//! aarch64 binary under qemu.

mod common;

use std::fs;

use common::*;

/// Checks what process `pid` is: the runner with pop3d as an argument, or
/// pop3d itself.
fn check_runs_through_runner(pid: u32) {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("read /proc/PID/exe");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("read /proc/PID/cmdline");
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let bin = fs::canonicalize(pop3d_bin()).expect("canonicalize the pop3d binary");
    match exec_runner() {
        Some(runner) => {
            assert_ne!(
                exe, bin,
                "TEST_EXEC_RUNNER is set but pop3d was started directly"
            );
            let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
            assert_eq!(
                base(&args[0]),
                base(&runner[0]),
                "process {pid} is not the runner: {args:?}"
            );
            assert_eq!(
                args.get(1..runner.len()),
                Some(&runner[1..]),
                "process {pid} does not have the runner's arguments: {args:?}"
            );
            assert_eq!(
                args.get(runner.len()).map(String::as_str),
                Some(pop3d_bin()),
                "the runner was not given the pop3d binary: {args:?}"
            );
        }
        None => assert_eq!(exe, bin, "without TEST_EXEC_RUNNER pop3d runs directly"),
    }
}

#[test]
fn inetd_server_runs_through_the_runner() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(2);
    w.write_mailbox(&u, &mbox.bytes());
    let (mut server, mut pop) = w.inetd(&[]);
    pop.greeting();
    check_runs_through_runner(server.pid());
    pop.login(&u.name, &u.pass);
    let (_, body) = pop.multi("RETR 2");
    assert_bytes_eq(&body.data(), &mbox.expected_retr(2), "RETR 2");
    pop.quit();
    server.wait_exit(REPLY_TIMEOUT);
}

#[test]
fn standalone_server_runs_through_the_runner() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(2);
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    check_runs_through_runner(d.pid());
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    let (_, body) = pop.multi("RETR 1");
    assert_bytes_eq(&body.data(), &mbox.expected_retr(1), "RETR 1");
    pop.ok("DELE 1");
    pop.quit();
}
