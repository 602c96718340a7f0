//! The delivery thread: one bounded queue and one sender task per system (and one more for a
//! system's MQTT events), on an arbiter of its own. Owns every queue and the [`Outbox`]; the
//! registry only sends `Command`s. An event is queued once the outbox holds it, and leaves the
//! outbox once its batch is acknowledged, given up or dropped. The thread ends when the last [`Webhooks`](super::Webhooks) handle is dropped.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hmac::{KeyInit, Mac};
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use super::outbox::Outbox;
use super::{
    BackendEvent, Command, Destination, EventPublisher, WebhookConfig, BATCH_EVENTS, BATCH_WINDOW,
    FIRST_BACKOFF, MAX_BACKOFF,
};
use crate::metrics::Metrics;
use crate::settings::WebhookSettings;

/// Most commands taken into one outbox commit.
const INTAKE_MAX: usize = 4096;

mod intake;
mod publish;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The body of a delivery.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Batch<'a> {
    system_id: &'a str,
    events: &'a [BackendEvent],
    /// Events lost since the last batch (overflow, or retries given up); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<u64>,
}

/// An event in a queue, with its place in the outbox.
struct Queued {
    seq: u64,
    event: BackendEvent,
}

/// One system's events waiting to be sent.
struct Queue {
    events: VecDeque<Queued>,
    /// What `events` weigh, as they will be sent.
    bytes: usize,
    /// Lost since the last batch that went out.
    dropped: u64,
    /// Where they go now; a webhook that is removed keeps its last target until the queue is
    /// sent.
    target: Option<Destination>,
    /// The registration (`registeredAt`) the events belong to.
    registration: u64,
    /// A later registration of the same id took over the system's lane: this one's sender ends
    /// once what is queued is sent.
    retired: bool,
}

/// What every sender shares.
struct Shared {
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    /// The MQTT bridge, for the events that go to the broker.
    mqtt: Option<Arc<dyn EventPublisher>>,
    /// See [`super::Webhooks::pending`]: decreased here as events are delivered, given up or
    /// dropped.
    pending: Arc<AtomicUsize>,
    /// See [`super::Webhooks::unstored`]: decreased here once an event is in the outbox (or
    /// dropped because it could not be written).
    unstored: Arc<AtomicUsize>,
    /// Whether the outbox is on disk (else nothing is written or removed).
    durable: bool,
    /// Outbox entries to remove with the next commit (acknowledged, given up or dropped), and
    /// the wake-up of the intake when there are some.
    settled_seqs: RefCell<Vec<u64>>,
    settled_wake: Notify,
    /// The next event's sequence number.
    next_seq: Cell<u64>,
    /// Sequence number → Unix milliseconds stored, of every event not yet settled: the oldest
    /// pending age.
    stored_at: RefCell<BTreeMap<u64, u64>>,
}

/// Every system's queues: one for its webhook, one for its events for the MQTT broker.
#[derive(Default)]
struct Lanes {
    webhook: HashMap<String, Lane>,
    mqtt: HashMap<String, Lane>,
}

impl Lanes {
    fn of(&mut self, mqtt: bool) -> &mut HashMap<String, Lane> {
        if mqtt {
            &mut self.mqtt
        } else {
            &mut self.webhook
        }
    }
}

/// A system's queue and the wake-up of its sender.
#[derive(Clone)]
struct Lane {
    queue: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
}

/// The counters the handle reads: events not yet settled, and not yet in the outbox.
pub(super) struct Counters {
    pub(super) pending: Arc<AtomicUsize>,
    pub(super) unstored: Arc<AtomicUsize>,
}

pub(super) fn start(
    config: WebhookConfig,
    (metrics, mqtt): (Arc<Metrics>, Option<Arc<dyn EventPublisher>>),
    counters: Counters,
    mut outbox: Outbox,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let arbiter = actix::Arbiter::new();
    let spawned = arbiter.spawn_fn(move || {
        actix::spawn(async move {
            let mut shared = Shared::new(config, metrics, counters, outbox.is_durable());
            shared.mqtt = mqtt;
            let shared = Rc::new(shared);
            let mut lanes = Lanes::default();
            shared.restore(&outbox, &mut lanes);
            actix::spawn(shared.clone().report_oldest());
            let mut open = true;
            while open {
                let mut intake = Vec::new();
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(command) => intake.push(command),
                        None => open = false,
                    },
                    () = shared.settled_wake.notified() => {}
                }
                // What arrived during the last commit goes into this one.
                while intake.len() < INTAKE_MAX {
                    match commands.try_recv() {
                        Ok(command) => intake.push(command),
                        Err(_) => break,
                    }
                }
                outbox = shared.take_in_order(intake, outbox, &mut lanes).await;
            }
            actix::Arbiter::current().stop();
        });
    });
    if !spawned {
        log::error!("the webhook delivery thread did not start: webhooks will not be sent");
    }
}

