//! [`Wakeups`]: when a session with frames waiting is woken.
//!
//! A push that makes a session's outbox non-empty does not wake the session itself: it puts the
//! outbox on its thread's list of sessions *due*, and one task per worker thread, the flusher,
//! wakes them in order, a few at a time, yielding to the thread's other tasks between rounds.
//! (What is woken is the task that writes the session's frames: its connection's body,
//! [`super::connection::ConnectionBody`]; "session" here means that.)
//!
//! Why: a worker thread runs its tasks first come, first served. Woken directly, the 10,000
//! sessions of a broadcast would all queue ahead of the REST call's reply and ahead of the next
//! call's fan-out, so every session would write each frame on its own (a wake-up and a socket
//! write per frame per client, the cost that capped a big room). With the flusher, the reply goes
//! out first and the next call is fanned out while most sessions are still due, so each session
//! finds every frame that came meanwhile and writes them at once. Nothing is held back: when
//! there is no other work, the flusher wakes session after session straight away, in push order.
//!
//! The flusher also turns a broadcast from the registry's thread to the sessions of another
//! worker into one cross-thread wake-up (of that worker's flusher) instead of one per session.
//!
//! A session woken in one round has had its turn by the flusher's next round (the flusher queues
//! itself behind the sessions it woke), so the flusher counts its rounds: a session woken in the
//! current round has not had its turn yet either.
//!
//! How long the oldest due session has waited is the server's *delivery lag*: how far delivery
//! is behind the sends. A client whose queue passes its bound while its session is still due
//! is not a slow consumer (the server has not let it write yet); sends wait instead
//! ([`wait_for_delivery`]) while the lag is over [`OverloadGate::lag`], so that an overloaded
//! server slows its senders down rather than filling its readers' queues.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

pub use crate::config::OverloadGate;
use crate::metrics::Metrics;

/// Sessions the flusher wakes before it lets the thread's other tasks (the sessions it woke,
/// REST calls, the registry) run.
const WAKE_ROUND: usize = 64;

/// How often a waiting send looks at the lag again.
const OVERLOAD_POLL: Duration = Duration::from_millis(5);

/// What the flusher wakes: a session's outbox.
pub trait Due: Send + Sync {
    /// Wake the session now; `round` is the flusher's round that does it.
    fn wake_due(&self, round: u64);
}

/// One worker thread's sessions due to be woken. Shared by the flusher (on that thread) and every
/// sender (any thread). Lives as long as an outbox of that thread or its flusher.
pub struct Wakeups {
    due: Mutex<DueList>,
    /// The flusher's task.
    flusher: AtomicWaker,
    /// The flusher's rounds so far: every session woken before the current round has had its
    /// turn to run.
    round: AtomicU64,
}

#[derive(Default)]
struct DueList {
    /// Outboxes with frames whose session has not been woken for them yet, oldest first, with
    /// when each was scheduled.
    outboxes: VecDeque<(Instant, Arc<dyn Due>)>,
    /// The flusher is gone (its thread's runtime stopped): senders wake sessions themselves.
    closed: bool,
}

/// Every thread's wakeups, for the delivery lag.
static ALL: Mutex<Vec<Weak<Wakeups>>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's wakeups, while its flusher runs.
    static THIS_THREAD: RefCell<Option<Arc<Wakeups>>> = const { RefCell::new(None) };
}

impl Wakeups {
    /// The wakeups of the calling thread, starting its flusher the first time. `None` outside an
    /// actix arbiter: sessions are then woken by whoever pushes.
    pub fn for_this_thread() -> Option<Arc<Wakeups>> {
        THIS_THREAD.with(|current| {
            let mut current = current.borrow_mut();
            if let Some(wakeups) = current.as_ref().filter(|w| !w.due().closed) {
                return Some(wakeups.clone());
            }
            let arbiter = actix::Arbiter::try_current()?;
            let wakeups = Arc::new(Wakeups {
                due: Mutex::new(DueList::default()),
                flusher: AtomicWaker::new(),
                round: AtomicU64::new(0),
            });
            let flusher = Flusher {
                wakeups: wakeups.clone(),
                round: Vec::with_capacity(WAKE_ROUND),
            };
            if !arbiter.spawn(flusher) {
                return None;
            }
            *current = Some(wakeups.clone());
            wakeups.count_in_lag();
            Some(wakeups)
        })
    }

    /// Makes this thread's due sessions count in [`delivery_lag`].
    fn count_in_lag(self: &Arc<Self>) {
        if let Ok(mut all) = ALL.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(self));
        }
    }

    fn due(&self) -> MutexGuard<'_, DueList> {
        // Every change under this lock is a single push, pop or flag: usable after a panic.
        self.due
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes `outbox`'s session in its turn.
    pub fn schedule(&self, outbox: Arc<dyn Due>) {
        let mut due = self.due();
        if due.closed {
            drop(due);
            outbox.wake_due(u64::MAX);
            return;
        }
        due.outboxes.push_back((Instant::now(), outbox));
        let first = due.outboxes.len() == 1;
        drop(due);
        if first {
            self.flusher.wake();
        }
    }

    /// The flusher's current round: a session woken in it has not had its turn yet.
    pub fn round(&self) -> u64 {
        self.round.load(Ordering::Acquire)
    }

    /// How long the oldest due session has waited on this thread.
    fn lag(&self, now: Instant) -> Duration {
        self.due()
            .outboxes
            .front()
            .map_or(Duration::ZERO, |(since, _)| {
                now.saturating_duration_since(*since)
            })
    }
}

