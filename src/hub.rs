//! [`Hub`]: the handle to a running wshub core that the HTTP layer (or a host application)
//! holds: the registry's address, the [`Node`] every operation runs with (its backplane and
//! directory, [`crate::backplane`]), the settings, the token verifier, the metrics and the
//! connection gate ([`crate::gate`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix::dev::channel::{self, AddressReceiver};
use actix::{Addr, Context};

use crate::actors::away::AwayBudget;
use crate::actors::events::EventSink;
use crate::actors::messages::Shutdown;
use crate::actors::outward::{Outlet, Outward};
use crate::actors::registry::{RegistryConfig, SystemRegistry};
use crate::actors::tenant::MembershipLimits;
use crate::auth::{self, Authenticator};
use crate::backplane::memory::MemoryBackplane;
use crate::backplane::{Backplane, Directory};
use crate::config::{ApiAuth, Config};
use crate::gate::ConnectionGate;
use crate::metrics::Metrics;
use crate::mqtt::MqttBridge;
use crate::ops::Node;
use crate::protocol::cursor::CursorKey;
use crate::store::SystemStore;
use crate::webhooks::outbox::Outbox;
use crate::webhooks::Webhooks;

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Hub {
    /// The registry actor. It lives as long as any `Hub` clone or session holds its address.
    pub registry: Addr<SystemRegistry>,
    /// The settings it runs with, fixed at start.
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub gate: Arc<ConnectionGate>,
    /// Set once shutdown has begun: REST answers 503 and `/healthz` reports it.
    shutting_down: Arc<AtomicBool>,
    /// An admin token, when no secret was configured and one was generated at start.
    generated_admin_token: Option<Arc<str>>,
    /// What operations run with: where their commands go and what every node agrees on (this
    /// node alone, or a cluster: see [`HubParts::into_hub`]).
    pub node: Arc<Node>,
    /// Where events about clients go (the registry's, and those a backplane decides).
    pub outward: Outward,
    /// The webhook sender (one of the outlets), which a shutdown waits for.
    pub webhooks: Webhooks,
    /// `--mqtt-url`: the bridge, to start once the routes are final.
    mqtt: Option<Arc<MqttBridge>>,
}

impl Hub {
    /// Starts the registry on the current actix arbiter, with the systems kept in
    /// `config.data_dir` (if it names one). Must be called inside a running actix system
    /// (`#[actix_web::main]`, `#[actix_web::test]`, or a host app's runtime). Fails when the
    /// store cannot be opened: the error names the file.
    pub fn start(config: &Config) -> std::io::Result<Hub> {
        let store = match config.store_dir() {
            Some(dir) => SystemStore::open(dir).map_err(std::io::Error::other)?,
            None => SystemStore::ephemeral(),
        };
        let outbox = match config.store_dir() {
            Some(dir) => Outbox::open(dir).map_err(std::io::Error::other)?,
            None => Outbox::memory(),
        };
        let (parts, starter) = Hub::assemble(config, None, store, outbox)?;
        let hub = parts.alone();
        starter.start_here();
        hub.start_bridges();
        Ok(hub)
    }

