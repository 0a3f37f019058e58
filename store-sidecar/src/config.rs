//! The sidecar's TOML configuration: parsed and validated once at start-up.
//!
//! Every error names the field it is about (`channel[1].input[0].password`), so an operator can
//! fix the file without reading the code.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Longest startover window a channel may keep (14 days, as MediaPackage).
pub const MAX_STARTOVER_WINDOW_SECONDS: u64 = 14 * 24 * 3600;

/// A configuration that failed to load; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default, rename = "channel")]
    pub channels: Vec<ChannelConfig>,
    /// `[admin]`: the admin API (channel reset, harvest); none = the API is off.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[storage]`: where segments and the index are kept.
    #[serde(default)]
    pub storage: StorageConfig,
}

/// `[storage]`: the local disk (one sidecar), or an S3-compatible bucket that ingest and edge
/// sidecars on many machines share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// The bucket (`kind = "s3"`).
    pub bucket: Option<String>,
    /// Keys start with this (`live/` keeps the store under `live/{channel}/…`).
    pub prefix: String,
    /// The bucket's region; default `AWS_REGION` or `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible server's URL (MinIO, Ceph RGW, R2, GCS); addressed path-style. Default:
    /// `AWS_ENDPOINT_URL`, else AWS's own.
    pub endpoint: Option<String>,
    /// Allow an `http://` endpoint (a server on a private network).
    pub allow_http: bool,
    /// An AWS shared credentials file (`[default]` or `AWS_PROFILE`'s section); default: the
    /// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` environment.
    pub credentials_file: Option<PathBuf>,
    /// A bucket request that has not answered in this long fails (ingest then answers 503 with
    /// `Retry-After`, edges 504).
    pub request_timeout_seconds: u64,
    /// An ingest sidecar snapshots the index every this many log objects; a sidecar that starts
    /// reads the newest snapshot and the log after it. Log objects two snapshots old are deleted.
    pub snapshot_every: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Disk,
            bucket: None,
            prefix: String::new(),
            region: None,
            endpoint: None,
            allow_http: false,
            credentials_file: None,
            request_timeout_seconds: 5,
            snapshot_every: 500,
        }
    }
}

/// `storage.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Disk,
    S3,
}

/// `server.role`: what this sidecar does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Ingest and `/store/v1` in one process (the single-machine store).
    #[default]
    All,
    /// Takes the encoders' uploads (`server.ingest_inputs`) and writes them to the bucket.
    Ingest,
    /// Serves `/store/v1` from the bucket, read-only, next to an Envoy.
    Edge,
}

/// `[admin]`: the operator's credentials, and where harvests are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Harvest jobs write their VOD packages under this directory; none: harvest is off.
    #[serde(default)]
    pub harvest_dir: Option<PathBuf>,
}

/// `[server]`: listeners, storage and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Encoder-facing listener (authenticated ingest).
    pub ingest_listen: SocketAddr,
    /// Filter-facing listener (`/store/v1`, `/metrics`, `/healthz`), unauthenticated.
    pub internal_listen: SocketAddr,
    /// Where segments, playlists and the index live.
    pub data_dir: PathBuf,
    /// Realm offered in Digest and Basic challenges.
    pub realm: String,
    /// How long a Digest nonce is accepted before the client is told it is stale.
    pub nonce_ttl_seconds: u64,
    /// Largest accepted segment (or other non-playlist file) upload.
    pub max_segment_bytes: u64,
    /// Largest accepted playlist upload.
    pub max_playlist_bytes: u64,
    /// Longest accepted request path (bytes, as sent).
    pub max_path_bytes: usize,
    /// Uploaded files no playlist has listed are removed after this long.
    pub stale_upload_seconds: u64,
    /// Segments served last are kept in memory up to this size (the live edge every viewer
    /// asks for); 0: always read the disk.
    pub segment_cache_megabytes: u64,
    /// A connection that sends no complete request head (idle keep-alive included), or an
    /// upload that sends no byte of its body, for this long is closed (slowloris, stalled
    /// encoders). ffmpeg streams a segment while it encodes it: keep this above a segment's
    /// duration.
    pub idle_timeout_seconds: u64,
    /// Where the access log of the ingest listener goes: one JSON line per request.
    pub access_log: AccessLogTarget,
    /// `all`, `ingest` or `edge` (the last two need `[storage] kind = "s3"`).
    pub role: Role,
    /// The inputs (1, 2) whose encoders push to this sidecar; the other input's host writes
    /// the same bucket.
    pub ingest_inputs: Vec<u8>,
}

