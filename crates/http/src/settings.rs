//! Configuration: `config/default.toml`, then `config/<TICKETS_ENV>.toml`, then `.env`,
//! then the environment (`TICKETS__SECTION__KEY`, and `DATABASE_URL`).

use std::path::Path;
use std::time::Duration;

use domain::webhook::retry::RetryDelays;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// The defaults, compiled in so that the binary also starts outside the repository.
const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The shortest HS256 key the server accepts.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub events: EventSettings,
    pub webhooks: WebhookSettings,
}

/// Webhook deliveries (see `crate::webhooks`).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    pub allow_private_targets: bool,
    /// Comma-separated seconds, as `TICKETS__WEBHOOKS__RETRY_DELAYS_SECS` takes them;
    /// [`WebhookSettings::retry_delays`] reads them.
    pub retry_delays_secs: String,
    pub poll_interval_ms: u64,
    pub concurrency: usize,
    pub lease_secs: u64,
    /// How often the outbox is counted for the `webhook_deliveries_*` gauges.
    pub count_interval_secs: u64,
}

impl WebhookSettings {
    /// The delays between attempts. An empty list means a single attempt.
    pub fn retry_delays(&self) -> Result<RetryDelays, SettingsError> {
        let raw = self.retry_delays_secs.trim();
        if raw.is_empty() {
            return Ok(RetryDelays::new(Vec::new()));
        }
        raw.split(',')
            .map(|part| {
                part.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| SettingsError::RetryDelays(self.retry_delays_secs.clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(RetryDelays::new)
    }
}

/// The live event stream.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    pub buffer: usize,
    pub stream_buffer: usize,
    pub send_timeout_secs: u64,
    pub keep_alive_secs: u64,
    pub recheck_secs: u64,
    pub poll_interval_ms: u64,
    /// How long a stream that has just taken events rests before it writes again,
    /// gathering the events that come (see `routes::stream`); 0: none.
    pub coalesce_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub https: bool,
    pub workers: usize,
    /// From SIGTERM to exit, the drain included.
    pub shutdown_timeout_secs: u64,
    /// The first part of the shutdown, when everything is still served (see `shutdown`).
    pub drain_secs: u64,
    /// Compress large responses (see `compress`).
    pub compression: bool,
    /// Browser origins allowed by CORS, comma-separated; empty: no CORS. Read it
    /// through [`ServerSettings::cors_origins`].
    #[serde(default)]
    pub cors_origins: String,
    /// Serve `/metrics` on this port instead of the main one.
    #[serde(default, deserialize_with = "optional_port")]
    pub metrics_port: Option<u16>,
    /// Record request metrics and serve `/metrics`; off, neither (`just bench` measures
    /// what they cost with it).
    pub metrics: bool,
}

impl ServerSettings {
    /// The CORS origins, each as listed (blank entries skipped).
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// What the shutdown timeout leaves, after the drain, for requests in flight.
    pub fn graceful_stop_secs(&self) -> u64 {
        self.shutdown_timeout_secs.saturating_sub(self.drain_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// The connections that serve requests, split among the workers (see
    /// [`DatabaseSettings::worker_pool_sizes`]).
    pub pool_max_size: usize,
    /// The connections of the background work (webhook deliveries, upkeep, gauges).
    pub background_pool_max_size: usize,
    pub pool_wait_timeout_ms: u64,
    pub pool_create_timeout_ms: u64,
    pub pool_recycle_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub startup_timeout_secs: u64,
    pub idempotency_sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: Option<SecretString>,
    pub staff_api_key: Option<SecretString>,
    pub token_ttl_secs: u64,
    pub issuer: String,
    pub audience: String,
    pub bcrypt_cost: u32,
    pub max_concurrent_hashes: usize,
    pub hash_wait_timeout_ms: u64,
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_address: u32,
    pub login_failure_window_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error(
        "TICKETS__AUTH__JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long \
         (it is {0} bytes); generate one with `openssl rand -base64 48`"
    )]
    JwtSecretTooShort(usize),
    #[error(
        "TICKETS__AUTH__JWT_SECRET is not set; it is required outside development \
         (TICKETS_ENV={0})"
    )]
    JwtSecretMissing(String),
    #[error("TICKETS__AUTH__BCRYPT_COST must be between 4 and 31 (it is {0})")]
    BcryptCost(u32),
    #[error("TICKETS__AUTH__STAFF_API_KEY must be at least 16 bytes when set")]
    StaffKeyTooShort,
    #[error(
        "TICKETS__SERVER__DRAIN_SECS ({drain}) must be less than \
         TICKETS__SERVER__SHUTDOWN_TIMEOUT_SECS ({timeout}), which includes it"
    )]
    DrainTooLong { drain: u64, timeout: u64 },
    #[error(
        "TICKETS__WEBHOOKS__RETRY_DELAYS_SECS must be whole seconds separated by commas, \
         such as 5,300,1800 (it is {0:?})"
    )]
    RetryDelays(String),
    #[error(
        "TICKETS__WEBHOOKS__LEASE_SECS must be more than the {timeout} s an attempt may \
         take (it is {lease}), so that no other replica takes over an attempt under way"
    )]
    LeaseTooShort { lease: u64, timeout: u64 },
    #[error(
        "TICKETS__SERVER__CORS_ORIGINS: `{0}` is not an origin; write each one exactly as \
         browsers send it, as scheme://host[:port] in lower case with no path or trailing \
         slash, e.g. https://desk.example.com"
    )]
    CorsOrigin(String),
    #[error("TICKETS__SERVER__METRICS_PORT must differ from TICKETS__SERVER__PORT ({0})")]
    MetricsPortTaken(u16),
    #[error("TICKETS__SERVER__METRICS_PORT is set, but TICKETS__SERVER__METRICS is false")]
    MetricsPortWithoutMetrics,
    #[error("TICKETS__DATABASE__{0} must be at least 1")]
    EmptyPool(&'static str),
}

