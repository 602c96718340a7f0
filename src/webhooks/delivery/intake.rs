//! The outbox side of the delivery thread: what was kept is queued again at start, what arrives
//! is written (one commit for all that arrived meanwhile) before it is queued, and the oldest
//! pending event's age is reported.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::{Command, Lanes, Shared};
use crate::settings::now_millis;
use crate::webhooks::outbox::{Outbox, Stored};

/// Most events one step of an adoption moves (one Lua call: Redis serves others in between).
const ADOPT_CHUNK: usize = 1000;

impl Shared {
    /// Queues what the outbox held at start, in order, each to the registration and target it
    /// was stored with.
    pub(super) fn restore(self: &Rc<Self>, outbox: &Outbox, lanes: &mut Lanes) {
        let stored = match outbox.load() {
            Ok(stored) => stored,
            Err(err) => {
                log::error!("{err}; its events are not delivered");
                return;
            }
        };
        if stored.is_empty() {
            return;
        }
        log::info!(
            "webhook outbox: {} events kept from before, delivering them",
            stored.len()
        );
        if let Some((last, _)) = stored.last() {
            self.next_seq.set(self.next_seq.get().max(last + 1));
        }
        self.requeue(stored, lanes);
    }

    /// Queues events that are in the outbox already (kept from before, or adopted), each to
    /// the registration and target it was stored with.
    fn requeue(self: &Rc<Self>, stored: Vec<(u64, Stored)>, lanes: &mut Lanes) {
        self.pending.fetch_add(stored.len(), Ordering::AcqRel);
        self.metrics.webhook_events_stored.add(stored.len() as i64);
        for (seq, kept) in stored {
            self.stored_at.borrow_mut().insert(seq, kept.stored_at);
            let event = kept.event();
            self.queue(
                seq,
                &kept.system,
                kept.registration,
                kept.target,
                event,
                lanes,
            );
        }
    }

    /// Takes what arrived, in order: the events and retargets between two adoptions in one
    /// commit, and each adoption once what came before it is queued.
    pub(super) async fn take_in_order(
        self: &Rc<Self>,
        intake: Vec<Command>,
        mut outbox: Outbox,
        lanes: &mut Lanes,
    ) -> Outbox {
        let mut run = Vec::new();
        for command in intake {
            match command {
                Command::Adopt { node_id, done } => {
                    outbox = self.take_all(std::mem::take(&mut run), outbox, lanes).await;
                    let adopted = self.adopt(&node_id, &mut outbox, lanes).await;
                    let _ = done.send(adopted);
                }
                command => run.push(command),
            }
        }
        self.take_all(run, outbox, lanes).await
    }

    /// Moves dead node `node_id`'s pending events into this node's outbox, a chunk at a time,
    /// and queues them, each to the registration and target it was stored with. How many, or
    /// why not (what was moved before a failure is queued, the rest stays in the node's stream).
    async fn adopt(
        self: &Rc<Self>,
        node_id: &str,
        outbox: &mut Outbox,
        lanes: &mut Lanes,
    ) -> Result<usize, String> {
        let mut total = 0;
        loop {
            // Numbers reserved for the chunk, so the stream's ids stay in order.
            let first = self.next_seq.get();
            self.next_seq.set(first + ADOPT_CHUNK as u64);
            let (moved, events) = outbox.adopt(node_id, first, ADOPT_CHUNK).await?;
            total += moved;
            self.requeue(events, lanes);
            if moved < ADOPT_CHUNK {
                if total > 0 {
                    log::warn!(
                        "webhook outbox: took over {total} pending events of dead node {node_id}"
                    );
                }
                return Ok(total);
            }
        }
    }

    /// Writes what arrived to the outbox in one commit (with the removals since the last), then
    /// queues it. Events that could not be written are dropped, and counted. A file's commit
    /// runs on a blocking thread and Redis's is one round trip, so the senders go on meanwhile;
    /// the outbox comes back with it.
    pub(super) async fn take_all(
        self: &Rc<Self>,
        intake: Vec<Command>,
        outbox: Outbox,
        lanes: &mut Lanes,
    ) -> Outbox {
        let removed = std::mem::take(&mut *self.settled_seqs.borrow_mut());
        let now = now_millis();
        let mut added = Vec::new();
        let mut numbered = Vec::with_capacity(intake.len());
        for command in intake {
            let seq = self.next_seq.get();
            if let Command::Event {
                system_id,
                registration,
                target,
                event,
            } = &command
            {
                self.next_seq.set(seq + 1);
                if self.durable {
                    let stored = Stored {
                        system: system_id.clone(),
                        registration: *registration,
                        target: target.clone(),
                        name: event.name,
                        stored_at: now,
                        event: event.raw().to_owned(),
                    };
                    added.push((seq, serde_json::to_string(&stored).unwrap_or_default()));
                }
            }
            numbered.push((seq, command));
        }
        let added_len = added.len();
        let (outbox, written, removed) = if added.is_empty() && removed.is_empty() {
            (outbox, true, removed)
        } else {
            let (outbox, written) = outbox.commit(added, removed.clone()).await;
            (outbox, written, removed)
        };
        if written {
            self.metrics
                .webhook_events_stored
                .add(added_len as i64 - removed.len() as i64);
        } else {
            // Removals are tried again with the next commit.
            self.settled_seqs.borrow_mut().extend(removed);
        }
        for (seq, command) in numbered {
            if let Command::Event { .. } = command {
                self.unstored.fetch_sub(1, Ordering::AcqRel);
            }
            match command {
                Command::Event {
                    system_id,
                    registration,
                    target,
                    event,
                } if written => {
                    self.stored_at.borrow_mut().insert(seq, now);
                    self.queue(seq, &system_id, registration, target, event, lanes);
                }
                Command::Event {
                    system_id,
                    registration,
                    target,
                    ..
                } => {
                    // Not kept, so not queued: the backend hears of it as `dropped`.
                    let lane = self.lane(lanes, (&system_id, &target), registration);
                    lane.queue.borrow_mut().dropped += 1;
                    self.count_dropped(Some(&target), 1);
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                }
                Command::Retarget {
                    system_id,
                    registration,
                    target,
                } => self.retarget(&system_id, registration, target, lanes),
                // Split off by `take_in_order`.
                Command::Adopt { done, .. } => {
                    let _ = done.send(Err("not adopted".into()));
                }
            }
        }
        outbox
    }

    /// Keeps the oldest pending event's age in its gauge, every second.
    pub(super) async fn report_oldest(self: Rc<Self>) {
        loop {
            let oldest = self.stored_at.borrow().values().min().copied();
            let age = oldest.map_or(0.0, |at| now_millis().saturating_sub(at) as f64 / 1e3);
            self.metrics.webhook_oldest_pending.set(age);
            actix::clock::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}