/// `server.access_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    /// JSON lines on standard output (the process's own log goes to standard error).
    #[default]
    Stdout,
    Off,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ingest_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir: PathBuf::from("./data"),
            realm: "edgepack".to_owned(),
            nonce_ttl_seconds: 300,
            max_segment_bytes: 64 * 1024 * 1024,
            max_playlist_bytes: 4 * 1024 * 1024,
            max_path_bytes: 1024,
            stale_upload_seconds: 600,
            segment_cache_megabytes: 256,
            idle_timeout_seconds: 30,
            access_log: AccessLogTarget::Stdout,
            role: Role::All,
            ingest_inputs: vec![1, 2],
        }
    }
}

/// `[[channel]]`: one live channel with its two redundant inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub id: String,
    #[serde(default = "default_window")]
    pub startover_window_seconds: u64,
    /// Switch inputs when the active one has not advanced for this long; default 2 × target duration.
    #[serde(default)]
    pub failover_after_seconds: Option<f64>,
    #[serde(default, rename = "input")]
    pub inputs: Vec<InputConfig>,
}

fn default_window() -> u64 {
    7200
}

/// `[[channel.input]]`: the credentials of one encoder (and `[admin]`: the operator's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password (keeps secrets out of the file).
    #[serde(default)]
    pub password_env: Option<String>,
}

/// A validated channel, with secrets resolved.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub startover_window_seconds: u64,
    pub failover_after_seconds: Option<f64>,
    /// Index 0 is input 1, index 1 is input 2.
    pub inputs: [Credentials; 2],
}

/// One encoder's username and password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The configuration after validation.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerConfig,
    pub channels: Vec<Channel>,
    /// The admin API's credentials, if it is on.
    pub admin: Option<Credentials>,
    /// Where harvests are written, if harvest is on.
    pub harvest_dir: Option<PathBuf>,
    pub storage: StorageConfig,
}

impl Settings {
    /// Which inputs (0, 1) this sidecar takes uploads for.
    pub fn local_inputs(&self) -> [bool; 2] {
        if self.server.role == Role::Edge {
            return [false; 2];
        }
        [1, 2].map(|n| self.server.ingest_inputs.contains(&n))
    }
}

/// True for ids that are safe in a URL path segment and a file name.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Settings {
    /// Reads, parses and validates the file; environment variables resolve `password_env`.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, |k| std::env::var(k).ok()).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; `env` looks up environment variables.
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        Self::validate(raw, env)
    }

    fn validate(raw: Config, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        validate_server(&raw.server)?;
        validate_storage(&raw.storage, raw.server.role)?;
        if raw.channels.is_empty() {
            return Err(invalid("channel", "at least one [[channel]] is required"));
        }
        let mut seen = HashSet::new();
        let mut channels = Vec::with_capacity(raw.channels.len());
        for (i, c) in raw.channels.iter().enumerate() {
            let field = format!("channel[{i}]");
            validate_id(&field, &c.id, &mut seen)?;
            channels.push(validate_channel(&field, c, raw.server.role, &env)?);
        }
        let admin = match &raw.admin {
            Some(a) => {
                let creds = InputConfig {
                    username: a.username.clone(),
                    password: a.password.clone(),
                    password_env: a.password_env.clone(),
                };
                Some(validate_input("admin", &creds, &env)?)
            }
            None => None,
        };
        Ok(Settings {
            server: raw.server,
            channels,
            admin,
            harvest_dir: raw.admin.and_then(|a| a.harvest_dir),
            storage: raw.storage,
        })
    }
}

fn validate_server(s: &ServerConfig) -> Result<(), ConfigError> {
    if s.ingest_listen == s.internal_listen && s.ingest_listen.port() != 0 {
        return Err(invalid(
            "server.internal_listen",
            "must differ from server.ingest_listen (the internal API has no authentication)",
        ));
    }
    if s.realm.is_empty() || s.realm.contains('"') || s.realm.contains('\\') {
        return Err(invalid(
            "server.realm",
            "must be non-empty and contain no quote or backslash",
        ));
    }
    if s.nonce_ttl_seconds == 0 {
        return Err(invalid("server.nonce_ttl_seconds", "must be at least 1"));
    }
    if s.max_segment_bytes == 0 || s.max_playlist_bytes == 0 {
        return Err(invalid(
            "server.max_segment_bytes / server.max_playlist_bytes",
            "must be at least 1",
        ));
    }
    if s.max_path_bytes < 32 {
        return Err(invalid("server.max_path_bytes", "must be at least 32"));
    }
    if s.idle_timeout_seconds == 0 {
        return Err(invalid("server.idle_timeout_seconds", "must be at least 1"));
    }
    let mut inputs = s.ingest_inputs.clone();
    inputs.sort_unstable();
    inputs.dedup();
    if s.role != Role::Edge
        && (inputs.is_empty()
            || inputs.len() != s.ingest_inputs.len()
            || inputs.iter().any(|i| !(1..=2).contains(i)))
    {
        return Err(invalid(
            "server.ingest_inputs",
            format!(
                "{:?} must list input 1, input 2 or both, each once",
                s.ingest_inputs
            ),
        ));
    }
    Ok(())
}

