//! Users' presence across nodes: the registry's presence [`Change`]s decided in Redis, once for
//! the whole cluster.
//!
//! Each scope of a user (the system, or a group) is a set of the clientIds that count there
//! (`present:{system}:{field}`), so writing a change twice (a resync) changes nothing. The node
//! whose write adds a set's first member announces the arrival; the one whose write empties it
//! leaves a *pending departure* in `presence-due`, scored by the end of its grace, and in
//! `leaving:{system}` so that a connection coming back cancels it. Every node looks for due
//! departures; the one whose claim removes it announces it, so a departure is announced once
//! even when the node that made it is gone. A dead node's connections are in
//! `node-presence:{node}`: the purge takes them out like closes (`node_lost`).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::node::Cluster;
use super::scripts::{PRESENCE_CLAIM, PRESENCE_DOWN, PRESENCE_UP};
use crate::actors::messages as m;
use crate::actors::messages::Audience;
use crate::actors::outward::OfflineReason;
use crate::actors::presence::{Change, Scope};
use crate::error::ApiError;
use crate::protocol;
use crate::settings::{now_millis, PresenceMode};

/// How often each node looks for departures whose grace ended.
const DEPARTURES_EVERY: Duration = Duration::from_millis(250);
/// Departures claimed per look.
const DEPARTURES_PER_LOOK: isize = 200;

/// A scope of a user, as a field name (names hold no control characters).
fn field(scope: &Scope, user_id: &str) -> String {
    match scope {
        Scope::System => format!("u\n{user_id}"),
        Scope::Group(group) => format!("g\n{group}\n{user_id}"),
    }
}

/// The scope and user a field names.
fn parse_field(field: &str) -> Option<(Scope, String)> {
    match field.split_once('\n')? {
        ("u", user) => Some((Scope::System, user.to_owned())),
        ("g", rest) => {
            let (group, user) = rest.split_once('\n')?;
            Some((Scope::Group(group.to_owned()), user.to_owned()))
        }
        _ => None,
    }
}

/// A departure in its grace, as stored: unique (`id`), whole (what announcing it needs).
#[derive(Serialize, Deserialize)]
struct Pending {
    id: String,
    system: String,
    change: Change,
}

impl Cluster {
    /// Applies presence changes of this node's clients, announcing the arrivals they make.
    /// `rewrite`: a resync writing them again, which announces nothing.
    pub(super) async fn write_presence(
        &self,
        system: &str,
        changes: Vec<Change>,
        rewrite: bool,
    ) -> Result<(), ApiError> {
        let mut conn = self.conn();
        if rewrite {
            let mut pipe = redis::pipe();
            for change in &changes {
                let field = field(&change.scope, &change.user_id);
                pipe.sadd(self.keys.present(system, &field), &change.client_id)
                    .ignore()
                    .sadd(
                        self.keys.node_presence(&self.node_id),
                        format!("{system}\n{}\n{field}", change.client_id),
                    )
                    .ignore();
            }
            return self.track(pipe.query_async(&mut conn).await);
        }
        for change in changes {
            if change.arrived {
                let field = field(&change.scope, &change.user_id);
                let first: i64 = self.track(
                    PRESENCE_UP
                        .key(self.keys.present(system, &field))
                        .key(self.keys.leaving(system))
                        .key(self.keys.presence_due())
                        .key(self.keys.node_presence(&self.node_id))
                        .arg(&change.client_id)
                        .arg(&field)
                        .arg(format!("{system}\n{}\n{field}", change.client_id))
                        .invoke_async(&mut conn)
                        .await,
                )?;
                if first == 1 {
                    self.announce(system, &change).await?;
                }
            } else {
                self.depart(system, change, &self.node_id).await?;
            }
        }
        Ok(())
    }

    /// A connection of `node` stopped counting: if it was its user's last in the scope, the
    /// departure waits out the grace in Redis.
    async fn depart(&self, system: &str, change: Change, node: &str) -> Result<(), ApiError> {
        let field = field(&change.scope, &change.user_id);
        let announced = match &change.scope {
            Scope::System => true,
            Scope::Group(_) => self.presence_mode(system) == PresenceMode::User,
        };
        let client_id = change.client_id.clone();
        let entry = format!("{system}\n{client_id}\n{field}");
        let pending = serde_json::to_string(&Pending {
            id: protocol::new_id(),
            system: system.to_owned(),
            change,
        })
        .unwrap_or_default();
        let deadline = now_millis() + self.presence_grace.as_millis() as u64;
        let _: i64 = self.track(
            PRESENCE_DOWN
                .key(self.keys.present(system, &field))
                .key(self.keys.leaving(system))
                .key(self.keys.presence_due())
                .key(self.keys.node_presence(node))
                .arg(&client_id)
                .arg(&field)
                .arg(&entry)
                .arg(&pending)
                .arg(deadline)
                .arg(u8::from(announced))
                .invoke_async(&mut self.conn())
                .await,
        )?;
        Ok(())
    }

