//! [`Hub`]: the handle to a running wshub core that the HTTP layer (or a host application)
//! holds: the registry's address, the settings, the token verifier, the metrics and the
//! connection gate ([`crate::gate`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::channel::{self, AddressReceiver};
use actix::{Addr, Context};
use bytestring::ByteString;

use crate::actors::messages as m;
use crate::actors::messages::Shutdown;
use crate::actors::registry::{RegistrySettings, SystemRegistry};
use crate::actors::session::Heartbeat;
use crate::auth::{self, Authenticator};
use crate::cluster::{Cluster, EventSink};
use crate::config::{ApiAuth, ClientAuth, Config, Limits};
use crate::error::ApiError;
use crate::gate::ConnectionGate;
use crate::metrics::Metrics;
use crate::protocol::{ClientInfo, OnlineList};

/// The settings the request path reads, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub heartbeat: Heartbeat,
    pub max_frame_size: usize,
    pub max_body_size: usize,
    pub limits: Limits,
    pub client_auth: ClientAuth,
    pub shutdown_grace: Duration,
    /// Origins allowed in browser requests; see [`Config::allowed_origins`].
    pub allowed_origins: Vec<String>,
    /// See [`Config::allowed_hosts`].
    pub allowed_hosts: Vec<String>,
}

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Hub {
    /// The registry actor. It lives as long as any `Hub` clone or session holds its address.
    pub registry: Addr<SystemRegistry>,
    pub settings: Arc<Settings>,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub gate: Arc<ConnectionGate>,
    /// Set once shutdown has begun: REST answers 503 and `/healthz` reports it.
    shutting_down: Arc<AtomicBool>,
    /// An admin token, when no secret was configured and one was generated at start.
    generated_admin_token: Option<Arc<str>>,
    /// Cluster mode: the link to the other nodes through Redis.
    pub cluster: Option<Arc<Cluster>>,
}

impl Hub {
    /// Starts the registry on the current actix arbiter. Must be called inside a running actix
    /// system (`#[actix_web::main]`, `#[actix_web::test]`, or a host app's runtime).
    pub fn start(config: &Config) -> Hub {
        let (hub, starter) = Hub::deferred(config, None);
        starter.start_here();
        hub
    }

    /// A hub whose registry is not running yet: messages to it wait until
    /// [`RegistryStarter::start_here`] runs it on the calling thread's arbiter. The standalone
    /// server starts it in an HTTP worker, so that with one worker (one CPU) the registry, the
    /// groups, the sessions and the handlers share a thread and a REST call never crosses threads.
    /// `cluster_events`: in cluster mode, where the registry reports changes to local clients.
    pub fn deferred(config: &Config, cluster_events: Option<EventSink>) -> (Hub, RegistryStarter) {
        let (secret, generated_admin_token) = match &config.jwt_secret {
            Some(secret) => (secret.clone(), None),
            None => {
                let secret = auth::random_secret();
                let token = (config.api_auth == ApiAuth::Jwt).then(|| {
                    Arc::from(auth::mint_with_secret(
                        secret.as_bytes(),
                        None,
                        auth::STARTUP_TOKEN_TTL,
                    ))
                });
                (secret, token)
            }
        };
        let metrics = Arc::new(Metrics::new());
        let registry = SystemRegistry::new(
            RegistrySettings {
                max_groups_per_client: config.limits.max_groups_per_client,
                max_clients_per_group: config.limits.max_clients_per_group,
                slow_close_grace: config.slow_close_grace,
                cluster: cluster_events,
            },
            metrics.clone(),
        );
        let (sender, receiver) = channel::channel(REGISTRY_MAILBOX);
        let hub = Hub {
            registry: Addr::new(sender),
            settings: Arc::new(Settings {
                heartbeat: Heartbeat {
                    ping_interval: config.ping_interval,
                    client_timeout: config.client_timeout,
                },
                max_frame_size: config.max_frame_size,
                max_body_size: config.max_body_size,
                limits: config.limits.clone(),
                client_auth: config.client_auth,
                shutdown_grace: config.shutdown_grace,
                allowed_origins: config.allowed_origins.clone(),
                allowed_hosts: config.allowed_hosts.clone(),
            }),
            auth: Arc::new(Authenticator::new(config.api_auth, secret.as_bytes())),
            gate: Arc::new(ConnectionGate::new(
                config.limits.max_connections,
                config.limits.max_connections_per_system,
                metrics.clone(),
            )),
            metrics,
            shutting_down: Arc::new(AtomicBool::new(false)),
            generated_admin_token,
            cluster: None,
        };
        (hub, RegistryStarter { receiver, registry })
    }

