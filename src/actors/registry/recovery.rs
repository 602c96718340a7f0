//! Connection state recovery in the registry: admitting a client (plain, recoverable, or
//! resuming), keeping a client whose connection was lost, and ending its absence.
//!
//! A recovery client's lost connection *parks* it: it stays in the tenant, in its groups and in
//! every count, and its outbox goes on queuing (see [`crate::actors::outbox`]). Nothing is told
//! to anyone. A resume within `--recovery-window` hands the client to the new session: the
//! frames it missed go out after the welcome, its groups deliver to the new session, and an old
//! connection still open is closed with 4009. When the window ends first, or its kept frames
//! pass `--recovery-buffer`, the client goes offline then, with the 1002 notices and
//! `client_offline` (`recovery_expired`) it was spared.

use std::time::Duration;

use actix::{AsyncContext, Context, Handler};

use super::SystemRegistry;
use crate::actors::away::TrimAway;
use crate::actors::events::Event;
use crate::actors::messages::{Connect, HoldsResumable, RecoveryRequest, Rejoin};
use crate::actors::outbox::SessionHandle;
use crate::actors::outward::{BackendEvent, Offline, OfflineReason};
use crate::actors::tenant::Resumed;
use crate::protocol::{self, CloseReason, RecoveryWelcome, ResumeRefusal};
use crate::settings::now_millis;
use crate::settings::EventName;

impl SystemRegistry {
    /// Admits a client the registry accepted into `system_id`: a plain one, a recoverable one,
    /// or one that resumes (and, failing that, gets a fresh recoverable session saying why).
    pub(super) fn accept(&mut self, system_id: String, msg: Connect) {
        let Connect {
            client_id,
            user_id,
            session,
            recovery,
            ..
        } = msg;
        let (resumed, past_limits) = match recovery {
            RecoveryRequest::None => {
                return self.add_client(&system_id, client_id, session, user_id, None)
            }
            RecoveryRequest::Fresh => {
                return self.add_client(&system_id, client_id, session, user_id, Some(None))
            }
            RecoveryRequest::Failed(why) => (Err(why), false),
            RecoveryRequest::Resume {
                token,
                last,
                past_limits,
            } => {
                let ids = (system_id.as_str(), client_id.as_str(), user_id.as_deref());
                let resumed = self.resume(ids, &session, &token, last.as_deref());
                (resumed, past_limits)
            }
        };
        let result = resumed.map_or_else(ResumeRefusal::label, |()| "recovered");
        self.metrics.resumes.with_label_values(&[result]).inc();
        let Err(why) = resumed else { return };
        if past_limits {
            // Let past a full gate for a client that was away: a fresh client would be over the
            // limits. Refused with "try again later", as the gate would.
            self.emit(|| Event::Gone {
                system_id: system_id.clone(),
                client_id: client_id.clone(),
                groups: Vec::new(),
                notice: None,
            });
            self.close(&session, CloseReason::TryAgain, "too many connections");
            return;
        }
        self.add_client(&system_id, client_id, session, user_id, Some(Some(why)));
    }

    /// Whether `token` resumes a client of `system_id` held here (see [`HoldsResumable`]).
    pub(super) fn holds_resumable(&self, system_id: &str, token: &str) -> bool {
        match self.book.lookup(token) {
            Ok(resumable) => {
                resumable.system_id == system_id
                    && self.find_client(system_id, &resumable.client_id).is_some()
            }
            Err(_) => false,
        }
    }

    /// A new client: its welcome (with a resume token, and why a resume failed, if it asked
    /// for recovery), then it joins the tenant.
    fn add_client(
        &mut self,
        system_id: &str,
        client_id: String,
        session: SessionHandle,
        user_id: Option<String>,
        recovery: Option<Option<ResumeRefusal>>,
    ) {
        let welcome = recovery.map(|reason| RecoveryWelcome {
            resume_token: self.book.issue(system_id, &client_id, user_id.as_deref()),
            recovered: false,
            missed: None,
            reason,
        });
        // Pushed before any other frame can be addressed to this client: the welcome is first.
        session.push(&protocol::welcome_frame(&client_id, welcome.as_ref()));
        let Some(tenant) = self.systems.get_mut(system_id) else {
            return;
        };
        let changes = tenant.connect(
            client_id.clone(),
            session,
            user_id.unwrap_or_default(),
            now_millis(),
            welcome.map(|w| w.resume_token),
        );
        self.hook(system_id, EventName::ClientOnline, || {
            BackendEvent::client_online(&client_id)
        });
        self.presence_changed(system_id, changes);
    }

