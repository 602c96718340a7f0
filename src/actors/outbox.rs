//! Why this file is long: the queue, its two bounds (connected and away) and its recovery
//! states (history, parked, forwarded) are kept under one lock, and each rule about them is
//! only right together with the others, so they are read side by side here.
//!
//! [`SessionHandle`]: how the registry and groups hand frames to a session, with the bound on
//! what may wait for it.
//!
//! Frames do not travel as actor messages. Each session owns an [`Outbox`]: a queue of
//! pre-serialized frames shared with everyone holding its handle. A sender appends to the queue
//! and, only when it was empty, has the connection woken in its turn (by its thread's flusher,
//! [`super::wakeups`]), and the connection's body then takes the queue
//! ([`super::connection::ConnectionBody`]; a relayed session's home reads it as a stream).
//! A fan-out therefore costs one lock and one append per member, and a burst costs one wake-up
//! per connection, not one mailbox envelope per frame. The session writes its own frames
//! (control frames, a close) beside the queue, outside its bound ([`Outbox::write_own`]).
//!
//! The queue is bounded in bytes, for a client whose connection has had its turn to write: one
//! still waiting for its thread's flusher ([`super::wakeups`]) is not held to it, since the
//! delay is the server's (and sends wait while delivery is behind). The body only runs while
//! its transport polls it, and the transport stops polling when the socket will not take more,
//! so the queue of a client that stops reading grows. A push that would pass the bound is
//! refused, the session is marked closing (nothing more is queued for it), the registry removes
//! the client and closes its session, and, should the connection stay stuck, its socket is shut
//! down from outside once the session has stopped ([`Outbox::shut_down_socket`]), so that the
//! connection and its queue are freed.
//!
//! A client that asked for recovery also keeps a history: the frames its session has taken to
//! write, bounded by `--recovery-buffer`, so a resume can replay whatever came after the last
//! frame the client saw. When its connection is lost the registry *parks* the outbox: pushes go
//! on queuing (bounded by `--recovery-buffer` now, history and queue together, the oldest
//! history going first) for a session that will never take them. A resume takes the history
//! after `last` and the queue, and from then on forwards every push to the new session's outbox,
//! so a push already on its way to the old handle (a group's mailbox) is neither lost nor
//! reordered. The frames are the same shared bytes throughout: keeping them copies nothing.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Message, Recipient};
use actix_http::ws;
use bytestring::ByteString;
use futures_util::task::AtomicWaker;

use super::away::{AwayBudget, KEPT_FRAME_COST};
use super::history::History;
pub use super::history::{HandedOver, LastNotHeld};
use super::wakeups::{Due, Wakeups};
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
    /// `Some` for a client that asked for recovery.
    history: Option<History>,
    /// Its connection is lost and its recovery window open (see the module docs): what it
    /// holds is charged to every away client's budget.
    parked: Option<Arc<AwayBudget>>,
    /// What is charged to that budget now.
    charged: usize,
    /// Resumed on another connection: pushes go there.
    forward: Option<SessionHandle>,
}

/// See [`Outbox::write_own`].
#[derive(Default)]
struct OwnFrames {
    frames: VecDeque<ws::Message>,
    ended: bool,
}

/// `Outbox::woken_in` while the session waits for its flusher (no round reaches it).
const DUE: u64 = u64::MAX - 1;
/// `Outbox::woken_in` before any wake-up (and after one by a stopped flusher).
const NEVER_WOKEN: u64 = u64::MAX;