impl Settings {
    /// Loads the layered configuration for `TICKETS_ENV` (default `development`)
    /// from the current directory's `config/` and `.env`.
    pub fn load() -> Result<Self, SettingsError> {
        // `main` reads .env first already; tests and other callers get it here. A
        // missing .env is normal.
        let _ = dotenvy::dotenv();
        let env = environment_name();
        let database_url = std::env::var("DATABASE_URL").ok();
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(Path::new("config/default.toml")).required(false))
            .add_source(
                config::File::from(Path::new(&format!("config/{env}.toml"))).required(false),
            )
            .add_source(
                config::Environment::with_prefix("TICKETS")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .set_override_option("database.url", database_url)?
            .build()?;
        let settings: Settings = built.try_deserialize()?;
        settings.validated(&env)
    }

    /// The compiled-in defaults alone, ignoring files and the environment (tests).
    pub fn defaults() -> Result<Self, SettingsError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()?;
        Ok(built.try_deserialize()?)
    }

    fn validated(mut self, env: &str) -> Result<Self, SettingsError> {
        // An empty variable (e.g. `KEY=` in compose or .env) means unset.
        let blank =
            |s: &Option<SecretString>| s.as_ref().is_some_and(|s| s.expose_secret().is_empty());
        if blank(&self.auth.jwt_secret) {
            self.auth.jwt_secret = None;
        }
        if blank(&self.auth.staff_api_key) {
            self.auth.staff_api_key = None;
        }
        match &self.auth.jwt_secret {
            Some(secret) if secret.expose_secret().len() < MIN_JWT_SECRET_BYTES => {
                return Err(SettingsError::JwtSecretTooShort(
                    secret.expose_secret().len(),
                ))
            }
            Some(_) => {}
            None if env == "development" => {}
            None => return Err(SettingsError::JwtSecretMissing(env.to_owned())),
        }
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return Err(SettingsError::BcryptCost(self.auth.bcrypt_cost));
        }
        if let Some(key) = &self.auth.staff_api_key {
            if key.expose_secret().len() < 16 {
                return Err(SettingsError::StaffKeyTooShort);
            }
        }
        if self.server.drain_secs > 0 && self.server.drain_secs >= self.server.shutdown_timeout_secs
        {
            return Err(SettingsError::DrainTooLong {
                drain: self.server.drain_secs,
                timeout: self.server.shutdown_timeout_secs,
            });
        }
        if self.database.pool_max_size == 0 {
            return Err(SettingsError::EmptyPool("POOL_MAX_SIZE"));
        }
        if self.database.background_pool_max_size == 0 {
            return Err(SettingsError::EmptyPool("BACKGROUND_POOL_MAX_SIZE"));
        }
        self.webhooks.retry_delays()?;
        let timeout = crate::webhooks::ATTEMPT_TIMEOUT.as_secs();
        if self.webhooks.lease_secs <= timeout {
            return Err(SettingsError::LeaseTooShort {
                lease: self.webhooks.lease_secs,
                timeout,
            });
        }
        if let Some(origin) = self
            .server
            .cors_origins()
            .into_iter()
            .find(|origin| !is_origin(origin))
        {
            return Err(SettingsError::CorsOrigin(origin));
        }
        if self.server.port != 0 && self.server.metrics_port == Some(self.server.port) {
            return Err(SettingsError::MetricsPortTaken(self.server.port));
        }
        if !self.server.metrics && self.server.metrics_port.is_some() {
            return Err(SettingsError::MetricsPortWithoutMetrics);
        }
        Ok(self)
    }
}

