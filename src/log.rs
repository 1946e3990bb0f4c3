//! Logging to syslog (`/dev/log`, facility mail) or to standard error.