    /// Hands the client `token` names to `session`, whose client token fixed `user_id`. On
    /// failure nothing of `session` is used.
    fn resume(
        &mut self,
        (system_id, fresh_id, user_id): (&str, &str, Option<&str>),
        session: &SessionHandle,
        token: &str,
        last: Option<&str>,
    ) -> Result<(), ResumeRefusal> {
        let resumable = self.book.lookup(token)?.clone();
        // Another system's token, or another user's connection, is not this client's to use;
        // its own client is left alone.
        if resumable.system_id != system_id || resumable.token_user.as_deref() != user_id {
            return Err(ResumeRefusal::InvalidToken);
        }
        let client_id = resumable.client_id;
        self.book.forget(token);
        let old = match self.systems.get(system_id).map(|t| t.client(&client_id)) {
            Some(Ok(client)) => client.session.clone(),
            _ => return Err(ResumeRefusal::InvalidToken),
        };
        let Ok(handed) = old.hand_over(last, session) else {
            // It can never be resumed now: it goes offline, and a connection still open ends.
            let offline = Offline::new(OfflineReason::RecoveryExpired, None);
            if let Some(old) = self.remove_client(system_id, &client_id, offline) {
                self.close(&old, CloseReason::ResumedElsewhere, "resumed elsewhere");
            }
            return Err(ResumeRefusal::LastNotHeld);
        };
        let new_token = self.book.issue(system_id, &client_id, user_id);
        let Some(Resumed {
            old,
            was_away,
            fan_outs,
            changes,
        }) = self
            .systems
            .get_mut(system_id)
            .and_then(|tenant| tenant.resume(&client_id, session.clone(), new_token.clone()))
        else {
            return Err(ResumeRefusal::InvalidToken);
        };
        for group in fan_outs {
            group.do_send(Rejoin {
                client_id: client_id.clone(),
                session: session.clone(),
            });
        }
        session.adopt(&client_id);
        if !was_away {
            // A half-open connection the server had not noticed yet.
            self.close(&old, CloseReason::ResumedElsewhere, "resumed elsewhere");
        }
        let welcome = RecoveryWelcome {
            resume_token: new_token,
            recovered: true,
            missed: Some(handed.missed()),
            reason: None,
        };
        session.push(&protocol::welcome_frame(&client_id, Some(&welcome)));
        session.take_over(handed);
        // The id the handshake made for this connection is not used (a cluster wrote it down).
        self.emit(|| Event::Gone {
            system_id: system_id.to_owned(),
            client_id: fresh_id.to_owned(),
            groups: Vec::new(),
            notice: None,
        });
        self.presence_changed(system_id, changes);
        Ok(())
    }

    /// A recovery client lost its connection: it stays, and its window begins.
    pub(super) fn park(
        &mut self,
        ctx: &mut Context<Self>,
        system_id: &str,
        client_id: &str,
        window: Duration,
    ) {
        let absence = self.book.next_absence();
        let Some(tenant) = self.systems.get_mut(system_id) else {
            return;
        };
        let Some(changes) = tenant.park(client_id, absence) else {
            return;
        };
        if let Ok(client) = tenant.client(client_id) {
            client.session.park(self.away.clone());
        }
        self.presence_changed(system_id, changes);
        let (system_id, client_id) = (system_id.to_owned(), client_id.to_owned());
        self.away_order
            .insert(absence, (system_id.clone(), client_id.clone()));
        ctx.run_later(window, move |registry, _| {
            registry.away_order.remove(&absence);
            if registry.is_away_as(&system_id, &client_id, absence) {
                registry.end_absence(&system_id, &client_id, ResumeRefusal::Expired);
            }
        });
    }

    /// Whether `client_id` is still away in absence number `absence`.
    fn is_away_as(&self, system_id: &str, client_id: &str, absence: u64) -> bool {
        self.find_client(system_id, client_id)
            .is_some_and(|client| client.away == Some(absence))
    }

    /// Away clients hold more than `--recovery-away-bytes` together: those away longest go
    /// offline until the rest fit.
    pub(super) fn trim_away(&mut self) {
        while self.away.is_over() {
            let Some((absence, (system_id, client_id))) = self.away_order.pop_first() else {
                break;
            };
            if self.is_away_as(&system_id, &client_id, absence) {
                log::info!(
                    "client {client_id} of system '{system_id}' went offline: away clients held \
                     more than --recovery-away-bytes"
                );
                self.end_absence(&system_id, &client_id, ResumeRefusal::BoundPassed);
            }
        }
        self.away.trimmed();
    }

    /// An away client will not come back: it goes offline now, and a late resume hears `why`.
    pub(super) fn end_absence(&mut self, system_id: &str, client_id: &str, why: ResumeRefusal) {
        let token = self
            .find_client(system_id, client_id)
            .and_then(|client| client.resume_token.clone());
        let offline = Offline::new(OfflineReason::RecoveryExpired, None);
        if self.remove_client(system_id, client_id, offline).is_none() {
            return;
        }
        if let Some(token) = token {
            let keep = self.settings.recovery.window;
            self.book.remember(token, why, keep);
        }
    }

    /// Whether `client_id` is away (its connection lost, its window open).
    pub(super) fn is_away(&self, system_id: &str, client_id: &str) -> bool {
        self.find_client(system_id, client_id)
            .is_some_and(|client| client.away.is_some())
    }
}

impl Handler<HoldsResumable> for SystemRegistry {
    type Result = bool;
    fn handle(&mut self, msg: HoldsResumable, _: &mut Context<Self>) -> bool {
        self.holds_resumable(&msg.system_id, &msg.token)
    }
}

impl Handler<TrimAway> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, _: TrimAway, _: &mut Context<Self>) {
        self.trim_away();
    }
}