impl Shared {
    fn new(
        config: WebhookConfig,
        metrics: Arc<Metrics>,
        counters: Counters,
        durable: bool,
    ) -> Shared {
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wshub/", env!("CARGO_PKG_VERSION")));
        if config.deny_private {
            http = http.dns_resolver(Arc::new(super::guard::PublicOnly));
        }
        let http = http.build().unwrap_or_else(|err| {
            log::error!("webhook HTTP client: {err}; using the defaults");
            reqwest::Client::new()
        });
        Shared {
            config,
            metrics,
            http,
            mqtt: None,
            pending: counters.pending,
            unstored: counters.unstored,
            durable,
            settled_seqs: RefCell::new(Vec::new()),
            settled_wake: Notify::new(),
            next_seq: Cell::new(1),
            stored_at: RefCell::new(BTreeMap::new()),
        }
    }

    /// These events left the pipeline (delivered, given up or dropped): out of the outbox with
    /// the next commit.
    fn settled(&self, seqs: impl IntoIterator<Item = u64>) {
        let mut count = 0;
        let mut stored_at = self.stored_at.borrow_mut();
        let mut settled = self.settled_seqs.borrow_mut();
        for seq in seqs {
            count += 1;
            stored_at.remove(&seq);
            if self.durable {
                settled.push(seq);
            }
        }
        self.pending.fetch_sub(count, Ordering::AcqRel);
        if !settled.is_empty() {
            self.settled_wake.notify_one();
        }
    }

    /// The lane of `system_id`'s registration `registration` for `target`'s kind: a new one
    /// (with its sender) when there is none or the one there belongs to an earlier
    /// registration, which is retired.
    fn lane(
        self: &Rc<Self>,
        lanes: &mut Lanes,
        (system_id, target): (&str, &Destination),
        registration: u64,
    ) -> Lane {
        let lanes = lanes.of(target.is_mqtt());
        let mut stale = false;
        if let Some(lane) = lanes.get(system_id) {
            let current = lane.queue.borrow().registration;
            if current == registration {
                return lane.clone();
            }
            // An event of an earlier registration that arrives late gets a lane of its own.
            stale = registration < current;
            if !stale {
                lane.queue.borrow_mut().retired = true;
                lane.wake.notify_one();
            }
        }
        let lane = Lane {
            queue: Rc::new(RefCell::new(Queue {
                events: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                target: None,
                registration,
                retired: stale,
            })),
            wake: Rc::new(Notify::new()),
        };
        actix::spawn(self.clone().send_loop(system_id.to_owned(), lane.clone()));
        if !stale {
            lanes.insert(system_id.to_owned(), lane.clone());
        }
        lane
    }

    /// Counts `n` events lost on their way to `target` (`dropped` in a webhook's next batch).
    fn count_dropped(&self, target: Option<&Destination>, n: u64) {
        match target {
            Some(Destination::Mqtt { .. }) => self
                .metrics
                .mqtt_dropped
                .with_label_values(&["out"])
                .inc_by(n),
            _ => self.metrics.webhook_events_dropped.inc_by(n),
        }
    }

    /// Queues event `seq` of `system_id`'s registration `registration` for `target` (its
    /// webhook, which is that now, or the broker), within the queue's bounds.
    fn queue(
        self: &Rc<Self>,
        seq: u64,
        system_id: &str,
        registration: u64,
        target: Destination,
        event: BackendEvent,
        lanes: &mut Lanes,
    ) {
        let lane = self.lane(lanes, (system_id, &target), registration);
        let mut queue = lane.queue.borrow_mut();
        queue.target = Some(target);
        let (max_events, max_bytes) = (self.config.queue, self.config.queue_bytes);
        // The oldest not yet in flight go first; the backend learns how many.
        while !queue.events.is_empty()
            && (queue.events.len() >= max_events || queue.bytes + event.bytes() > max_bytes)
        {
            if let Some(old) = queue.events.pop_front() {
                queue.bytes -= old.event.bytes();
                self.settled([old.seq]);
            }
            queue.dropped += 1;
            self.count_dropped(queue.target.as_ref(), 1);
            self.metrics.webhook_queue_depth.dec();
        }
        if event.bytes() > max_bytes {
            // Alone past the bound: it is not kept either.
            queue.dropped += 1;
            self.count_dropped(queue.target.as_ref(), 1);
            self.settled([seq]);
            return;
        }
        self.metrics.webhook_queue_depth.inc();
        queue.bytes += event.bytes();
        queue.events.push_back(Queued { seq, event });
        lane.wake.notify_one();
    }

