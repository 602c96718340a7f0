//! API tokens: HS256 JWTs with a required `exp` and an optional `systemId` scope.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::ApiAuth;

/// The claims wshub reads. Unknown claims are ignored.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch (required).
    pub exp: u64,
    /// Present: the token acts for this one system only. Absent: an admin token.
    #[serde(rename = "systemId", default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    /// Client tokens only: the userId the client starts with.
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Who a verified caller is allowed to act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Any system.
    Admin,
    /// Only this system.
    System(String),
}

impl Scope {
    pub fn permits(&self, system_id: &str) -> bool {
        match self {
            Scope::Admin => true,
            Scope::System(own) => own == system_id,
        }
    }
}

/// Why a token was refused (all of them are 401).
#[derive(Debug, derive_more::Display)]
pub enum TokenError {
    #[display("missing bearer token: send 'Authorization: Bearer <JWT>'")]
    Missing,
    #[display("invalid token: {_0}")]
    Invalid(String),
}

/// Verifies and mints tokens with one secret.
pub struct Authenticator {
    mode: ApiAuth,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// How long the admin token logged at start (when no secret is configured) stays valid.
pub const STARTUP_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

impl Authenticator {
    pub fn new(mode: ApiAuth, secret: &[u8]) -> Self {
        // Only HS256 is accepted: a token whose header names any other algorithm, `none`
        // included, fails validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 5;
        Authenticator {
            mode,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn mode(&self) -> ApiAuth {
        self.mode
    }

    /// Checks a bearer token (`None`: no Authorization header) and returns the caller's scope.
    pub fn verify(&self, token: Option<&str>) -> Result<Scope, TokenError> {
        if self.mode == ApiAuth::None {
            return Ok(Scope::Admin);
        }
        let token = token.ok_or(TokenError::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(match data.claims.system_id {
            Some(system) => Scope::System(system),
            None => Scope::Admin,
        })
    }

    /// Checks a client token for `system_id` (`/ws?token=`); returns the userId it presets.
    /// Unlike API tokens it must name the system: an admin token does not admit clients.
    pub fn verify_client(
        &self,
        token: Option<&str>,
        system_id: &str,
    ) -> Result<Option<String>, String> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            "a client token is required: connect to /ws?systemId=...&token=<JWT>".to_owned()
        })?;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| format!("invalid client token: {e}"))?
            .claims;
        match claims.system_id.as_deref() {
            Some(own) if own == system_id => Ok(claims.user_id),
            Some(own) => Err(format!(
                "client token is for system '{own}', not '{system_id}'"
            )),
            None => Err("client token has no systemId claim".to_owned()),
        }
    }

    /// A token for `system` (or an admin token) valid for `ttl` from now.
    pub fn mint(&self, system: Option<&str>, ttl: Duration) -> String {
        mint(&self.encoding, system, ttl)
    }
}

/// Signs a token with `secret`; used by `wshub token` and the start-up admin token.
pub fn mint_with_secret(secret: &[u8], system: Option<&str>, ttl: Duration) -> String {
    mint(&EncodingKey::from_secret(secret), system, ttl)
}

fn mint(key: &EncodingKey, system: Option<&str>, ttl: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        exp: (now + ttl).as_secs(),
        system_id: system.map(str::to_owned),
        user_id: None,
    };
    // HS256 signing of a small struct cannot fail.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).unwrap_or_default()
}

/// A random secret for a server started without one: two UUIDv4s, 244 random bits.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
