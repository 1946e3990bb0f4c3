//! Expunges on a full file system (root only: the spool is a small tmpfs
//! mounted for the test). An expunge needs room for its journal, which
//! reserves its space when it is made: with none, or too little for the
//! smallest blocks, QUIT fails, the mailbox is untouched and nothing is left
//! behind (no journal, no dotlock); with a little, the journal takes smaller
//! blocks and the expunge completes. Where the file system cannot reserve
//! (simulated), the blocks are sized from the free space it reports, and a
//! disk that fills up during the expunge cuts blocks short or stops it until
//! the next login with room. In no case is a kept message lost, cut or
//! doubled.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A tmpfs of `kib` KiB mounted on `dir` until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={kib}k,mode=1777"))
            .arg("pop3d-test")
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a tmpfs on {} ({st})", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes still free on the file system of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(dir)
        .output()
        .expect("run stat");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    it.next().unwrap() * it.next().unwrap()
}

/// Fills the file system of `dir` with the file `filler` until `leave`
/// bytes are free.
fn fill(dir: &Path, filler: &Path, leave: u64) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .unwrap();
    let page = [0u8; 4096];
    while free_bytes(dir) > leave {
        f.write_all(&page).expect("fill the file system");
    }
    f.sync_all().unwrap();
}

/// The mailbox: 40 messages of about 6 KB, so that deleting the first
/// moves about 230 KB.
fn mailbox() -> Mbox {
    let mut m = Mbox::new();
    for k in 1..=40 {
        m = m.msg(format!(
            "Message-ID: <{k}@example.org>\nSubject: {k}\n\n{}\nend of {k}\n",
            format!("line {k} of text\n").repeat(350)
        ));
    }
    m
}

fn journal(w: &World, user: &str) -> PathBuf {
    w.spool.join(format!(".{user}.pop3d-journal"))
}

/// Writes the mailbox, fills the spool until `free` bytes are left, deletes
/// message 1: QUIT must fail, leaving the mailbox as it was and neither a
/// journal nor a dotlock behind.
fn refused(w: &World, d: &Daemon, u: &Account, free: u64, what: &str) {
    let mbox = mailbox();
    let filler = w.spool.join("filler");
    let path = w.write_mailbox(u, &mbox.bytes());
    let _ = fs::remove_file(&filler);
    fill(&w.spool, &filler, free);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 1");
    let r = pop.cmd("QUIT");
    assert!(r.starts_with("-ERR [SYS/TEMP] "), "{what}: QUIT said {r:?}");
    assert_bytes_eq(&fs::read(&path).unwrap(), &mbox.bytes(), what);
    assert!(
        !journal(w, &u.name).exists(),
        "{what}: a journal left behind"
    );
    let lock = w.spool.join(format!("{}.lock", u.name));
    assert!(!lock.exists(), "{what}: a dotlock left behind");
}

#[test]
fn an_expunge_on_a_full_disk_loses_nothing() {
    if !require_root("an_expunge_on_a_full_disk_loses_nothing") {
        return;
    }
    let mut w = World::new();
    let _mounted = Tmpfs::mount(&w.spool, 1024);
    let u = w.user("alice", "alice-pw");
    let mbox = mailbox();
    let filler = w.spool.join("filler");
    // Journal blocks of 64 KiB to start with.
    let d = w.daemon_env(&[], &[("POP3D_DEBUG_JOURNAL_BLOCK", "65536")]);
    // 1. No room at all: neither dotlock nor journal can be made; the
    // mailbox is read under the fcntl lock alone, and QUIT deletes nothing.
    refused(&w, &d, &u, 0, "no room");
    let logged = d.wait_log(REPLY_TIMEOUT, |l| {
        l.contains("cannot create the expunge journal")
            && l.contains("nothing deleted (the spool's file system is full)")
    });
    assert!(logged.is_some(), "{:?}", d.log());
    // 2. Room for the journal's header and plan, not for a block of the
    // smallest size in each of its two slots: refused the same way.
    refused(&w, &d, &u, 12 * 1024, "room for the plan only");

    // 3. A little room (56 KiB): the journal takes smaller blocks, and the
    // expunge completes.
    fs::remove_file(&filler).unwrap();
    let path = w.write_mailbox(&u, &mbox.bytes());
    fill(&w.spool, &filler, 56 * 1024);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 1");
    pop.ok("DELE 3");
    let r = pop.cmd("QUIT");
    assert!(
        r.starts_with("+OK"),
        "QUIT with 56 KiB free: {r:?}\n{:?}",
        d.log()
    );
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1, 3]),
        "with a little room",
    );
    assert!(!journal(&w, &u.name).exists());

    // 4. Space freed: the mailbox is as it was left, and expunges work.
    fs::remove_file(&filler).unwrap();
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 38);
    pop.ok("DELE 1");
    pop.quit();
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1, 2, 3]),
        "after space was freed",
    );
}