/// State shared by a session and everyone holding its handle. Lives as long as any of them.
pub struct Outbox {
    /// Frames handed to the session and not yet taken by it.
    queue: Mutex<Queue>,
    /// The bound on `queue.bytes`.
    limit: usize,
    /// The bound on a recovery client's history, and on history and queue together once
    /// parked.
    recovery_limit: usize,
    /// The client this outbox belongs to. It changes once, when a resume makes the session's
    /// client the one that came back.
    client_id: Mutex<String>,
    /// Wakes whoever takes the frames (the connection's body, or a relayed session's stream)
    /// when the queue stops being empty.
    waker: AtomicWaker,
    /// Frames the session writes itself, outside the queue and its bound (control frames, a
    /// refusal, what was queued before a close), and whether the connection ends after them.
    own: Mutex<OwnFrames>,
    /// Set while `own` has something for the body, so that a wake-up for pushed frames alone
    /// does not take that lock.
    own_waiting: AtomicBool,
    /// Who wakes the session in its turn: its thread's flusher (`None` outside an actix
    /// arbiter: the pusher wakes it).
    wakeups: Option<Arc<Wakeups>>,
    /// Set once the session is being closed: nothing more is queued for it.
    closing: AtomicBool,
    /// The flusher round that last woke the session ([`DUE`] while its frames wait for the
    /// flusher to wake it): until the next round it has not had its turn to run, and a queue past
    /// its bound is the server's delay, not the client's (see [`super::wakeups`]).
    woken_in: AtomicU64,
    /// The connection's socket, while it is open (cleared by the connection body's `Drop`,
    /// which the transport runs before it closes the descriptor). `None` when unknown.
    socket: Mutex<Option<RawFd>>,
    /// Counts frames dropped for this session.
    metrics: Arc<Metrics>,
    /// What keeps a parked client reachable and counted (its session's backplane lease and its
    /// place at the connection gate, handed over when the connection was lost); released when
    /// the client resumes or goes offline ([`SessionHandle::retire`]), or with the outbox.
    kept: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
}

