//! The connection gate: counts WebSocket connections and refuses those over the limits before
//! the upgrade. Its own module so that sessions (which hold a permit) and the hub (which holds
//! the gate) need not import each other.
//!
//! An away recovery client keeps its permit (its outbox holds it) until it resumes or goes
//! offline: it holds memory like a connected one, so it counts like one. A resume of such a
//! client is the one connection let past a full gate ([`ConnectionGate::admit_resume`]): it
//! gives the away client's place back as it takes it over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Counts WebSocket connections and refuses the ones over the limits, before the upgrade.
pub struct ConnectionGate {
    open: AtomicUsize,
    max_total: usize,
    /// systemId → open connections naming it; only kept when a per-system limit is set.
    per_system: Option<(Mutex<HashMap<String, usize>>, usize)>,
    metrics: Arc<Metrics>,
}

/// Why a connection was refused at the gate.
#[derive(Debug, derive_more::Display)]
pub enum GateRefusal {
    #[display("too many connections: the server holds its maximum of {_0}")]
    Total(usize),
    #[display("too many connections for system '{_0}': the maximum is {_1} per system")]
    System(String, usize),
}

impl ConnectionGate {
    pub fn new(max_total: usize, max_per_system: Option<usize>, metrics: Arc<Metrics>) -> Self {
        ConnectionGate {
            open: AtomicUsize::new(0),
            max_total,
            per_system: max_per_system.map(|limit| (Mutex::new(HashMap::new()), limit)),
            metrics,
        }
    }

    /// Admits one more connection for `system_id`, or says which limit it would pass.
    pub fn admit(
        self: &Arc<Self>,
        system_id: Option<&str>,
    ) -> Result<ConnectionPermit, GateRefusal> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_total {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(GateRefusal::Total(self.max_total));
        }
        let counted_system = match self.count_in_system(system_id, true) {
            Ok(counted) => counted,
            Err(refusal) => {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(refusal);
            }
        };
        Ok(self.permit(counted_system))
    }

    /// Admits the resume of an away client whatever the limits: that client is counted already,
    /// and its place is given back once the resume has taken it over.
    pub fn admit_resume(self: &Arc<Self>, system_id: Option<&str>) -> ConnectionPermit {
        self.open.fetch_add(1, Ordering::AcqRel);
        let counted_system = self.count_in_system(system_id, false).unwrap_or_default();
        self.permit(counted_system)
    }

    /// Counts one more connection of `system_id` where a per-system limit is kept; refused
    /// over that limit when `enforce`. The system counted, if any.
    fn count_in_system(
        &self,
        system_id: Option<&str>,
        enforce: bool,
    ) -> Result<Option<String>, GateRefusal> {
        let (Some((counts, limit)), Some(system_id)) = (&self.per_system, system_id) else {
            return Ok(None);
        };
        let mut counts = counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(system_id.to_owned()).or_insert(0);
        if *count >= *limit && enforce {
            return Err(GateRefusal::System(system_id.to_owned(), *limit));
        }
        *count += 1;
        Ok(Some(system_id.to_owned()))
    }

    fn permit(self: &Arc<Self>, system_id: Option<String>) -> ConnectionPermit {
        self.metrics.connections.inc();
        ConnectionPermit {
            gate: self.clone(),
            system_id,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// One admitted connection; releases its place when dropped.
pub struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    system_id: Option<String>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        self.gate.metrics.connections.dec();
        if let (Some((counts, _)), Some(system_id)) = (&self.gate.per_system, &self.system_id) {
            let mut counts = counts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = counts.get_mut(system_id) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(system_id);
                }
            }
        }
    }
}
