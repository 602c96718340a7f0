//! [`AwayBudget`]: the bound on what every away recovery client holds together
//! (`--recovery-away-bytes`).
//!
//! Each away client is bounded by `--recovery-buffer` on its own, but nothing else limits how
//! many there are but the connection limits, so their frames together need a bound of their own.
//! A parked outbox charges the budget for what it holds (its history and its queue, each kept
//! frame counted with [`KEPT_FRAME_COST`]) and gives it back when the client resumes or goes
//! offline. A charge past the bound asks the registry, once, to send the clients away longest
//! offline until the total fits ([`TrimAway`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix::{Message, Recipient, WeakRecipient};

/// What keeping one frame costs besides its bytes: its slot in a queue (a `ByteString` is a
/// `Bytes`, 32 bytes) and its share of the shared allocation's header. Counted per reference,
/// since that is what each away client adds.
pub const KEPT_FRAME_COST: usize = 48;

/// Bytes a frame costs where it is kept.
pub fn kept_cost(frame_len: usize) -> usize {
    frame_len + KEPT_FRAME_COST
}

/// The registry is asked to send the longest-away clients offline until the budget fits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TrimAway;

/// What all away clients hold together, and its bound. Shared by the registry (which owns the
/// away clients) and their outboxes (which charge it).
pub struct AwayBudget {
    held: AtomicUsize,
    limit: usize,
    /// Set while a [`TrimAway`] is on its way, so that a burst of pushes asks once.
    trim_asked: AtomicBool,
    /// Weak: the registry holds the budget, which must not keep the registry alive.
    registry: WeakRecipient<TrimAway>,
}

impl AwayBudget {
    pub fn new(limit: usize, registry: Recipient<TrimAway>) -> Self {
        AwayBudget {
            held: AtomicUsize::new(0),
            limit,
            trim_asked: AtomicBool::new(false),
            registry: registry.downgrade(),
        }
    }

    /// Moves an outbox's charge from `before` to `after` bytes; asks for a trim when the total
    /// passes the bound.
    pub fn recharge(&self, before: usize, after: usize) {
        let total = if after >= before {
            self.held.fetch_add(after - before, Ordering::AcqRel) + (after - before)
        } else {
            self.held.fetch_sub(before - after, Ordering::AcqRel) - (before - after)
        };
        if total > self.limit && !self.trim_asked.swap(true, Ordering::AcqRel) {
            if let Some(registry) = self.registry.upgrade() {
                registry.do_send(TrimAway);
            }
        }
    }

    /// Whether the away clients hold more than the bound.
    pub fn is_over(&self) -> bool {
        self.held.load(Ordering::Acquire) > self.limit
    }

    /// Bytes held by away clients now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The registry has trimmed: the next charge past the bound asks again.
    pub fn trimmed(&self) {
        self.trim_asked.store(false, Ordering::Release);
    }
}