fn validate_storage(s: &StorageConfig, role: Role) -> Result<(), ConfigError> {
    match s.kind {
        StorageKind::Disk if role != Role::All => Err(invalid(
            "server.role",
            "an ingest or edge sidecar shares its channels through a bucket: set [storage] kind = \"s3\"",
        )),
        StorageKind::Disk => Ok(()),
        StorageKind::S3 => {
            if s.bucket.as_deref().is_none_or(str::is_empty) {
                return Err(invalid("storage.bucket", "required with kind = \"s3\""));
            }
            if !(s.prefix.is_empty() || s.prefix.ends_with('/')) || s.prefix.starts_with('/') {
                return Err(invalid(
                    "storage.prefix",
                    format!(
                        "'{}' must be empty or end with '/' (and not start with one)",
                        s.prefix
                    ),
                ));
            }
            if let Some(e) = &s.endpoint
                && !(e.starts_with("https://") || (e.starts_with("http://") && s.allow_http))
            {
                return Err(invalid(
                    "storage.endpoint",
                    format!("'{e}' must be an https:// URL (or http:// with allow_http = true)"),
                ));
            }
            if s.snapshot_every < 2 {
                return Err(invalid("storage.snapshot_every", "must be at least 2"));
            }
            if s.request_timeout_seconds == 0 {
                return Err(invalid(
                    "storage.request_timeout_seconds",
                    "must be at least 1",
                ));
            }
            Ok(())
        }
    }
}

/// A channel id must be safe in a URL and a file name, and unique (`seen` are the ids before).
fn validate_id(field: &str, id: &str, seen: &mut HashSet<String>) -> Result<(), ConfigError> {
    if !is_safe_id(id) {
        return Err(invalid(
            format!("{field}.id"),
            format!("'{id}' must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_'"),
        ));
    }
    if !seen.insert(id.to_owned()) {
        return Err(invalid(
            format!("{field}.id"),
            format!("channel '{id}' is defined twice"),
        ));
    }
    Ok(())
}

