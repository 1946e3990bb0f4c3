//! Open-file-description (OFD) fcntl locks on mailbox files.
