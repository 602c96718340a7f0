//! [`SessionHandle`]: how the registry and groups hand frames to a session, with the bound on
//! what may wait for it.
//!
//! A `WebsocketContext` actor only runs while actix-http polls the response body, and actix-http
//! stops polling when the socket will not take more. A client that stops reading therefore
//! freezes its session, and everything sent with `do_send` would pile up in the mailbox without
//! limit. So the senders count: every frame handed over adds its size to the session's `queued`
//! bytes and the session subtracts it when it writes the frame. A push that would pass the bound
//! is refused, the session is marked closing (nothing more is queued for it), and the registry
//! removes the client and, should the session stay frozen, shuts its socket down from outside
//! ([`SessionHandle::shut_down_socket`]) so the connection, its actor and its mailbox are freed
//! without the actor having to run.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::Recipient;
use bytestring::ByteString;

use super::messages::SessionCommand;
use crate::metrics::Metrics;

/// State shared by a session and everyone holding its handle. Lives as long as any of them.
pub struct Outbox {
    /// Bytes handed to the session and not yet written by it.
    queued: AtomicUsize,
    /// The bound on `queued`.
    limit: usize,
    /// Set once the session is being closed: nothing more is queued for it.
    closing: AtomicBool,
    /// The connection's socket, while the session is alive (cleared by the session's `Drop`,
    /// which actix-http runs before it closes the descriptor). `None` when unknown.
    socket: Mutex<Option<RawFd>>,
    /// Counts frames dropped for this session.
    metrics: Arc<Metrics>,
}

impl Outbox {
    pub fn new(limit: usize, socket: Option<RawFd>, metrics: Arc<Metrics>) -> Arc<Outbox> {
        Arc::new(Outbox {
            queued: AtomicUsize::new(0),
            limit,
            closing: AtomicBool::new(false),
            socket: Mutex::new(socket),
            metrics,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Called by the session when it writes (or drops) a frame of `len` bytes.
    pub fn taken(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::Relaxed);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Marks the session closing; true for the caller that changed it.
    pub fn start_closing(&self) -> bool {
        !self.closing.swap(true, Ordering::AcqRel)
    }

    /// Called from the session's `Drop`: the descriptor is about to be closed by actix-http.
    pub fn forget_socket(&self) {
        if let Ok(mut socket) = self.socket.lock() {
            *socket = None;
        }
    }
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// This push passed the bound: the session is now closing and the caller must report it.
    Overflowed,
    /// The session was already closing; the frame was dropped.
    Dropped,
}

/// A session as the registry and groups see it: its mailbox and its outbox.
#[derive(Clone)]
pub struct SessionHandle {
    recipient: Recipient<SessionCommand>,
    outbox: Arc<Outbox>,
}

impl SessionHandle {
    pub fn new(recipient: Recipient<SessionCommand>, outbox: Arc<Outbox>) -> Self {
        SessionHandle { recipient, outbox }
    }

    /// Hands a frame to the session unless that would pass its bound. Never waits.
    pub fn push(&self, frame: &ByteString) -> Pushed {
        if self.outbox.is_closing() {
            self.outbox.metrics.frames_dropped.inc();
            return Pushed::Dropped;
        }
        let len = frame.len();
        let before = self.outbox.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > self.outbox.limit {
            self.outbox.queued.fetch_sub(len, Ordering::Relaxed);
            self.outbox.metrics.frames_dropped.inc();
            return if self.outbox.start_closing() {
                Pushed::Overflowed
            } else {
                Pushed::Dropped
            };
        }
        self.recipient.do_send(SessionCommand::Push(frame.clone()));
        Pushed::Queued
    }

    /// Sends a command outside the byte budget (close requests).
    pub fn command(&self, command: SessionCommand) {
        self.recipient.do_send(command);
    }

    /// Marks the session closing so that nothing more is queued for it.
    pub fn start_closing(&self) -> bool {
        self.outbox.start_closing()
    }

    /// Shuts the connection's socket down if the session is still alive. The frozen session's
    /// pending write then fails, actix-http drops the connection, and with it the actor and its
    /// mailbox.
    pub fn shut_down_socket(&self) {
        let Ok(socket) = self.outbox.socket.lock() else {
            return;
        };
        if let Some(fd) = *socket {
            // SAFETY: `fd` is the connection's socket and is still open: the session clears it
            // (under this lock) before actix-http closes the descriptor, so it cannot have been
            // reused. shutdown() only changes the socket's state; it does not close the fd.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }
}