impl Outbox {
    /// `recovery`: `Some(--recovery-buffer)` for a client that asked for recovery.
    pub fn new(
        client_id: String,
        limit: usize,
        recovery: Option<usize>,
        socket: Option<RawFd>,
        metrics: Arc<Metrics>,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue {
                history: recovery.map(|_| History::default()),
                ..Queue::default()
            }),
            limit,
            recovery_limit: recovery.unwrap_or(0),
            client_id: Mutex::new(client_id),
            waker: AtomicWaker::new(),
            own: Mutex::new(OwnFrames::default()),
            own_waiting: AtomicBool::new(false),
            wakeups: Wakeups::for_this_thread(),
            closing: AtomicBool::new(false),
            woken_in: AtomicU64::new(NEVER_WOKEN),
            socket: Mutex::new(socket),
            metrics,
            kept: Mutex::new(Vec::new()),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the server has not yet let the session take what waits for it (see
    /// [`super::wakeups`]): it is due, or was woken in its flusher's current round.
    fn waits_for_its_turn(&self) -> bool {
        match &self.wakeups {
            Some(wakeups) => {
                let woken_in = self.woken_in.load(Ordering::Acquire);
                woken_in == DUE || woken_in == wakeups.round()
            }
            None => false,
        }
    }

    /// Has the session woken in its turn: it has frames to take.
    fn schedule_wake(self: &Arc<Self>) {
        match &self.wakeups {
            Some(wakeups) => {
                self.woken_in.store(DUE, Ordering::Release);
                wakeups.schedule(self.clone());
            }
            None => self.waker.wake(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent: use it as is.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The client this outbox belongs to now.
    pub fn client_id(&self) -> String {
        self.client_id
            .lock()
            .map(|id| id.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Keeps `what` (a [`crate::backplane::Lease`], a [`crate::gate::ConnectionPermit`]) while
    /// the client is away: it stays reachable (in a cluster, its node stays subscribed to its
    /// system's channel) and counted at the gate after its session is gone.
    pub fn keep(&self, what: impl std::any::Any + Send) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.push(Box::new(what));
        }
    }

    /// Lets go of what [`Outbox::keep`] kept, and of its charge to the away budget.
    fn release_kept(&self) {
        let mut queue = self.queue();
        if let Some(budget) = queue.parked.take() {
            budget.recharge(std::mem::take(&mut queue.charged), 0);
        }
        drop(queue);
        let kept = self.kept.lock().map(|mut kept| std::mem::take(&mut *kept));
        drop(kept);
    }

    /// Takes every waiting frame (empty when none); a recovery client's history keeps them.
    pub fn take_all(&self) -> VecDeque<ByteString> {
        self.take(usize::MAX)
    }

    /// Takes waiting frames, oldest first, until they reach `max_bytes` (at least one, if any
    /// waits); a recovery client's history keeps them.
    pub fn take(&self, max_bytes: usize) -> VecDeque<ByteString> {
        let mut queue = self.queue();
        let frames = if queue.bytes <= max_bytes {
            queue.bytes = 0;
            std::mem::take(&mut queue.frames)
        } else {
            let mut taken = 0;
            let count = queue
                .frames
                .iter()
                .take_while(|frame| {
                    let first = taken == 0;
                    taken += frame.len();
                    first || taken <= max_bytes
                })
                .count();
            let rest = queue.frames.split_off(count);
            let frames = std::mem::replace(&mut queue.frames, rest);
            queue.bytes -= frames.iter().map(|frame| frame.len()).sum::<usize>();
            frames
        };
        if let Some(history) = &mut queue.history {
            history.record(&frames, self.recovery_limit);
        }
        frames
    }

    fn own(&self) -> MutexGuard<'_, OwnFrames> {
        // As with the queue, a panic under this lock leaves nothing half-done.
        self.own
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Has the connection write `message` next, whether or not the session is closing (a pong,
    /// a ping, a close, a refusal, the frames queued before a close). A pong or ping not yet
    /// written is replaced by the next (RFC 6455 allows a pong for the latest ping only): the
    /// session reads its client even while the connection cannot write, and a client that pings
    /// without reading must not grow this queue.
    pub fn write_own(&self, message: ws::Message) {
        let mut own = self.own();
        if own.ended {
            return;
        }
        let coalesces = matches!(message, ws::Message::Ping(_) | ws::Message::Pong(_));
        let kind = std::mem::discriminant(&message);
        let same =
            |queued: &&mut ws::Message| coalesces && std::mem::discriminant(&**queued) == kind;
        match own.frames.iter_mut().find(same) {
            Some(queued) => *queued = message,
            None => own.frames.push_back(message),
        }
        self.own_waiting.store(true, Ordering::Release);
        drop(own);
        self.waker.wake();
    }

    /// Ends the connection once what the session wrote itself has gone out.
    pub fn end_connection(&self) {
        self.own().ended = true;
        self.own_waiting.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// For the connection's body: the frames the session wrote itself, and whether the
    /// connection ends after them.
    pub fn take_own_frames(&self) -> (VecDeque<ws::Message>, bool) {
        if !self.own_waiting.load(Ordering::Acquire) {
            return (VecDeque::new(), false);
        }
        let mut own = self.own();
        // Still set once ended, so that every later look sees the end.
        self.own_waiting.store(own.ended, Ordering::Release);
        (std::mem::take(&mut own.frames), own.ended)
    }

    /// For whoever takes the frames: wake this task when there is something to take.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Marks the session closing; true for the caller that changed it.
    pub fn start_closing(&self) -> bool {
        !self.closing.swap(true, Ordering::AcqRel)
    }

    /// Stops reading from a client that broke the rules: the transport would otherwise keep
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
            // (under this lock) before the transport closes the descriptor, so it cannot have been
            // reused. shutdown() only changes the socket's state; it does not close the fd.
            unsafe {
                libc::shutdown(fd, how);
            }
        }
    }

    /// Shuts the connection's socket down if it is still open. A stuck connection's pending
    /// write then fails and its transport drops the connection, and with it its body and queue.
    pub fn shut_down_socket(&self) {
        self.shut_down(libc::SHUT_RDWR);
    }

    /// Whether the connection's socket is known and still open (not yet forgotten).
    pub fn has_socket(&self) -> bool {
        self.socket.lock().is_ok_and(|socket| socket.is_some())
    }

    /// Called from the connection body's `Drop`: the transport is about to close the descriptor.
    pub fn forget_socket(&self) {
        if let Ok(mut socket) = self.socket.lock() {
            *socket = None;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let queue = self.queue();
        if let Some(budget) = &queue.parked {
            budget.recharge(queue.charged, 0);
        }
    }
}

impl Queue {
    /// What a parked queue holds, kept frames counted as they cost.
    fn held(&self) -> usize {
        let history = self.history.as_ref().map_or(0, History::cost);
        history + self.bytes + self.frames.len() * KEPT_FRAME_COST
    }

    /// Charges the away budget for what a parked queue holds now.
    fn recharge(&mut self) {
        if let Some(budget) = &self.parked {
            let held = self.held();
            budget.recharge(self.charged, held);
            self.charged = held;
        }
    }
}

impl Due for Outbox {
    fn wake_due(&self, round: u64) {
        self.woken_in.store(round, Ordering::Release);
        self.waker.wake();
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
        let was_empty = {
            let mut queue = outbox.queue();
            if let Some(next) = queue.forward.clone() {
                drop(queue);
                return next.push(frame);
            }
            if outbox.is_closing() {
                drop(queue);
                outbox.metrics.frames_dropped.inc();
                return Pushed::Dropped;
            }
            let parked = queue.parked.is_some();
            let (queued, adding, limit) = if parked {
                // Parked: history and queue share the recovery bound, oldest history first,
                // each kept frame counted with what keeping it costs.
                let queued = queue.bytes + queue.frames.len() * KEPT_FRAME_COST;
                let adding = super::away::kept_cost(frame.len());
                if let Some(history) = &mut queue.history {
                    history.make_room(queued + adding, outbox.recovery_limit);
                }
                (queued, adding, outbox.recovery_limit)
            } else {
                (queue.bytes, frame.len(), outbox.limit)
            };
            // A session still waiting for its turn to write is not a slow consumer: the server
            // is behind, and its sends wait (`wakeups::wait_for_delivery`) until it catches up.
            if queued + adding > limit && (parked || !outbox.waits_for_its_turn()) {
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
            if parked {
                queue.recharge();
            }
            queue.frames.len() == 1
        };
        if was_empty {
            outbox.schedule_wake();
        }
        Pushed::Queued
    }

    /// Starts a resumed client's outbox: `handed.last` stays in its history (so that a resume
    /// of this session may name it again), and the frames to replay are queued, outside the
    /// bound (they are within `--recovery-buffer`, and the session takes them at once).
    pub fn take_over(&self, handed: HandedOver) {
        let mut queue = self.outbox.queue();
        if let (Some(history), Some(last)) = (&mut queue.history, handed.last) {
            history.keep_last(last);
        }
        if handed.replay.is_empty() {
            return;
        }
        queue.frames.extend(handed.replay);
        drop(queue);
        self.outbox.schedule_wake();
    }

    /// The connection is lost and the client may come back: keep queuing for it, within
    /// `--recovery-buffer`, charging `budget` for what it holds.
    pub fn park(&self, budget: Arc<AwayBudget>) {
        let mut queue = self.outbox.queue();
        queue.parked = Some(budget);
        queue.recharge();
    }

    /// The client resumed elsewhere or went offline: what kept it reachable and counted while
    /// away is let go, and its frames no longer count against the away budget.
    pub fn retire(&self) {
        self.outbox.release_kept();
    }

    /// A resume: the frames the client has not seen (after the one named `last`, every held
    /// one when `None`), after which pushes go to `to`. Fails, changing nothing, when `last` is
    /// not held (or the client kept no history).
    pub fn hand_over(
        &self,
        last: Option<&str>,
        to: &SessionHandle,
    ) -> Result<HandedOver, LastNotHeld> {
        let mut queue = self.outbox.queue();
        let history = queue.history.as_ref().ok_or(LastNotHeld)?;
        let (last, mut replay) = history.after(last)?;
        replay.extend(queue.frames.drain(..));
        queue.bytes = 0;
        queue.history = None;
        queue.forward = Some(to.clone());
        drop(queue);
        // The new connection is counted (and reachable) now: the old one's place is given back.
        self.outbox.release_kept();
        Ok(HandedOver { last, replay })
    }

    /// Makes the session's client `client_id` (a resume adopted it).
    pub fn adopt(&self, client_id: &str) {
        if let Ok(mut id) = self.outbox.client_id.lock() {
            *id = client_id.to_owned();
        }
    }

    /// Whether this handle reaches `outbox`.
    pub fn is(&self, outbox: &Arc<Outbox>) -> bool {
        Arc::ptr_eq(&self.outbox, outbox)
    }

    /// Sends a command outside the queue (close requests).
    pub fn command(&self, command: SessionCommand) {
        self.recipient.do_send(command);
    }

    /// Marks the session closing so that nothing more is queued for it.
    pub fn start_closing(&self) -> bool {
        self.outbox.start_closing()
    }
}