/// The rest of a channel, after its id; `field` is its name in messages (`channel[1]`).
fn validate_channel(
    field: &str,
    c: &ChannelConfig,
    role: Role,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Channel, ConfigError> {
    if c.startover_window_seconds == 0 || c.startover_window_seconds > MAX_STARTOVER_WINDOW_SECONDS
    {
        return Err(invalid(
            format!("{field}.startover_window_seconds"),
            format!(
                "{} is out of range 1..={MAX_STARTOVER_WINDOW_SECONDS} (14 days)",
                c.startover_window_seconds
            ),
        ));
    }
    if let Some(f) = c.failover_after_seconds
        && !(f.is_finite() && f > 0.0 && f <= 3600.0)
    {
        return Err(invalid(
            format!("{field}.failover_after_seconds"),
            format!("{f} is out of range (0, 3600]"),
        ));
    }
    if role == Role::Edge && c.inputs.is_empty() {
        // An edge takes no uploads: no encoder credentials to hold.
        let none = || Credentials {
            username: String::new(),
            password: String::new(),
        };
        return Ok(Channel {
            id: c.id.clone(),
            startover_window_seconds: c.startover_window_seconds,
            failover_after_seconds: c.failover_after_seconds,
            inputs: [none(), none()],
        });
    }
    if c.inputs.len() != 2 {
        return Err(invalid(
            format!("{field}.input"),
            format!(
                "exactly two [[channel.input]] are required (input 1 and input 2), found {}",
                c.inputs.len()
            ),
        ));
    }
    let mut creds = Vec::with_capacity(2);
    for (j, input) in c.inputs.iter().enumerate() {
        creds.push(validate_input(&format!("{field}.input[{j}]"), input, env)?);
    }
    let [a, b]: [Credentials; 2] = creds
        .try_into()
        .map_err(|_| invalid(format!("{field}.input"), "exactly two inputs required"))?;
    Ok(Channel {
        id: c.id.clone(),
        startover_window_seconds: c.startover_window_seconds,
        failover_after_seconds: c.failover_after_seconds,
        inputs: [a, b],
    })
}

/// `f` is the input's name in messages (`channel[1].input[0]`).
fn validate_input(
    f: &str,
    input: &InputConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    if input.username.is_empty() || input.username.contains([':', '"', '\\']) {
        return Err(invalid(
            format!("{f}.username"),
            "must be non-empty and contain no ':', quote or backslash",
        ));
    }
    let password = match (&input.password, &input.password_env) {
        (Some(p), None) => p.clone(),
        (None, Some(var)) => env(var).ok_or_else(|| {
            invalid(
                format!("{f}.password_env"),
                format!("environment variable {var} is not set"),
            )
        })?,
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{f}.password"),
                "set either password or password_env, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                format!("{f}.password"),
                "missing (set password or password_env)",
            ));
        }
    };
    if password.is_empty() {
        return Err(invalid(format!("{f}.password"), "must not be empty"));
    }
    Ok(Credentials {
        username: input.username.clone(),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
data_dir = "/tmp/x"
[[channel]]
id = "news"
[[channel.input]]
username = "enc1"
password = "a"
[[channel.input]]
username = "enc2"
password_env = "PW2"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "PW2").then(|| "b".to_owned())
    }

    #[test]
    fn good_config_resolves_env_password() {
        let s = Settings::from_toml(GOOD, env).unwrap();
        assert_eq!(s.channels[0].inputs[1].password, "b");
        assert_eq!(s.channels[0].startover_window_seconds, 7200);
        assert_eq!(s.server.max_path_bytes, 1024);
    }

    fn err(text: &str) -> String {
        Settings::from_toml(text, env).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(&GOOD.replace("PW2", "NOPE")).contains("channel[0].input[1].password_env"));
        assert!(err(&GOOD.replace("news", "n/ws")).contains("channel[0].id"));
        assert!(err(&GOOD.replace("data_dir", "data_dri")).contains("data_dri"));
        let one_input = GOOD
            .split("[[channel.input]]\nusername = \"enc2\"")
            .next()
            .unwrap();
        assert!(err(one_input).contains("channel[0].input"));
        let big = GOOD.replace(
            "id = \"news\"",
            "id = \"news\"\nstartover_window_seconds = 9999999",
        );
        assert!(err(&big).contains("startover_window_seconds"));
        assert!(err("").contains("at least one [[channel]]"));
    }

    #[test]
    fn the_admin_api_has_credentials_or_is_off() {
        let off = Settings::from_toml(GOOD, env).unwrap();
        assert!(off.admin.is_none());
        let on = format!("[admin]\nusername = \"ops\"\npassword_env = \"PW2\"\n{GOOD}");
        let admin = Settings::from_toml(&on, env).unwrap().admin.unwrap();
        assert_eq!(
            (admin.username.as_str(), admin.password.is_empty()),
            ("ops", false)
        );
        let no_password = format!("[admin]\nusername = \"ops\"\n{GOOD}");
        assert!(err(&no_password).contains("admin.password"));
        let typo = format!("[admin]\nusername = \"ops\"\npasword = \"x\"\n{GOOD}");
        assert!(err(&typo).contains("pasword"));
    }

    #[test]
    fn roles_share_channels_through_a_bucket() {
        let s = Settings::from_toml(GOOD, env).unwrap();
        assert_eq!(
            (s.server.role, s.storage.kind),
            (Role::All, StorageKind::Disk)
        );
        assert_eq!(s.local_inputs(), [true, true]);
        let with = |server: &str, storage: &str| {
            GOOD.replace("[server]\n", &format!("[server]\n{server}\n"))
                + &format!("[storage]\n{storage}\n")
        };
        let s3 = "kind = \"s3\"\nbucket = \"live\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true";
        let b =
            Settings::from_toml(&with("role = \"ingest\"\ningest_inputs = [2]", s3), env).unwrap();
        assert_eq!(b.local_inputs(), [false, true]);
        assert_eq!(b.storage.bucket.as_deref(), Some("live"));
        // An edge needs no encoder credentials.
        let edge = with("role = \"edge\"", s3)
            .split("[[channel.input]]")
            .next()
            .unwrap()
            .to_owned()
            + &format!("[storage]\n{s3}\n");
        assert_eq!(
            Settings::from_toml(&edge, env).unwrap().local_inputs(),
            [false, false]
        );
        assert!(err(&with("role = \"edge\"", "")).contains("server.role"));
        assert!(err(&with("", "kind = \"s3\"")).contains("storage.bucket"));
        assert!(err(&with("", &s3.replace("allow_http = true", ""))).contains("storage.endpoint"));
        assert!(err(&with("", &format!("{s3}\nprefix = \"live\""))).contains("storage.prefix"));
        assert!(err(&with("ingest_inputs = [3]", s3)).contains("server.ingest_inputs"));
        assert!(err(&with("ingest_inputs = [1, 1]", s3)).contains("server.ingest_inputs"));
        assert!(err(&with("", "kind = \"tape\"")).contains("tape"));
    }
}