/// Whether `text` is an origin as browsers send it in `Origin`: `http` or `https`, a
/// host and maybe a port, lower case, nothing else. CORS compares origins exactly, so
/// anything else would silently never match.
fn is_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<actix_web::http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && authority.as_str() == authority.host().to_owned() + &port_suffix(authority)
        && text == format!("{scheme}://{authority}")
        && !text.chars().any(|c| c.is_ascii_uppercase())
}

/// `:port` when the authority has one.
fn port_suffix(authority: &actix_web::http::uri::Authority) -> String {
    authority
        .port_u16()
        .map_or_else(String::new, |port| format!(":{port}"))
}

/// An optional port that may also come as a string, blank meaning unset (e.g.
/// `TICKETS__SERVER__METRICS_PORT=` in a compose file).
fn optional_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Port(u16),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Port(port)) => Ok(Some(port)),
        Some(Raw::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(Raw::Text(text)) => text.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("metrics_port: `{text}` is not a port number"))
        }),
    }
}

impl DatabaseSettings {
    /// The pool of the background work, which also applies the migrations.
    pub fn pool_settings(&self) -> postgres_adapter::PoolSettings {
        self.pool_of(self.background_pool_max_size)
    }

    /// The pool of one worker, of `max_size` connections (see
    /// [`Self::worker_pool_sizes`]).
    pub fn worker_pool_settings(&self, max_size: usize) -> postgres_adapter::PoolSettings {
        self.pool_of(max_size)
    }

    /// `pool_max_size` split among `workers` as evenly as whole connections allow,
    /// the first workers taking the remainder; every worker has at least one, so that
    /// more workers than connections means more connections than `pool_max_size`.
    pub fn worker_pool_sizes(&self, workers: usize) -> Vec<usize> {
        let workers = workers.max(1);
        let (each, remainder) = (self.pool_max_size / workers, self.pool_max_size % workers);
        (0..workers)
            .map(|worker| (each + usize::from(worker < remainder)).max(1))
            .collect()
    }