    pub(super) fn presence_mode(&self, system: &str) -> PresenceMode {
        Self::lock(&self.known_systems)
            .get(system)
            .map_or(PresenceMode::Client, |settings| settings.presence)
    }

    /// Announces that a user arrived in, or left, a scope, for the whole cluster:
    /// `user_online` / `user_offline`, or under presence "user" the 1001 / 1002 to the group's
    /// members on every node.
    async fn announce(&self, system: &str, change: &Change) -> Result<(), ApiError> {
        match &change.scope {
            Scope::System => {
                let (name, event) = change.event();
                self.hook(system, name, event);
            }
            Scope::Group(group) if self.presence_mode(system) == PresenceMode::User => {
                let frame = change.notice();
                self.registry.do_send(m::Deliver {
                    system_id: system.to_owned(),
                    audience: Audience::Group(group.clone()),
                    frame: frame.clone(),
                });
                self.publish(system, Some(group.clone()), &frame).await?;
            }
            Scope::Group(_) => {}
        }
        Ok(())
    }

    /// Looks for departures whose grace ended, claims each, and announces those it claimed.
    pub(super) async fn departures_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(DEPARTURES_EVERY).await;
            if self.ready_epoch().is_some() {
                if let Err(err) = self.claim_departures().await {
                    log::debug!("presence departures: {err}");
                }
            }
        }
    }

    async fn claim_departures(&self) -> Result<(), ApiError> {
        let mut conn = self.conn();
        let due: Vec<String> = self.track(
            conn.zrangebyscore_limit(
                self.keys.presence_due(),
                "-inf",
                now_millis(),
                0,
                DEPARTURES_PER_LOOK,
            )
            .await,
        )?;
        for member in due {
            let Ok(pending) = serde_json::from_str::<Pending>(&member) else {
                let _: i64 = self.track(conn.zrem(self.keys.presence_due(), &member).await)?;
                continue;
            };
            let field = field(&pending.change.scope, &pending.change.user_id);
            let claimed: i64 = self.track(
                PRESENCE_CLAIM
                    .key(self.keys.presence_due())
                    .key(self.keys.leaving(&pending.system))
                    .arg(&member)
                    .arg(&field)
                    .invoke_async(&mut conn)
                    .await,
            )?;
            if claimed == 1 {
                // Known here, so the event reaches the system's webhook and MQTT settings.
                let _ = self.ensure_system(&pending.system).await;
                self.announce(&pending.system, &pending.change).await?;
            }
        }
        Ok(())
    }

    /// Takes this node's connections out of every presence set, announcing nothing: before a
    /// resync writes them again, so that a close whose write was lost (Redis down) does not
    /// leave its connection counted for ever.
    pub(super) async fn forget_own_presence(&self) -> Result<(), ApiError> {
        let mut conn = self.conn();
        let own = self.keys.node_presence(&self.node_id);
        let entries: Vec<String> = self.track(conn.smembers(&own).await)?;
        let mut pipe = redis::pipe();
        for entry in &entries {
            let mut parts = entry.splitn(3, '\n');
            if let (Some(system), Some(client), Some(field)) =
                (parts.next(), parts.next(), parts.next())
            {
                pipe.srem(self.keys.present(system, field), client).ignore();
            }
        }
        pipe.del(&own).ignore();
        self.track(pipe.query_async(&mut conn).await)
    }

    /// Takes a dead node's connections out of their users' presence, as if closed
    /// (`node_lost`); their departures are announced after the grace. Called by the purge,
    /// before the node's memberships are removed (a group's notice reads its extend there).
    pub(super) async fn purge_presence(&self, node: &str) -> Result<(), ApiError> {
        let mut conn = self.conn();
        let entries: Vec<String> =
            self.track(conn.smembers(self.keys.node_presence(node)).await)?;
        for entry in entries {
            let mut parts = entry.splitn(3, '\n');
            let (Some(system), Some(client), Some(field)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some((scope, user_id)) = parse_field(field) else {
                continue;
            };
            let _ = self.ensure_system(system).await;
            let extend = match &scope {
                Scope::Group(group) => {
                    let info: Option<String> =
                        self.track(conn.hget(self.keys.members(system, group), client).await)?;
                    info.and_then(|info| {
                        serde_json::from_str::<super::keys::MemberInfo>(&info).ok()
                    })
                    .map(|info| info.extend)
                    .unwrap_or_default()
                }
                Scope::System => String::new(),
            };
            let change = Change {
                scope,
                user_id,
                client_id: client.to_owned(),
                extend,
                arrived: false,
                reason: Some(OfflineReason::NodeLost),
            };
            self.depart(system, change, node).await?;
        }
        let _: i64 = self.track(conn.del(self.keys.node_presence(node)).await)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_names_its_scope_and_user() {
        for scope in [Scope::System, Scope::Group("room 1".into())] {
            let named = field(&scope, "ann:x");
            assert_eq!(parse_field(&named), Some((scope, "ann:x".to_owned())));
        }
        assert_eq!(parse_field("x\nann"), None);
    }
}