    /// The admin token made at start when no secret was configured (valid 24 h).
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Starts shutting down: REST answers 503 from now on, new connections are refused and
    /// every client is sent close 1001. Returns how many clients were told.
    pub async fn shut_down_clients(&self) -> usize {
        self.shutting_down.store(true, Ordering::Relaxed);
        self.registry.send(Shutdown).await.unwrap_or(0)
    }
}

/// The REST operations, answered by this node's registry or, in cluster mode, by the cluster.
impl Hub {
    /// A new clientId: in cluster mode it starts with this node's id, so every node knows
    /// where the client lives.
    pub fn new_client_id(&self) -> String {
        match &self.cluster {
            Some(cluster) => format!("{}{}", cluster.node_id(), crate::protocol::new_id()),
            None => crate::protocol::new_id(),
        }
    }

    pub async fn register(&self, system_id: String) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.register(&system_id).await,
            None => Ok(self.registry.send(m::Register { system_id }).await??),
        }
    }

    pub async fn send_to_client(
        &self,
        system_id: String,
        client_id: String,
        frame: ByteString,
    ) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.send_to_client(&system_id, client_id, frame).await,
            None => Ok(self
                .registry
                .send(m::SendToClient {
                    system_id,
                    client_id,
                    frame,
                })
                .await??),
        }
    }

    pub async fn send_to_clients(
        &self,
        system_id: String,
        client_ids: Vec<String>,
        frame: ByteString,
    ) -> Result<Vec<String>, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.send_to_clients(&system_id, client_ids, frame).await,
            None => Ok(self
                .registry
                .send(m::SendToClients {
                    system_id,
                    client_ids,
                    frame,
                })
                .await??),
        }
    }

    pub async fn send_to_group(
        &self,
        system_id: String,
        group_name: String,
        frame: ByteString,
    ) -> Result<usize, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.send_to_group(&system_id, group_name, frame).await,
            None => Ok(self
                .registry
                .send(m::SendToGroup {
                    system_id,
                    group_name,
                    frame,
                })
                .await??),
        }
    }

    pub async fn send_to_system(
        &self,
        system_id: String,
        frame: ByteString,
    ) -> Result<usize, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.send_to_system(&system_id, frame).await,
            None => Ok(self
                .registry
                .send(m::SendToSystem { system_id, frame })
                .await??),
        }
    }

    pub async fn bind_to_group(&self, msg: m::BindToGroup) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => {
                cluster
                    .bind_to_group(
                        &msg.system_id,
                        msg.client_id,
                        msg.group_name,
                        msg.user_id,
                        msg.extend,
                    )
                    .await
            }
            None => Ok(self.registry.send(msg).await??),
        }
    }

    pub async fn unbind_from_group(&self, msg: m::UnbindFromGroup) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => {
                cluster
                    .unbind_from_group(&msg.system_id, msg.client_id, msg.group_name)
                    .await
            }
            None => Ok(self.registry.send(msg).await??),
        }
    }

    pub async fn get_online_list(&self, msg: m::GetOnlineList) -> Result<OnlineList, ApiError> {
        match &self.cluster {
            Some(cluster) => {
                cluster
                    .get_online_list(&msg.system_id, &msg.group_name)
                    .await
            }
            None => Ok(self.registry.send(msg).await??),
        }
    }

    pub async fn get_all_groups(
        &self,
        msg: m::GetAllGroups,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.get_all_groups(&msg.system_id).await,
            None => Ok(self.registry.send(msg).await??),
        }
    }

    pub async fn close_client(&self, msg: m::CloseClient) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.close_client(&msg.system_id, msg.client_id).await,
            None => Ok(self.registry.send(msg).await??),
        }
    }

    pub async fn get_client_info(&self, msg: m::GetClientInfo) -> Result<ClientInfo, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster.get_client_info(&msg.system_id, msg.client_id).await,
            None => Ok(self.registry.send(msg).await??),
        }
    }
}

/// Mailbox bound of the registry: HTTP handlers wait (`send`) when it is full.
const REGISTRY_MAILBOX: usize = 16;

/// The registry actor and its mailbox, to be started on the thread that calls
/// [`start_here`](Self::start_here).
pub struct RegistryStarter {
    receiver: AddressReceiver<SystemRegistry>,
    registry: SystemRegistry,
}

impl RegistryStarter {
    /// Runs the registry on the current arbiter.
    pub fn start_here(self) {
        Context::with_receiver(self.receiver).run(self.registry);
    }
}
