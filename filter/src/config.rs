//! The plugin configuration (JSON; Envoy passes it as a `StringValue`), parsed and validated once
//! in `on_configure`. Every error names the field, e.g.
//! `channels.news.endpoints.secure.encryption.constant_iv: must be 32 hex characters`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::access::Cidr;

/// A configuration the filter refuses (Envoy then refuses the filter).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid edgepack configuration: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
}

/// Where the store sidecar is: an Envoy cluster for `dispatch_http_call`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Envoy cluster name of the store sidecar's internal listener.
    pub cluster: String,
    /// `:authority` sent to the store.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// Timeout of each store request; 0 means none (Envoy's meaning).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_authority() -> String {
    "store".into()
}
fn default_timeout() -> u64 {
    2000
}

/// One channel: its endpoints by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// Output format of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// HLS with the segments as ingested (MPEG-TS, or fMP4 with `EXT-X-MAP`).
    Hls,
    /// HLS with fMP4 (CMAF) segments: `EXT-X-MAP` + fragments; fMP4 ingest passes through,
    /// MPEG-TS ingest is repackaged.
    Cmaf,
    /// MPEG-DASH: `index.mpd` (SegmentTemplate + SegmentTimeline), one CMAF track per
    /// representation, repackaged from MPEG-TS ingest.
    Dash,
}

/// One origin endpoint (MediaPackage's term): how a channel is packaged for viewers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub format: Format,
    /// Live window of media playlists.
    #[serde(default = "default_window")]
    pub manifest_window_seconds: u64,
    /// Viewers see the stream this much later than live.
    #[serde(default)]
    pub time_delay_seconds: u64,
    /// `EXT-X-PROGRAM-DATE-TIME` every this many seconds (and after each discontinuity); 0: none.
    #[serde(default)]
    pub program_date_time_interval_seconds: u64,
    #[serde(default)]
    pub stream_selection: StreamSelection,
    #[serde(default)]
    pub encryption: Option<Encryption>,
    #[serde(default)]
    pub access: Access,
}

fn default_window() -> u64 {
    60
}

/// Which variants an endpoint offers, and in which order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSelection {
    pub min_video_bits_per_second: u64,
    pub max_video_bits_per_second: u64,
    pub stream_order: StreamOrder,
}

impl Default for StreamSelection {
    fn default() -> Self {
        Self {
            min_video_bits_per_second: 0,
            max_video_bits_per_second: 2_147_483_647,
            stream_order: StreamOrder::Original,
        }
    }
}

/// Variant order in the multivariant playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamOrder {
    #[default]
    Original,
    VideoBitrateAscending,
    VideoBitrateDescending,
}

/// Encryption of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub method: EncryptionMethod,
    /// A new key every this many seconds of program date time; 0: one key forever.
    #[serde(default = "default_rotation")]
    pub key_rotation_interval_seconds: u64,
    /// Fixed IV (32 hex characters); default: the media sequence number (RFC 8216 §5.2).
    #[serde(default)]
    pub constant_iv: Option<String>,
    pub key: KeySource,
    pub key_token: KeyToken,
}

fn default_rotation() -> u64 {
    60
}

/// Encryption methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EncryptionMethod {
    /// Whole-segment AES-128-CBC (HLS with MPEG-TS segments).
    #[serde(rename = "aes-128")]
    Aes128,
    /// Common encryption, AES-CTR (ISO/IEC 23001-7 `cenc`): DASH, and CMAF HLS as
    /// `SAMPLE-AES-CTR`.
    #[serde(rename = "cenc")]
    Cenc,
    /// Common encryption, AES-CBC 1:9 pattern (`cbcs`): DASH, and CMAF HLS as `SAMPLE-AES`.
    #[serde(rename = "cbcs")]
    Cbcs,
}

/// Where keys come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum KeySource {
    /// Key = first 16 bytes of HMAC-SHA256(secret, "{channel}/{endpoint}/{period}").
    Derived { secret: String },
    /// One fixed key.
    Static { key_hex: String },
}

/// Tokens that guard key delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyToken {
    pub secret: String,
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
}

fn default_ttl() -> u64 {
    300
}

/// Who may request an endpoint.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub cdn_identifier: Option<CdnIdentifier>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
}

/// MediaPackage's CDN authorization: a header with a shared secret (current and previous).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnIdentifier {
    #[serde(default = "default_cdn_header")]
    pub header: String,
    pub secrets: Vec<String>,
}

fn default_cdn_header() -> String {
    "x-edgepack-cdn-identifier".into()
}

/// A validated endpoint: the config plus parsed values.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub channel: String,
    pub name: String,
    pub cfg: EndpointConfig,
    pub constant_iv: Option<[u8; 16]>,
    pub static_key: Option<[u8; 16]>,
    pub allowlist: Vec<Cidr>,
}

