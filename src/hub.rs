//! [`Hub`]: the handle to a running wshub core that the HTTP layer (or a host application)
//! holds: the registry's address, the settings and the token verifier.

use std::sync::Arc;

use actix::{Actor, Addr};

use crate::actors::registry::SystemRegistry;
use crate::actors::session::Heartbeat;
use crate::auth::{self, Authenticator};
use crate::config::{ApiAuth, Config};

/// The settings the request path reads, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub heartbeat: Heartbeat,
    pub max_frame_size: usize,
    pub max_body_size: usize,
}

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Hub {
    /// The registry actor. It lives as long as any `Hub` clone or session holds its address.
    pub registry: Addr<SystemRegistry>,
    pub settings: Arc<Settings>,
    pub auth: Arc<Authenticator>,
    /// An admin token, when no secret was configured and one was generated at start.
    generated_admin_token: Option<Arc<str>>,
}

impl Hub {
    /// Starts the registry on the current actix arbiter. Must be called inside a running actix
    /// system (`#[actix_web::main]`, `#[actix_web::test]`, or a host app's runtime).
    pub fn start(config: &Config) -> Hub {
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
        Hub {
            registry: SystemRegistry::new().start(),
            settings: Arc::new(Settings {
                heartbeat: Heartbeat {
                    ping_interval: config.ping_interval,
                    client_timeout: config.client_timeout,
                },
                max_frame_size: config.max_frame_size,
                max_body_size: config.max_body_size,
            }),
            auth: Arc::new(Authenticator::new(config.api_auth, secret.as_bytes())),
            generated_admin_token,
        }
    }

    /// The admin token made at start when no secret was configured (valid 24 h).
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }
}
