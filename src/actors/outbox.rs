//! [`SessionHandle`]: how the registry and groups hand frames to a session, with the bound on
//! what may wait for it.
//!
//! Frames do not travel as actor messages. Each session owns an [`Outbox`]: a queue of
//! pre-serialized frames shared with everyone holding its handle. A sender appends to the queue
//! and, only when it was empty, wakes the session, which then takes the whole queue at once
//! ([`OutboxStream`], polled by the session's context). A fan-out therefore costs one lock and
//! one append per member, and a burst costs one wake-up per session, not one mailbox envelope per
//! frame.
//!
//! The queue is bounded in bytes. A `WebsocketContext` actor only runs while actix-http polls the
//! response body, and actix-http stops polling when the socket will not take more, so a client
//! that stops reading freezes its session. A push that would pass the bound is refused, the
//! session is marked closing (nothing more is queued for it), and the registry removes the client
//! and, should the session stay frozen, shuts its socket down from outside
//! ([`SessionHandle::shut_down_socket`]) so that the connection, its actor and its queue are
//! freed without the actor having to run.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use actix::{Message, Recipient};
use bytestring::ByteString;
use futures_util::task::AtomicWaker;
use futures_util::Stream;

use crate::metrics::Metrics;
use crate::protocol::CloseReason;

/// What a session is told to do besides writing frames (frames go through its outbox, see
/// this module). Sessions only ever receive this one type, so groups and the registry hold
/// `Recipient<SessionCommand>` (inside a [`SessionHandle`]) rather than the session's concrete
/// type.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum SessionCommand {
    /// Write the frames already queued (unless it is a slow consumer), then `frame` (if any),
    /// then a close frame with this code, then stop.
    Close {
        kind: CloseReason,
        reason: String,
        frame: Option<ByteString>,
    },
}

/// Frames waiting for one session, and their total size.
#[derive(Default)]
struct Queue {
    frames: VecDeque<ByteString>,
    bytes: usize,
}

/// State shared by a session and everyone holding its handle. Lives as long as any of them.
pub struct Outbox {
    /// Frames handed to the session and not yet taken by it.
    queue: Mutex<Queue>,
    /// The bound on `queue.bytes`.
    limit: usize,
    /// Wakes the session's [`OutboxStream`] when the queue stops being empty.
    waker: AtomicWaker,
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
            queue: Mutex::new(Queue::default()),
            limit,
            waker: AtomicWaker::new(),
            closing: AtomicBool::new(false),
            socket: Mutex::new(socket),
            metrics,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent: use it as is.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes every waiting frame (empty when none).
    pub fn take_all(&self) -> VecDeque<ByteString> {
        let mut queue = self.queue();
        queue.bytes = 0;
        std::mem::take(&mut queue.frames)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Marks the session closing; true for the caller that changed it.
    pub fn start_closing(&self) -> bool {
        !self.closing.swap(true, Ordering::AcqRel)
    }

    /// Stops reading from a client that broke the rules: actix-http would otherwise keep
    /// reading (and discarding) whatever it streams after the session closed. Writing is left
    /// open so the close frame still goes out.
    pub fn stop_reading(&self) {
        self.shut_down(libc::SHUT_RD);
    }

    fn shut_down(&self, how: libc::c_int) {
        let Ok(socket) = self.socket.lock() else {
            return;
        };
        if let Some(fd) = *socket {
            // SAFETY: `fd` is the connection's socket and is still open: the session clears it
            // (under this lock) before actix-http closes the descriptor, so it cannot have been
            // reused. shutdown() only changes the socket's state; it does not close the fd.
            unsafe {
                libc::shutdown(fd, how);
            }
        }
    }

    /// Called from the session's `Drop`: the descriptor is about to be closed by actix-http.
    pub fn forget_socket(&self) {
        if let Ok(mut socket) = self.socket.lock() {
            *socket = None;
        }
    }
}

/// The session's side of its outbox: yields every waiting frame at once, as one batch.
pub struct OutboxStream(pub Arc<Outbox>);

impl Stream for OutboxStream {
    type Item = VecDeque<ByteString>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Register before looking, so a push that lands in between still wakes us.
        self.0.waker.register(cx.waker());
        let batch = self.0.take_all();
        if batch.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Some(batch))
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

    /// Queues a frame for the session unless that would pass its bound. Never waits on it.
    pub fn push(&self, frame: &ByteString) -> Pushed {
        let outbox = &self.outbox;
        if outbox.is_closing() {
            outbox.metrics.frames_dropped.inc();
            return Pushed::Dropped;
        }
        let was_empty = {
            let mut queue = outbox.queue();
            if queue.bytes + frame.len() > outbox.limit {
                drop(queue);
                outbox.metrics.frames_dropped.inc();
                return if outbox.start_closing() {
                    Pushed::Overflowed
                } else {
                    Pushed::Dropped
                };
            }
            queue.bytes += frame.len();
            queue.frames.push_back(frame.clone());
            queue.frames.len() == 1
        };
        if was_empty {
            outbox.waker.wake();
        }
        Pushed::Queued
    }

    /// Sends a command outside the queue (close requests).
    pub fn command(&self, command: SessionCommand) {
        self.recipient.do_send(command);
    }

    /// Marks the session closing so that nothing more is queued for it.
    pub fn start_closing(&self) -> bool {
        self.outbox.start_closing()
    }

    /// Shuts the connection's socket down if the session is still alive. The frozen session's
    /// pending write then fails, actix-http drops the connection, and with it the actor and its
    /// queue.
    pub fn shut_down_socket(&self) {
        self.outbox.shut_down(libc::SHUT_RDWR);
    }
}