/// Where the file system cannot reserve (no `fallocate`, simulated by a
/// debug hook), the journal's blocks are sized from the free space the file
/// system reports. If the disk fills up after that (another writer), a block
/// is cut to what could be staged; if nothing can be staged, the expunge
/// stops with its journal kept, logins wait for room, and the first login
/// with room finishes it. Nothing kept is lost or doubled.
#[test]
fn an_expunge_that_cannot_reserve_loses_nothing() {
    if !require_root("an_expunge_that_cannot_reserve_loses_nothing") {
        return;
    }
    let mut w = World::new();
    let _mounted = Tmpfs::mount(&w.spool, 1024);
    let u = w.user("bob", "bob-pw");
    let mbox = mailbox();
    let filler = w.spool.join("filler");
    let hold = w.dir.join("hold");
    let d = w.daemon_env(
        &[],
        &[
            ("POP3D_DEBUG_JOURNAL_BLOCK", "262144"),
            ("POP3D_DEBUG_NO_RESERVE", "1"),
            ("POP3D_DEBUG_EXPUNGE_HOLD", hold.to_str().unwrap()),
        ],
    );

    // 1. Too little room for the smallest blocks: refused as where the
    // file system can reserve.
    refused(&w, &d, &u, 4096, "no room, no reservation");

    // 2. 150 KiB free: blocks that fit twice (64 KiB, not the 256 KiB
    // asked for); the expunge completes.
    fs::remove_file(&filler).unwrap();
    let path = w.write_mailbox(&u, &mbox.bytes());
    fill(&w.spool, &filler, 150 * 1024);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 1");
    pop.quit();
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "blocks sized from the free space",
    );
    assert!(!journal(&w, &u.name).exists());

    // The next two expunges are held once their journal is made, while
    // another writer takes most of the room left.
    let held_expunge = |left: u64| {
        fs::remove_file(&filler).unwrap();
        w.write_mailbox(&u, &mbox.bytes());
        fill(&w.spool, &filler, 150 * 1024);
        fs::write(&hold, b"").unwrap();
        let mut pop = d.connect();
        pop.login(&u.name, &u.pass);
        pop.ok("DELE 1");
        pop.send("QUIT");
        let start = std::time::Instant::now();
        while !journal(&w, &u.name).exists() {
            assert!(start.elapsed() < REPLY_TIMEOUT, "no journal");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        fill(&w.spool, &filler, left);
        fs::remove_file(&hold).unwrap();
        pop.read_line()
    };

    // 3. 100 KiB left: one slot gets whole blocks, the other what fits;
    // the expunge completes.
    let r = held_expunge(100 * 1024);
    assert!(r.starts_with("+OK"), "QUIT: {r}\n{:?}", d.log());
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "blocks cut short",
    );
    assert!(!journal(&w, &u.name).exists());

    // 4. No room left: the expunge stops, the journal stays and every
    // login is refused for now; with room again, the next login finishes
    // the expunge.
    let r = held_expunge(0);
    assert!(r.starts_with("-ERR [SYS/TEMP] "), "QUIT: {r}");
    assert!(journal(&w, &u.name).exists());
    let logged = d.wait_log(REPLY_TIMEOUT, |l| {
        l.contains("expunge stopped")
            && l.contains("(the spool's file system is full); the next login finishes it")
    });
    assert!(logged.is_some(), "{:?}", d.log());
    let mut pop = d.connect();
    pop.ok(&format!("USER {}", u.name));
    let r = pop.cmd(&format!("PASS {}", u.pass));
    assert!(
        r.starts_with("-ERR [SYS/TEMP] "),
        "PASS on a full disk: {r}"
    );
    drop(pop);
    fs::remove_file(&filler).unwrap();
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 39);
    pop.quit();
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "finished at the next login",
    );
    assert!(!journal(&w, &u.name).exists());
}
