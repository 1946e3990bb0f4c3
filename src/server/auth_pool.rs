//! A small pool of threads that check passwords off the event loop: a yescrypt
//! check costs tens of milliseconds and megabytes, and must never stall other
//! sessions. Jobs go in through a bounded queue; results come back through a
//! channel and wake the event loop through a [`mio::Waker`].

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use mio::{Token, Waker};

use crate::auth::{self, Account, AuthSettings, Refusal};
use crate::pop3::Credentials;

/// A finished check, addressed to the connection that asked.
#[derive(Debug)]
pub struct Outcome {
    /// Connection slot.
    pub token: Token,
    /// Generation of the slot when the job was submitted (a slot reused since
    /// then must not receive this result).
    pub generation: u64,
    /// The name as typed (for logs).
    pub user: Vec<u8>,
    /// The verdict.
    pub result: Result<Account, Refusal>,
}

struct Job {
    token: Token,
    generation: u64,
    creds: Credentials,
}

/// The pool. Dropping it lets the threads finish their current job and exit.
pub struct AuthPool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Outcome>,
}

impl AuthPool {
    /// Starts `threads` workers; at most `queue` jobs wait at once.
    pub fn new(
        threads: usize,
        queue: usize,
        settings: AuthSettings,
        waker: Arc<Waker>,
    ) -> AuthPool {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(queue.max(1));
        let (res_tx, res_rx) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let settings = Arc::new(settings);
        for _ in 0..threads.max(1) {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            let waker = Arc::clone(&waker);
            let settings = Arc::clone(&settings);
            thread::Builder::new()
                .name("auth".into())
                .spawn(move || {
                    loop {
                        let job = {
                            let rx = job_rx.lock().unwrap_or_else(|p| p.into_inner());
                            rx.recv()
                        };
                        let Ok(job) = job else { return };
                        let result =
                            auth::authenticate(&settings, &job.creds.user, &job.creds.pass);
                        let outcome = Outcome {
                            token: job.token,
                            generation: job.generation,
                            user: job.creds.user.clone(),
                            result,
                        };
                        drop(job);
                        if res_tx.send(outcome).is_err() {
                            return;
                        }
                        let _ = waker.wake();
                    }
                })
                .expect("spawn auth thread");
        }
        AuthPool {
            jobs: Some(job_tx),
            results: res_rx,
        }
    }

    /// Queues a check. Fails (returning the credentials' owner nothing) only
    /// when the queue is full, which the caller treats as a temporary refusal.
    pub fn submit(&self, token: Token, generation: u64, creds: Credentials) -> bool {
        let Some(tx) = &self.jobs else { return false };
        tx.try_send(Job {
            token,
            generation,
            creds,
        })
        .is_ok()
    }

    /// The next finished check, if any.
    pub fn next_outcome(&self) -> Option<Outcome> {
        self.results.try_recv().ok()
    }
}

impl Drop for AuthPool {
    fn drop(&mut self) {
        self.jobs.take();
    }
}
