//! Process identity and life: uids, file-system identity, privilege drops, daemonizing.