    fn pool_of(&self, max_size: usize) -> postgres_adapter::PoolSettings {
        postgres_adapter::PoolSettings {
            url: self.url.expose_secret().to_owned(),
            max_size,
            wait_timeout: Duration::from_millis(self.pool_wait_timeout_ms),
            create_timeout: Duration::from_millis(self.pool_create_timeout_ms),
            recycle_timeout: Duration::from_millis(self.pool_recycle_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

/// `TICKETS_ENV`, `development` when unset or empty.
pub fn environment_name() -> String {
    std::env::var("TICKETS_ENV")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "development".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let settings = Settings::defaults().expect("defaults");
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.auth.token_ttl_secs, 1800);
        assert_eq!(settings.auth.bcrypt_cost, 12);
        assert!(settings.auth.jwt_secret.is_none());
        assert!(!settings.webhooks.allow_private_targets);
        assert_eq!(
            settings
                .webhooks
                .retry_delays()
                .expect("the default delays parse"),
            RetryDelays::default()
        );
    }

    #[test]
    fn the_request_connections_are_split_among_the_workers() {
        let mut database = Settings::defaults().expect("defaults").database;
        database.pool_max_size = 16;
        assert_eq!(database.worker_pool_sizes(1), [16]);
        assert_eq!(database.worker_pool_sizes(0), [16]);
        assert_eq!(database.worker_pool_sizes(3), [6, 5, 5]);
        database.pool_max_size = 2;
        assert_eq!(database.worker_pool_sizes(3), [1, 1, 1]);
    }

    #[test]
    fn retry_delays_are_comma_separated_seconds() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.webhooks.retry_delays_secs = " 0, 2 ,30".to_owned();
        assert_eq!(
            settings.webhooks.retry_delays().expect("valid delays"),
            RetryDelays::new(vec![
                Duration::ZERO,
                Duration::from_secs(2),
                Duration::from_secs(30)
            ])
        );
        settings.webhooks.retry_delays_secs = String::new();
        assert_eq!(
            settings.webhooks.retry_delays().expect("no retries"),
            RetryDelays::new(Vec::new())
        );
        for invalid in ["5,,300", "5;300", "-5", "1.5", "soon"] {
            settings.webhooks.retry_delays_secs = invalid.to_owned();
            assert!(
                matches!(
                    settings.clone().validated("development"),
                    Err(SettingsError::RetryDelays(_))
                ),
                "{invalid}"
            );
        }
    }

    #[test]
    fn a_lease_must_outlast_an_attempt() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.webhooks.lease_secs = 10;
        assert!(matches!(
            settings.clone().validated("development"),
            Err(SettingsError::LeaseTooShort { lease: 10, .. })
        ));
        settings.webhooks.lease_secs = 11;
        assert!(settings.validated("development").is_ok());
    }

    #[test]
    fn short_secret_is_refused_and_missing_one_outside_development() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.auth.jwt_secret = Some(SecretString::from("short"));
        assert!(matches!(
            settings.clone().validated("production"),
            Err(SettingsError::JwtSecretTooShort(5))
        ));
        settings.auth.jwt_secret = None;
        assert!(settings.clone().validated("development").is_ok());
        assert!(matches!(
            settings.validated("production"),
            Err(SettingsError::JwtSecretMissing(_))
        ));
    }

    #[test]
    fn the_drain_must_fit_in_the_shutdown_timeout() {
        let mut settings = Settings::defaults().expect("defaults");
        assert_eq!(settings.server.graceful_stop_secs(), 25);
        settings.server.drain_secs = 30;
        assert!(matches!(
            settings.clone().validated("development"),
            Err(SettingsError::DrainTooLong {
                drain: 30,
                timeout: 30
            })
        ));
        settings.server.drain_secs = 0;
        settings.server.shutdown_timeout_secs = 0;
        assert!(settings.validated("development").is_ok());
    }

    #[test]
    fn cors_origins_must_be_exact_origins() {
        let mut settings = Settings::defaults().expect("defaults");
        assert!(settings.server.cors_origins().is_empty());
        settings.server.cors_origins =
            " https://desk.example.com, http://localhost:3000 ,".to_owned();
        assert_eq!(
            settings.server.cors_origins(),
            ["https://desk.example.com", "http://localhost:3000"]
        );
        assert!(settings.clone().validated("development").is_ok());
        for wrong in [
            "*",
            "null",
            "desk.example.com",
            "https://desk.example.com/",
            "https://desk.example.com/app",
            "https://Desk.example.com",
            "ftp://desk.example.com",
            "https://user@desk.example.com",
        ] {
            settings.server.cors_origins = wrong.to_owned();
            assert!(
                matches!(
                    settings.clone().validated("development"),
                    Err(SettingsError::CorsOrigin(origin)) if origin == wrong
                ),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_blank_metrics_port_is_unset() {
        let parse = |value: config::Value| {
            let built = config::Config::builder()
                .add_source(config::File::from_str(
                    DEFAULT_TOML,
                    config::FileFormat::Toml,
                ))
                .set_override("server.metrics_port", value)
                .and_then(|builder| builder.build())
                .expect("config");
            built
                .try_deserialize::<Settings>()
                .map(|settings| settings.server.metrics_port)
        };
        assert_eq!(parse("".into()).expect("blank"), None);
        assert_eq!(parse("9100".into()).expect("text"), Some(9100));
        assert_eq!(parse(9100i64.into()).expect("number"), Some(9100));
        assert!(parse("nine".into()).is_err());
        assert_eq!(
            Settings::defaults().expect("defaults").server.metrics_port,
            None
        );
    }
}
