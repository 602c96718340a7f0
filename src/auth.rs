//! API tokens: HS256 JWTs with a required `exp` and an optional `systemId` scope.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::ApiAuth;

/// The claims wshub mints. Verification reads a token's claims as a JSON map instead, so that
/// it can refuse what this struct would silently ignore (unknown claims, a null `systemId`).
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

/// Claims a token may carry: the registered JWT claims and wshub's own. Anything else is
/// refused, so that a misspelt `systemId` can never turn a scoped token into an admin token.
const ALLOWED_CLAIMS: [&str; 9] = [
    "exp", "iat", "nbf", "sub", "iss", "aud", "jti", "systemId", "userId",
];

/// What a verified token says about its holder.
#[derive(Debug, PartialEq, Eq)]
struct VerifiedClaims {
    system_id: Option<String>,
    user_id: Option<String>,
}

/// Refuses unknown claims and a `systemId` / `userId` that is not a string (`systemId` also
/// not empty): a token must never be wider than its author meant.
fn check_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<VerifiedClaims, String> {
    if let Some(unknown) = claims
        .keys()
        .find(|k| !ALLOWED_CLAIMS.contains(&k.as_str()))
    {
        return Err(format!(
            "invalid token: unknown claim '{unknown}' (allowed: {})",
            ALLOWED_CLAIMS.join(", ")
        ));
    }
    let text = |name: &str| -> Result<Option<String>, String> {
        match claims.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!(
                "invalid token: the '{name}' claim must be a string"
            )),
        }
    };
    let system_id = text("systemId")?;
    if system_id.as_deref() == Some("") {
        return Err("invalid token: the 'systemId' claim must not be empty".into());
    }
    Ok(VerifiedClaims {
        system_id,
        user_id: text("userId")?,
    })
}

/// A JWT library error in plain words.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    let why = match err.kind() {
        K::InvalidSignature => "the signature does not match this server's secret".into(),
        K::ExpiredSignature => "it has expired (exp is in the past)".into(),
        K::ImmatureSignature => "it is not valid yet (nbf is in the future)".into(),
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
            "it must be signed with HS256".into()
        }
        K::MissingRequiredClaim(claim) => format!("the '{claim}' claim is missing"),
        K::InvalidClaimFormat(claim) => format!("the '{claim}' claim has the wrong type"),
        K::Json(_) => "its claims are not a JSON object with the expected types".into(),
        _ => "it is not a JWT (three base64url parts separated by dots)".into(),
    };
    format!("invalid token: {why}")
}

/// Who a verified caller is allowed to act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Any system.
    Admin,
    /// Only this system.
    System(String),
}

/// Why a token was refused (all of them are 401).
#[derive(Debug, derive_more::Display)]
pub enum TokenError {
    #[display("missing bearer token: send 'Authorization: Bearer <JWT>'")]
    Missing,
    #[display("{_0}")]
    Invalid(String),
}

/// Verifies and mints tokens with one secret.
pub struct Authenticator {
    mode: ApiAuth,
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
        validation.validate_nbf = true;
        // wshub names no audience of its own; an `aud` claim is allowed and not interpreted.
        validation.validate_aud = false;
        validation.leeway = 5;
        Authenticator {
            mode,
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn mode(&self) -> ApiAuth {
        self.mode
    }

    /// Verifies the signature, `exp`/`nbf`, the header and the claims of a token.
    fn decode(&self, token: &str) -> Result<VerifiedClaims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| describe(&e))?;
        if header.crit.is_some() {
            return Err(
                "invalid token: it has a 'crit' header, naming extensions this server does not \
                 implement"
                    .into(),
            );
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.decoding,
            &self.validation,
        )
        .map_err(|e| describe(&e))?;
        check_claims(&data.claims)
    }

    /// Checks a bearer token (`None`: no Authorization header) and returns the caller's scope.
    pub fn verify(&self, token: Option<&str>) -> Result<Scope, TokenError> {
        if self.mode == ApiAuth::None {
            return Ok(Scope::Admin);
        }
        let token = token.ok_or(TokenError::Missing)?;
        let claims = self.decode(token).map_err(TokenError::Invalid)?;
        Ok(match claims.system_id {
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
        let claims = self
            .decode(token)
            .map_err(|e| e.replacen("invalid token", "invalid client token", 1))?;
        match claims.system_id.as_deref() {
            Some(own) if own == system_id => Ok(claims.user_id),
            Some(own) => Err(format!(
                "client token is for system '{own}', not '{system_id}'"
            )),
            None => Err("client token has no systemId claim".to_owned()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: serde_json::Value) -> Result<VerifiedClaims, String> {
        check_claims(value.as_object().expect("an object"))
    }

    #[test]
    fn a_misspelt_or_null_system_claim_never_widens_a_token() {
        for bad in [
            json!({"exp": 1, "systemId": null}),
            json!({"exp": 1, "systemId": ""}),
            json!({"exp": 1, "systemId": 7}),
            json!({"exp": 1, "systemid": "s"}),
            json!({"exp": 1, "system_id": "s"}),
            json!({"exp": 1, "userId": ["x"]}),
        ] {
            assert!(claims(bad.clone()).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn registered_claims_and_wshubs_own_are_accepted() {
        let ok = claims(
            json!({"exp": 1, "iat": 0, "nbf": 0, "sub": "a", "iss": "b", "aud": "c",
            "jti": "d", "systemId": "s", "userId": "u"}),
        );
        assert_eq!(
            ok,
            Ok(VerifiedClaims {
                system_id: Some("s".into()),
                user_id: Some("u".into())
            })
        );
    }
}