    fn retarget(&self, system_id: &str, registration: u64, target: WebhookSettings, lanes: &Lanes) {
        if let Some(lane) = lanes.webhook.get(system_id) {
            let mut queue = lane.queue.borrow_mut();
            if queue.registration == registration {
                queue.target = Some(Destination::Webhook(target));
                lane.wake.notify_one();
            }
        }
    }

    /// Sends one system's batches, in order, one at a time; idles (a parked future) while there
    /// is nothing to send. A retired lane's sender ends once its queue is empty.
    async fn send_loop(self: Rc<Self>, system_id: String, lane: Lane) {
        loop {
            let (waiting, retired) = {
                let queue = lane.queue.borrow();
                (queue.events.len(), queue.retired)
            };
            if waiting == 0 {
                if retired {
                    return;
                }
                lane.wake.notified().await;
                continue;
            }
            if waiting < BATCH_EVENTS {
                actix::clock::sleep(BATCH_WINDOW).await;
            }
            let (seqs, events, dropped) = {
                let mut queue = lane.queue.borrow_mut();
                let n = queue.events.len().min(BATCH_EVENTS);
                let (seqs, events): (Vec<u64>, Vec<BackendEvent>) = queue
                    .events
                    .drain(..n)
                    .map(|queued| (queued.seq, queued.event))
                    .unzip();
                queue.bytes -= events.iter().map(BackendEvent::bytes).sum::<usize>();
                (seqs, events, std::mem::take(&mut queue.dropped))
            };
            self.metrics.webhook_queue_depth.sub(events.len() as i64);
            let target = lane.queue.borrow().target.clone();
            let delivered = match target {
                Some(Destination::Mqtt { .. }) => self.publish(&system_id, &events).await,
                _ => {
                    let body = serde_json::to_string(&Batch {
                        system_id: &system_id,
                        events: &events,
                        dropped: (dropped > 0).then_some(dropped),
                    })
                    .unwrap_or_default();
                    self.deliver(&system_id, &lane, &body).await
                }
            };
            if !delivered {
                // Given up, or the webhook is gone: the next batch says how many were lost.
                lane.queue.borrow_mut().dropped += dropped + events.len() as u64;
                self.count_dropped(target.as_ref(), events.len() as u64);
            }
            self.settled(seqs);
        }
    }

    /// Posts one batch until a 2xx, retrying with backoff for `--webhook-retry-for`. False if it
    /// was given up (or the webhook went away meanwhile).
    async fn deliver(&self, system_id: &str, lane: &Lane, body: &str) -> bool {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Some(Destination::Webhook(target)) = lane.queue.borrow().target.clone() else {
                return false;
            };
            let outcome = self.post(&target, body).await;
            self.metrics
                .webhook_requests
                .with_label_values(&[outcome.label()])
                .inc();
            if outcome == Outcome::Ok {
                return true;
            }
            if started.elapsed() + backoff > self.config.retry_for {
                log::warn!(
                    "webhook of system '{system_id}' at {} failed ({}) for {:?}: batch dropped",
                    target.url,
                    outcome.label(),
                    started.elapsed()
                );
                return false;
            }
            log::debug!(
                "webhook of system '{system_id}' failed ({}); retrying in {backoff:?}",
                outcome.label()
            );
            self.metrics.webhook_retries.inc();
            actix::clock::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn post(&self, target: &WebhookSettings, body: &str) -> Outcome {
        // The resolver checks the addresses of a host name; an IP literal is never resolved, so
        // it is checked here, on every delivery (a URL stored before the flag was on, too).
        if self.config.deny_private && super::guard::is_private_literal(&target.url) {
            return Outcome::Unreachable;
        }
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let request = self
            .http
            .post(&target.url)
            .header("Content-Type", "application/json")
            .header("X-Wshub-Timestamp", &timestamp)
            .header(
                "X-Wshub-Signature",
                format!("sha256={}", sign(&target.secret, &timestamp, body)),
            )
            .body(body.to_owned());
        match request.send().await {
            Ok(response) if response.status().is_success() => Outcome::Ok,
            Ok(_) => Outcome::Refused,
            Err(err) if err.is_timeout() => Outcome::Timeout,
            Err(_) => Outcome::Unreachable,
        }
    }
}

/// How one request ended; the `result` label of `wshub_webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// An answer other than 2xx.
    Refused,
    Timeout,
    /// No answer: connection refused, DNS, TLS, or an address `--webhook-deny-private` refused.
    Unreachable,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body_in_lowercase_hex() {
        // As Python computes it: hmac.new(secret, b"1700000000." + body, hashlib.sha256).
        assert_eq!(
            sign(
                "0123456789abcdef",
                "1700000000",
                r#"{"systemId":"s","events":[]}"#
            ),
            "d947843a616bb260279c574fdc71e12975ee989bb90ed75aa6bda8d282d14306"
        );
    }
}