/// The delivery lag: how long the oldest due session of any thread has waited to be woken.
pub fn delivery_lag() -> Duration {
    let now = Instant::now();
    let all: Vec<Arc<Wakeups>> = match ALL.lock() {
        Ok(all) => all.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => return Duration::ZERO,
    };
    all.iter()
        .map(|w| w.lag(now))
        .max()
        .unwrap_or(Duration::ZERO)
}

/// The server is too far behind with delivery to take another send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// Waits (up to `gate.wait`) until the delivery lag is under `gate.lag`; returns at once when
/// it is. A send that had to wait is counted in `metrics`.
pub async fn wait_for_delivery(gate: OverloadGate, metrics: &Metrics) -> Result<(), Overloaded> {
    if wait_until_lag_under(gate.lag, gate.wait).await? {
        metrics.sends_delayed.inc();
    }
    Ok(())
}

async fn wait_until_lag_under(lag: Duration, wait: Duration) -> Result<bool, Overloaded> {
    if delivery_lag() <= lag {
        return Ok(false);
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        tokio::time::sleep(OVERLOAD_POLL).await;
        if delivery_lag() <= lag {
            return Ok(true);
        }
    }
    Err(Overloaded)
}

/// The task that wakes a thread's due sessions.
struct Flusher {
    wakeups: Arc<Wakeups>,
    /// The outboxes of the current round (kept to reuse its allocation).
    round: Vec<Arc<dyn Due>>,
}

impl Future for Flusher {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // Register before looking, so a schedule that lands in between still wakes us.
        this.wakeups.flusher.register(cx.waker());
        // The sessions woken last time have run since: a new round.
        let round = this.wakeups.round.fetch_add(1, Ordering::AcqRel) + 1;
        let more = {
            let mut due = this.wakeups.due();
            let count = due.outboxes.len().min(WAKE_ROUND);
            this.round
                .extend(due.outboxes.drain(..count).map(|(_, outbox)| outbox));
            !due.outboxes.is_empty()
        };
        let woke = !this.round.is_empty();
        for outbox in this.round.drain(..) {
            outbox.wake_due(round);
        }
        if more || woke {
            // Go to the back of the thread's queue, behind the sessions just woken and whatever
            // else came in (a REST call, the next fan-out), then start the next round (if only
            // to count that these sessions have had their turn).
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Flusher {
    /// The thread's runtime is stopping: nobody will wake what is due, so wake it now, and let
    /// later senders wake sessions themselves.
    fn drop(&mut self) {
        let due = {
            let mut due = self.wakeups.due();
            due.closed = true;
            std::mem::take(&mut due.outboxes)
        };
        for (_, outbox) in due {
            outbox.wake_due(u64::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A session that counts its wake-ups.
    #[derive(Default)]
    struct Session(AtomicUsize);

    impl Due for Session {
        fn wake_due(&self, _round: u64) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A thread's wakeups whose flusher the test polls by hand.
    fn by_hand() -> (Arc<Wakeups>, Flusher) {
        let wakeups = Arc::new(Wakeups {
            due: Mutex::new(DueList::default()),
            flusher: AtomicWaker::new(),
            round: AtomicU64::new(0),
        });
        wakeups.count_in_lag();
        let flusher = Flusher {
            wakeups: wakeups.clone(),
            round: Vec::new(),
        };
        (wakeups, flusher)
    }

    fn poll(flusher: &mut Flusher) {
        let waker = futures_util::task::noop_waker();
        let _ = Pin::new(flusher).poll(&mut Context::from_waker(&waker));
    }

    #[test]
    fn the_flusher_wakes_sessions_in_order_a_round_at_a_time() {
        let (wakeups, mut flusher) = by_hand();
        let sessions: Vec<Arc<Session>> = (0..WAKE_ROUND + 1).map(|_| Arc::default()).collect();
        for session in &sessions {
            wakeups.schedule(session.clone());
        }
        poll(&mut flusher);
        let woken = |s: &Arc<Session>| s.0.load(Ordering::SeqCst);
        assert!(sessions[..WAKE_ROUND].iter().all(|s| woken(s) == 1));
        assert_eq!(
            woken(&sessions[WAKE_ROUND]),
            0,
            "the rest waits for the next round"
        );
        let round = wakeups.round();
        poll(&mut flusher);
        assert_eq!(woken(&sessions[WAKE_ROUND]), 1);
        assert_eq!(wakeups.round(), round + 1);
    }

    #[tokio::test]
    async fn sends_wait_while_a_session_waits_for_its_turn_and_are_refused_if_it_stays() {
        let (wakeups, mut flusher) = by_hand();
        wakeups.schedule(Arc::new(Session::default()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(delivery_lag() >= Duration::from_millis(30));
        let short = Duration::from_millis(10);
        assert_eq!(
            wait_until_lag_under(short, Duration::from_millis(50)).await,
            Err(Overloaded),
            "refused once it has waited its time"
        );
        // The session gets its turn while a send waits: the send goes ahead.
        let waiting = tokio::spawn(wait_until_lag_under(short, Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        poll(&mut flusher);
        assert_eq!(waiting.await.ok(), Some(Ok(true)));
        assert_eq!(wait_until_lag_under(short, short).await, Ok(false));
    }
}