    /// The parts of a hub whose registry is not running yet (messages to it wait until
    /// [`RegistryStarter::start_here`] runs it on the calling thread's arbiter): what its routes
    /// are built from, then [`HubParts::into_hub`] with them. The standalone
    /// server starts it in an HTTP worker, so that with one worker (one CPU) the registry, the
    /// groups, the sessions and the handlers share a thread and a REST call never crosses threads.
    /// `events`: where the registry reports changes to its clients, if anything mirrors them
    /// (the cluster's writer).
    /// `store`: where registered systems are kept (and read back from now); `outbox`: where
    /// pending webhook events are.
    pub fn assemble(
        config: &Config,
        events: Option<EventSink>,
        store: SystemStore,
        outbox: Outbox,
    ) -> std::io::Result<(HubParts, RegistryStarter)> {
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
        let mqtt = match &config.mqtt() {
            Some(mqtt) => {
                let bridge = MqttBridge::new(
                    mqtt,
                    metrics.clone(),
                    config.overload,
                    config.limits.max_push_size,
                );
                Some(bridge.map_err(std::io::Error::other)?)
            }
            None => None,
        };
        let publisher = mqtt
            .clone()
            .map(|bridge| bridge as Arc<dyn crate::webhooks::EventPublisher>);
        let webhooks = Webhooks::new(config.webhooks.clone(), metrics.clone(), outbox, publisher);
        let mut outlets: Vec<Arc<dyn Outlet>> = vec![Arc::new(webhooks.clone())];
        if mqtt.is_some() {
            outlets.push(Arc::new(webhooks.mqtt_outlet()));
        }
        let outward = Outward::new(outlets);
        let (sender, receiver) = channel::channel(REGISTRY_MAILBOX);
        let registry_address = Addr::new(sender);
        let away = Arc::new(AwayBudget::new(
            config.recovery.away_bytes,
            registry_address.clone().recipient(),
        ));
        let registry = SystemRegistry::new(
            RegistryConfig {
                outward: outward.clone(),
                // When something mirrors the groups (a cluster), it decides occupancy for all.
                local_occupancy: events.is_none(),
                limits: MembershipLimits {
                    max_groups_per_client: config.limits.max_groups_per_client,
                    max_clients_per_group: config.limits.max_clients_per_group,
                },
                recovery: config.recovery,
                presence_grace: config.presence_grace,
                events,
            },
            metrics.clone(),
            store,
            away,
        )
        .map_err(std::io::Error::other)?;
        let parts = HubParts {
            registry: registry_address,
            config: Arc::new(config.clone()),
            auth: Arc::new(Authenticator::new(config.api_auth, secret.as_bytes())),
            cursors: CursorKey::from_secret(secret.as_bytes()),
            gate: Arc::new(ConnectionGate::new(
                config.limits.max_connections,
                config.limits.max_connections_per_system,
                metrics.clone(),
            )),
            metrics,
            generated_admin_token,
            outward,
            webhooks,
            mqtt,
        };
        Ok((parts, RegistryStarter { receiver, registry }))
    }

    /// Starts the MQTT bridge, if there is one: it runs operations on [`Hub::node`], so call
    /// this once the routes are final.
    pub fn start_bridges(&self) {
        if let Some(bridge) = &self.mqtt {
            bridge.start(self.node.clone());
        }
    }

    /// The MQTT bridge, if `--mqtt-url` set one.
    pub fn mqtt(&self) -> Option<&Arc<MqttBridge>> {
        self.mqtt.as_ref()
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

/// A hub without its routes: what a backplane is built from (the registry's address, the
/// outlets, the metrics, the connection gate), then [`into_hub`](Self::into_hub).
pub struct HubParts {
    pub registry: Addr<SystemRegistry>,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub gate: Arc<ConnectionGate>,
    pub outward: Outward,
    pub webhooks: Webhooks,
    generated_admin_token: Option<Arc<str>>,
    mqtt: Option<Arc<MqttBridge>>,
    cursors: CursorKey,
}

impl HubParts {
    /// The hub of a node alone: its registry is the whole of the routes and the directory.
    pub fn alone(self) -> Hub {
        let one_node = Arc::new(MemoryBackplane::new(self.registry.clone()));
        self.into_hub(one_node.clone(), one_node)
    }

    /// The hub, its operations routed through `backplane` and reading systems and membership
    /// from `directory`: this node alone ([`MemoryBackplane`] for both) or a cluster.
    pub fn into_hub(self, backplane: Arc<dyn Backplane>, directory: Arc<dyn Directory>) -> Hub {
        Hub {
            node: Arc::new(Node {
                backplane,
                directory,
                limits: self.config.limits.clone(),
                webhook_deny_private: self.config.webhooks.deny_private,
                cursors: self.cursors,
            }),
            registry: self.registry,
            config: self.config,
            auth: self.auth,
            metrics: self.metrics,
            gate: self.gate,
            shutting_down: Arc::new(AtomicBool::new(false)),
            generated_admin_token: self.generated_admin_token,
            outward: self.outward,
            webhooks: self.webhooks,
            mqtt: self.mqtt,
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

    /// For a factory that every HTTP worker runs on its own thread: the registry starts on the
    /// thread of the first one that calls [`FirstWorker::start_if_first`].
    pub fn on_first_worker(self) -> FirstWorker {
        FirstWorker(Arc::new(Mutex::new(Some(self))))
    }
}

/// A registry waiting for the first HTTP worker to start it; cheap to clone into the factory.
#[derive(Clone)]
pub struct FirstWorker(Arc<Mutex<Option<RegistryStarter>>>);

impl FirstWorker {
    /// Starts the registry on this thread if no worker has yet; later calls do nothing.
    pub fn start_if_first(&self) {
        let starter = self.0.lock().ok().and_then(|mut waiting| waiting.take());
        if let Some(starter) = starter {
            starter.start_here();
        }
    }
}
