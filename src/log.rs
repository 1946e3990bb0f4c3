//! Logging to syslog (`/dev/log`, facility mail, ident `pop3d` with the pid) or
//! to standard error. One process-wide destination, chosen once at start-up.
//!
//! Log lines name who and from where, never a password. Use the
//! [`info!`](crate::info), [`notice!`](crate::notice) and [`crit!`](crate::crit)
//! macros.

use std::fmt;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogTarget;

/// syslog(3) priorities we use.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    /// Routine events.
    Info = 6,
    /// Security-relevant events.
    Notice = 5,
    /// Failures.
    Crit = 2,
}

/// LOG_MAIL.
const FACILITY_MAIL: u8 = 2 << 3;

struct Logger {
    target: LogTarget,
    path: std::path::PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Chooses the destination; `syslog_path` is the syslog socket (normally
/// `/dev/log`). Call once, before any privilege change or chroot, so the
/// socket can still be reached. Later calls are ignored.
pub fn init(target: LogTarget, syslog_path: &std::path::Path) {
    let socket = match target {
        LogTarget::Syslog => connect(syslog_path),
        LogTarget::Stderr => None,
    };
    let _ = LOGGER.set(Logger {
        target,
        path: syslog_path.to_path_buf(),
        socket: Mutex::new(socket),
    });
}

/// Our pid, looked up at the first log line and then remembered (a forked
/// child calls [`forget_pid`]).
fn pid() -> u32 {
    let cached = PID.load(std::sync::atomic::Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let pid = std::process::id();
    PID.store(pid, std::sync::atomic::Ordering::Relaxed);
    pid
}

static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Drops the cached pid (call in a child after fork).
pub fn forget_pid() {
    PID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// The chosen destination (stderr before [`init`]).
pub fn target() -> LogTarget {
    LOGGER.get().map_or(LogTarget::Stderr, |l| l.target)
}

fn connect(path: &std::path::Path) -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    Some(s)
}

/// Writes one log line.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    let target = target();
    let pid = pid();
    match target {
        LogTarget::Stderr => {
            let line = format!("pop3d[{pid}]: {args}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        LogTarget::Syslog => {
            let Some(logger) = LOGGER.get() else { return };
            let line = format!(
                "<{}>{} pop3d[{pid}]: {args}",
                FACILITY_MAIL | level as u8,
                timestamp()
            );
            let mut guard = logger.socket.lock().unwrap_or_else(|p| p.into_inner());
            // Reconnect once if syslogd was restarted.
            for _ in 0..2 {
                if guard.is_none() {
                    *guard = connect(&logger.path);
                }
                match guard.as_ref().map(|s| s.send(line.as_bytes())) {
                    Some(Ok(_)) | None => break,
                    Some(Err(_)) => *guard = None,
                }
            }
        }
    }
}

/// RFC 3164 timestamp (`Mmm dd hh:mm:ss`), in UTC: the static binary carries
/// no time-zone database.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (_, month, day) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to (year, month 1-12, day 1-31) in the
/// proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Logs a routine event.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}

/// Logs a security-relevant event.
#[macro_export]
macro_rules! notice {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Notice, format_args!($($t)*)) };
}

/// Logs a failure.
#[macro_export]
macro_rules! crit {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Crit, format_args!($($t)*)) };
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