/// The validated configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// channel → endpoint name → endpoint.
    pub channels: BTreeMap<String, BTreeMap<String, Endpoint>>,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex16(field: &str, s: &str) -> Result<[u8; 16], ConfigError> {
    let bytes = hex::decode(s.trim_start_matches("0x").trim_start_matches("0X"))
        .map_err(|_| err(field, "must be 32 hex characters"))?;
    bytes
        .try_into()
        .map_err(|_| err(field, "must be 32 hex characters (16 bytes)"))
}

impl Settings {
    /// Parses and validates the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw: Config = serde_json::from_slice(bytes).map_err(|e| {
            err(
                format!("line {} column {}", e.line(), e.column()),
                e.to_string(),
            )
        })?;
        Self::validate(raw)
    }

    fn validate(raw: Config) -> Result<Self, ConfigError> {
        if raw.store.cluster.is_empty() {
            return Err(err(
                "store.cluster",
                "must name the Envoy cluster of the store sidecar",
            ));
        }
        if raw.store.authority.is_empty() {
            return Err(err("store.authority", "must not be empty"));
        }
        if raw.channels.is_empty() {
            return Err(err("channels", "at least one channel is required"));
        }
        let mut channels = BTreeMap::new();
        for (cname, channel) in raw.channels {
            if !safe_name(&cname) {
                return Err(err(
                    format!("channels.{cname}"),
                    "channel ids are 1-64 characters of A-Z a-z 0-9 - _",
                ));
            }
            if channel.endpoints.is_empty() {
                return Err(err(
                    format!("channels.{cname}.endpoints"),
                    "at least one endpoint is required",
                ));
            }
            let mut endpoints = BTreeMap::new();
            for (ename, cfg) in channel.endpoints {
                let f = format!("channels.{cname}.endpoints.{ename}");
                if !safe_name(&ename) || ename == "key" {
                    return Err(err(
                        f,
                        "endpoint names are 1-64 characters of A-Z a-z 0-9 - _ (and not 'key')",
                    ));
                }
                endpoints.insert(ename.clone(), validate_endpoint(&f, &cname, &ename, cfg)?);
            }
            channels.insert(cname, endpoints);
        }
        Ok(Settings {
            store: raw.store,
            channels,
        })
    }
}

fn validate_endpoint(
    f: &str,
    channel: &str,
    name: &str,
    cfg: EndpointConfig,
) -> Result<Endpoint, ConfigError> {
    if let Some(e) = &cfg.encryption {
        let fits = match e.method {
            EncryptionMethod::Aes128 => cfg.format == Format::Hls,
            EncryptionMethod::Cenc | EncryptionMethod::Cbcs => cfg.format != Format::Hls,
        };
        if !fits {
            return Err(err(
                format!("{f}.encryption.method"),
                "\"aes-128\" encrypts whole MPEG-TS segments (format \"hls\"); \"cenc\" and \"cbcs\" encrypt CMAF samples (formats \"cmaf\" and \"dash\")",
            ));
        }
    }
    if !(1..=86_400).contains(&cfg.manifest_window_seconds) {
        return Err(err(
            format!("{f}.manifest_window_seconds"),
            "must be 1..=86400",
        ));
    }
    if cfg.time_delay_seconds > 86_400 {
        return Err(err(format!("{f}.time_delay_seconds"), "must be 0..=86400"));
    }
    if cfg.program_date_time_interval_seconds > 3600 {
        return Err(err(
            format!("{f}.program_date_time_interval_seconds"),
            "must be 0..=3600",
        ));
    }
    let s = &cfg.stream_selection;
    if s.min_video_bits_per_second > s.max_video_bits_per_second {
        return Err(err(
            format!("{f}.stream_selection"),
            "min_video_bits_per_second is above max_video_bits_per_second",
        ));
    }
    let mut constant_iv = None;
    let mut static_key = None;
    if let Some(e) = &cfg.encryption {
        let ef = format!("{f}.encryption");
        if e.key_rotation_interval_seconds > 0 && e.key_rotation_interval_seconds < 2 {
            return Err(err(
                format!("{ef}.key_rotation_interval_seconds"),
                "must be 0 (no rotation) or at least 2",
            ));
        }
        if let Some(iv) = &e.constant_iv {
            constant_iv = Some(hex16(&format!("{ef}.constant_iv"), iv)?);
        }
        match &e.key {
            KeySource::Derived { secret } if secret.len() < 16 => {
                return Err(err(
                    format!("{ef}.key.derived.secret"),
                    "must be at least 16 characters",
                ));
            }
            KeySource::Derived { .. } => {}
            KeySource::Static { key_hex } => {
                static_key = Some(hex16(&format!("{ef}.key.static.key_hex"), key_hex)?);
            }
        }
        if e.key_token.secret.len() < 16 {
            return Err(err(
                format!("{ef}.key_token.secret"),
                "must be at least 16 characters",
            ));
        }
        if !(1..=86_400).contains(&e.key_token.ttl_seconds) {
            return Err(err(
                format!("{ef}.key_token.ttl_seconds"),
                "must be 1..=86400",
            ));
        }
    }
    if let Some(cdn) = &cfg.access.cdn_identifier {
        let af = format!("{f}.access.cdn_identifier");
        if cdn.secrets.is_empty() || cdn.secrets.len() > 2 {
            return Err(err(
                format!("{af}.secrets"),
                "one or two secrets (current, previous)",
            ));
        }
        if cdn.secrets.iter().any(String::is_empty) {
            return Err(err(format!("{af}.secrets"), "secrets must not be empty"));
        }
        if cdn.header.is_empty()
            || !cdn
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(format!("{af}.header"), "must be a header name"));
        }
    }
    let mut allowlist = Vec::new();
    for (i, c) in cfg.access.ip_allowlist.iter().enumerate() {
        allowlist.push(Cidr::parse(c).ok_or_else(|| {
            err(
                format!("{f}.access.ip_allowlist[{i}]"),
                format!("'{c}' is not a CIDR (203.0.113.0/24, 2001:db8::/32) or an IP address"),
            )
        })?);
    }
    Ok(Endpoint {
        channel: channel.to_owned(),
        name: name.to_owned(),
        constant_iv,
        static_key,
        allowlist,
        cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = r#"{ "store": { "cluster": "edgepack_store", "authority": "store", "timeout_ms": 2000 },
      "channels": { "news": { "endpoints": {
        "hls": { "format": "hls", "manifest_window_seconds": 60 },
        "secure": { "format": "hls", "manifest_window_seconds": 60, "time_delay_seconds": 0,
          "program_date_time_interval_seconds": 10,
          "stream_selection": { "min_video_bits_per_second": 0, "max_video_bits_per_second": 5000000,
                                "stream_order": "video_bitrate_descending" },
          "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 60,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef", "ttl_seconds": 300 } },
          "access": { "cdn_identifier": { "header": "x-edgepack-cdn-identifier", "secrets": ["current", "previous"] },
                      "ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"] } } } } } }"#;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn example_is_valid() {
        let s = Settings::from_json(EXAMPLE.as_bytes()).unwrap();
        let secure = &s.channels["news"]["secure"];
        assert_eq!(secure.allowlist.len(), 2);
        assert_eq!(s.channels["news"]["hls"].cfg.time_delay_seconds, 0);
        assert_eq!(s.store.timeout_ms, 2000);
    }

    fn field_of(json: &str) -> String {
        Settings::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn errors_name_the_field() {
        let e = field_of(&EXAMPLE.replace("\"stream_order\"", "\"stream_ordr\""));
        assert!(e.contains("stream_ordr"), "{e}");
        let e = field_of(&EXAMPLE.replace(
            "\"key_rotation_interval_seconds\": 60,",
            "\"key_rotation_interval_seconds\": 60, \"constant_iv\": \"abc\",",
        ));
        assert!(
            e.contains("channels.news.endpoints.secure.encryption.constant_iv"),
            "{e}"
        );
        let e = field_of(&EXAMPLE.replace("203.0.113.0/24", "203.0.113.0/33"));
        assert!(e.contains("ip_allowlist[0]"), "{e}");
        let e = field_of(&EXAMPLE.replace("\"method\": \"aes-128\"", "\"method\": \"cenc\""));
        assert!(
            e.contains("channels.news.endpoints.secure.encryption.method"),
            "{e}"
        );
        let e = field_of(&EXAMPLE.replace(
            "\"format\": \"hls\", \"manifest_window_seconds\": 60, \"time",
            "\"format\": \"dash\", \"manifest_window_seconds\": 60, \"time",
        ));
        assert!(e.contains("aes-128"), "{e}");
        let ok = EXAMPLE.replace(
            "\"format\": \"hls\", \"manifest_window_seconds\": 60, \"time",
            "\"format\": \"dash\", \"manifest_window_seconds\": 60, \"time",
        );
        assert!(Settings::from_json(ok.replace("aes-128", "cbcs").as_bytes()).is_ok());
        let e = field_of(&EXAMPLE.replace("\"cluster\": \"edgepack_store\"", "\"cluster\": \"\""));
        assert!(e.contains("store.cluster"), "{e}");
        let e = field_of("{");
        assert!(e.contains("line 1"), "{e}");
    }
}
