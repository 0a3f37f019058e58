//! The plugin configuration (JSON; Envoy passes it as a `StringValue`), parsed and validated once
//! in `on_configure`. Every error names the field, e.g.
//! `channels.news.endpoints.secure.encryption.constant_iv: must be 32 hex characters`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::access::{AccessRules, CdnIdentifierRule, Cidr};
use crate::cmaf::cenc::Scheme;

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
    #[serde(default)]
    pub cache: CacheConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
}

/// The segments the filter produced, kept once per edge in Envoy's shared data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Size of the cache shared by the workers; 0 turns it off.
    #[serde(default = "default_cache_megabytes")]
    pub megabytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            megabytes: default_cache_megabytes(),
        }
    }
}

fn default_cache_megabytes() -> u64 {
    64
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
    /// How long a VM reuses the store's answer for a playlist (multivariant, media playlist
    /// view) before asking again; 0: always ask.
    #[serde(default = "default_playlist_cache")]
    pub playlist_cache_ms: u64,
}

fn default_playlist_cache() -> u64 {
    500
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
    /// Microsoft Smooth Streaming: `Manifest` + `QualityLevels({bitrate})/Fragments(…)`, one
    /// track per fragment, repackaged from MPEG-TS ingest.
    Mss,
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
    /// `EXT-X-START` on the endpoint's playlists (MediaPackage's `StartTag`), in place of the
    /// encoder's; none: the encoder's passes through.
    #[serde(default)]
    pub start_tag: Option<StartTag>,
    #[serde(default)]
    pub stream_selection: StreamSelection,
    #[serde(default)]
    pub encryption: Option<Encryption>,
    #[serde(default)]
    pub access: Access,
    /// MediaPackage's forced endpoint errors (`EndpointErrorConditions`): conditions under which
    /// manifests answer `endpoint_error_status` instead of a frozen or holed 200, so a CDN with
    /// origin failover switches to another origin.
    #[serde(default)]
    pub endpoint_errors: Vec<EndpointErrorCondition>,
    #[serde(default = "default_endpoint_error_status")]
    pub endpoint_error_status: u16,
    /// `stale_manifest`: no new segment for this many target durations.
    #[serde(default = "default_stale_target_durations")]
    pub stale_manifest_target_durations: u64,
    /// How ad breaks (SCTE-35 cues) are marked in HLS playlists.
    #[serde(default)]
    pub ad_markers: AdMarkers,
    /// Which cues are ad breaks (MediaPackage's `AdTriggers`).
    #[serde(default = "default_ad_triggers")]
    pub ad_triggers: Vec<AdTrigger>,
    /// How segmentation descriptors' delivery restrictions decide (MediaPackage's
    /// `AdsOnDeliveryRestrictions`).
    #[serde(default)]
    pub ads_on_delivery_restrictions: DeliveryRestrictions,
    /// `dash`: where new periods start besides discontinuities and key periods (MediaPackage's
    /// `PeriodTriggers`): `ads` = at each ad break's start and end.
    #[serde(default)]
    pub period_triggers: Vec<PeriodTrigger>,
    /// CEA-608 caption channels carried in the video (H.264 SEI), announced to players
    /// (MediaPackage's caption channel mapping): HLS `CLOSED-CAPTIONS`, DASH `Accessibility`.
    #[serde(default)]
    pub captions: Vec<CaptionChannel>,
}

/// One CEA-608 caption channel the encoder embeds in the video, as the manifests announce it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionChannel {
    /// 1..=4: CC1..CC4.
    pub channel: u8,
    /// ISO 639 language code (`eng`, `fr`).
    pub language: String,
    /// What players show in their captions menu; the language code when omitted.
    #[serde(default)]
    pub name: Option<String>,
}

impl CaptionChannel {
    /// `CC1`..`CC4`: HLS `INSTREAM-ID` and DASH's name of the channel.
    pub fn instream_id(&self) -> String {
        format!("CC{}", self.channel)
    }

    /// The name players list.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.language)
    }
}

/// MediaPackage's DASH `PeriodTriggers` this version offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodTrigger {
    /// A new period at each ad break's splice out and back in.
    Ads,
}

/// MediaPackage's ad marker modes (`AdMarkers`), in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdMarkers {
    /// No ad marker in the output.
    None,
    /// The encoder's marker tags as it wrote them.
    #[default]
    Passthrough,
    /// `EXT-X-CUE-OUT`, `EXT-X-CUE-OUT-CONT` (elapsed time), `EXT-OATCLS-SCTE35`, `EXT-X-ASSET`,
    /// `EXT-X-CUE-IN`, from the cues whatever their form at ingest.
    Scte35Enhanced,
    /// `EXT-X-DATERANGE` with `SCTE35-OUT` / `SCTE35-IN` (RFC 8216bis).
    Daterange,
}

/// A kind of cue that marks an ad break (MediaPackage's `AdTriggers`, snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdTrigger {
    SpliceInsert,
    Break,
    ProviderAdvertisement,
    DistributorAdvertisement,
    ProviderPlacementOpportunity,
    DistributorPlacementOpportunity,
    ProviderOverlayPlacementOpportunity,
    DistributorOverlayPlacementOpportunity,
    Program,
}

fn default_ad_triggers() -> Vec<AdTrigger> {
    vec![
        AdTrigger::SpliceInsert,
        AdTrigger::ProviderAdvertisement,
        AdTrigger::DistributorAdvertisement,
        AdTrigger::ProviderPlacementOpportunity,
        AdTrigger::DistributorPlacementOpportunity,
    ]
}

/// Which segmentation descriptors (by their delivery restrictions) are ads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryRestrictions {
    /// None is.
    None,
    /// Those with delivery restrictions.
    #[default]
    Restricted,
    /// Those without.
    Unrestricted,
    /// All.
    Both,
}

/// `EXT-X-START`: where players start in a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTag {
    /// Seconds from the start of the playlist (≥ 0) or, negative, back from its end.
    pub time_offset: f64,
    /// `PRECISE=YES`: start at exactly that time, not at the segment containing it.
    #[serde(default)]
    pub precise: bool,
}

impl StartTag {
    /// The tag line, without the line break.
    pub fn line(&self) -> String {
        let precise = if self.precise { ",PRECISE=YES" } else { "" };
        format!("#EXT-X-START:TIME-OFFSET={:.3}{precise}", self.time_offset)
    }
}

/// Which cues an endpoint marks, and how (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSettings {
    pub markers: AdMarkers,
    pub triggers: Vec<AdTrigger>,
    pub on_delivery_restrictions: DeliveryRestrictions,
    /// `dash`: a new period at each ad break's start and end (`period_triggers: ["ads"]`).
    pub periods_at_breaks: bool,
}

fn default_window() -> u64 {
    60
}

fn default_endpoint_error_status() -> u16 {
    404
}

fn default_stale_target_durations() -> u64 {
    3
}

/// A failover condition (MediaPackage's names, in snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointErrorCondition {
    /// The store received no new segment of the rendition for the configured time.
    StaleManifest,
    /// The window has a hole in time, or the rendition fell behind the channel's others.
    IncompleteManifest,
    /// The key of the current key period cannot be had. Keys are derived or configured at the
    /// edge, never fetched, so this never fires; accepted so MediaPackage settings carry over.
    MissingDrmKey,
}

/// What an endpoint answers instead of a manifest that would mislead a CDN (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointErrors {
    pub stale_manifest: bool,
    pub incomplete_manifest: bool,
    /// The status answered (400..=599).
    pub status: u16,
    /// `stale_manifest` after this many target durations without a new segment.
    pub stale_target_durations: u64,
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

/// What an endpoint produces: its format with the only encryption that fits it, so that an
/// impossible pair (AES-128 on DASH, cenc on TS) cannot be written.
#[derive(Debug, Clone)]
pub enum Packaging {
    /// HLS with the segments as ingested; whole-segment AES-128 when `aes_128` is set.
    Hls { aes_128: Option<Keys> },
    /// HLS with CMAF segments; common encryption of the samples when set.
    Cmaf {
        encryption: Option<CommonEncryption>,
    },
    /// MPEG-DASH; common encryption of the samples when set.
    Dash {
        encryption: Option<CommonEncryption>,
    },
    /// Microsoft Smooth Streaming; PIFF common encryption (`cenc`) of the samples when set.
    Mss {
        encryption: Option<CommonEncryption>,
    },
}

/// `cenc` or `cbcs` with its keys.
#[derive(Debug, Clone)]
pub struct CommonEncryption {
    pub scheme: Scheme,
    pub keys: Keys,
}

/// The keys of an encrypted endpoint, validated.
#[derive(Debug, Clone)]
pub struct Keys {
    /// A new key every this many seconds of program date time; 0: one key forever.
    pub rotation_seconds: u64,
    /// Fixed IV; `None`: the media sequence number (AES-128) or derived from the key (cbcs).
    pub constant_iv: Option<[u8; 16]>,
    pub material: KeyMaterial,
    pub token: KeyToken,
}

/// Where a period's key comes from.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// Key = first 16 bytes of HMAC-SHA256(secret, "{channel}/{endpoint}/{period}").
    Derived { secret: String },
    /// One fixed key.
    Static([u8; 16]),
}

/// A validated endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub channel: String,
    pub name: String,
    pub packaging: Packaging,
    /// Live window of manifests.
    pub manifest_window_seconds: u64,
    /// Viewers see the stream this much later than live.
    pub time_delay_seconds: u64,
    /// `EXT-X-PROGRAM-DATE-TIME` every this many seconds (and after each discontinuity); 0: none.
    pub program_date_time_interval_seconds: u64,
    /// `EXT-X-START` in place of the encoder's (`hls` and `cmaf` endpoints).
    pub start_tag: Option<StartTag>,
    pub stream_selection: StreamSelection,
    pub access: AccessRules,
    pub errors: EndpointErrors,
    pub ads: AdSettings,
    /// CEA-608 caption channels to announce (validated: distinct channels 1..=4).
    pub captions: Vec<CaptionChannel>,
}

impl Endpoint {
    /// The output format.
    pub fn format(&self) -> Format {
        match self.packaging {
            Packaging::Hls { .. } => Format::Hls,
            Packaging::Cmaf { .. } => Format::Cmaf,
            Packaging::Dash { .. } => Format::Dash,
            Packaging::Mss { .. } => Format::Mss,
        }
    }

    /// The keys, on an encrypted endpoint of any format.
    pub fn keys(&self) -> Option<&Keys> {
        match &self.packaging {
            Packaging::Hls { aes_128 } => aes_128.as_ref(),
            Packaging::Cmaf { encryption }
            | Packaging::Dash { encryption }
            | Packaging::Mss { encryption } => encryption.as_ref().map(|e| &e.keys),
        }
    }

    /// Common encryption (`cmaf`, `dash` and `mss` endpoints).
    pub fn common_encryption(&self) -> Option<&CommonEncryption> {
        match &self.packaging {
            Packaging::Hls { .. } => None,
            Packaging::Cmaf { encryption }
            | Packaging::Dash { encryption }
            | Packaging::Mss { encryption } => encryption.as_ref(),
        }
    }
}

/// The validated configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// 16 hex digits of SHA-256 of the configuration's JSON: what the filter made under one
    /// configuration (keys, IVs, formats) is never served under another.
    pub fingerprint: String,
    pub store: StoreConfig,
    pub cache: CacheConfig,
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
        let mut settings = Self::validate(raw)?;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
        settings.fingerprint = hex::encode(&digest[..8]);
        Ok(settings)
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
        if raw.store.playlist_cache_ms > 10_000 {
            return Err(err(
                "store.playlist_cache_ms",
                "must be 0..=10000: a live playlist older than that misses segments",
            ));
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
        if raw.cache.megabytes > 16_384 {
            return Err(err("cache.megabytes", "must be 0..=16384"));
        }
        Ok(Settings {
            fingerprint: String::new(),
            store: raw.store,
            cache: raw.cache,
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
    if !cfg.period_triggers.is_empty() && cfg.format != Format::Dash {
        return Err(err(
            format!("{f}.period_triggers"),
            "is for dash endpoints (HLS has no periods)",
        ));
    }
    if let Some(t) = cfg.start_tag {
        if matches!(cfg.format, Format::Dash | Format::Mss) {
            return Err(err(
                format!("{f}.start_tag"),
                "is for hls and cmaf endpoints (EXT-X-START); DASH and Smooth Streaming players choose their own start",
            ));
        }
        if !(t.time_offset.is_finite() && t.time_offset.abs() <= 86_400.0) {
            return Err(err(
                format!("{f}.start_tag.time_offset"),
                "must be a number of seconds in -86400..=86400 (negative: back from the live edge)",
            ));
        }
    }
    let s = &cfg.stream_selection;
    if s.min_video_bits_per_second > s.max_video_bits_per_second {
        return Err(err(
            format!("{f}.stream_selection"),
            "min_video_bits_per_second is above max_video_bits_per_second",
        ));
    }
    if !(400..=599).contains(&cfg.endpoint_error_status) {
        return Err(err(
            format!("{f}.endpoint_error_status"),
            "must be an error status, 400..=599 (a CDN fails over on errors, 404 by default)",
        ));
    }
    if !(1..=100).contains(&cfg.stale_manifest_target_durations) {
        return Err(err(
            format!("{f}.stale_manifest_target_durations"),
            "must be 1..=100",
        ));
    }
    captions(f, cfg.format, &cfg.captions)?;
    let errors = EndpointErrors {
        stale_manifest: cfg
            .endpoint_errors
            .contains(&EndpointErrorCondition::StaleManifest),
        incomplete_manifest: cfg
            .endpoint_errors
            .contains(&EndpointErrorCondition::IncompleteManifest),
        status: cfg.endpoint_error_status,
        stale_target_durations: cfg.stale_manifest_target_durations,
    };
    let ads = AdSettings {
        markers: cfg.ad_markers,
        triggers: cfg.ad_triggers,
        on_delivery_restrictions: cfg.ads_on_delivery_restrictions,
        periods_at_breaks: cfg.period_triggers.contains(&PeriodTrigger::Ads),
    };
    Ok(Endpoint {
        channel: channel.to_owned(),
        name: name.to_owned(),
        errors,
        ads,
        packaging: packaging(f, cfg.format, cfg.encryption)?,
        manifest_window_seconds: cfg.manifest_window_seconds,
        time_delay_seconds: cfg.time_delay_seconds,
        program_date_time_interval_seconds: cfg.program_date_time_interval_seconds,
        start_tag: cfg.start_tag,
        stream_selection: cfg.stream_selection,
        access: access_rules(f, cfg.access)?,
        captions: cfg.captions,
    })
}

/// Refuses caption channels players could not be told of: a channel outside CC1..CC4 or named
/// twice, a language that is no ISO 639 code, a name with a quote (it goes into an HLS
/// attribute), captions on mss (Smooth Streaming manifests have no caption signal).
fn captions(f: &str, format: Format, channels: &[CaptionChannel]) -> Result<(), ConfigError> {
    if !channels.is_empty() && format == Format::Mss {
        return Err(err(
            format!("{f}.captions"),
            "is for hls, cmaf and dash endpoints: Smooth Streaming manifests do not announce CEA-608 captions (players find them in the video)",
        ));
    }
    for (i, c) in channels.iter().enumerate() {
        let cf = format!("{f}.captions[{i}]");
        if !(1..=4).contains(&c.channel) {
            return Err(err(format!("{cf}.channel"), "must be 1..=4 (CC1..CC4)"));
        }
        if channels[..i].iter().any(|o| o.channel == c.channel) {
            return Err(err(
                format!("{cf}.channel"),
                "names a channel already mapped",
            ));
        }
        let l = &c.language;
        if !((2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase())) {
            return Err(err(
                format!("{cf}.language"),
                "must be an ISO 639 code: 2 or 3 lower-case letters (eng, fr)",
            ));
        }
        if let Some(n) = &c.name
            && (n.is_empty() || n.len() > 64 || n.chars().any(|ch| ch == '"' || ch.is_control()))
        {
            return Err(err(
                format!("{cf}.name"),
                "must be 1..=64 characters without quotes or control characters",
            ));
        }
    }
    Ok(())
}

/// The format with its encryption, refusing the pairs that do not fit.
fn packaging(
    f: &str,
    format: Format,
    encryption: Option<Encryption>,
) -> Result<Packaging, ConfigError> {
    let Some(e) = encryption else {
        return Ok(match format {
            Format::Hls => Packaging::Hls { aes_128: None },
            Format::Cmaf => Packaging::Cmaf { encryption: None },
            Format::Dash => Packaging::Dash { encryption: None },
            Format::Mss => Packaging::Mss { encryption: None },
        });
    };
    let method = e.method;
    let keys = keys(&format!("{f}.encryption"), e)?;
    let common = |scheme| {
        Some(CommonEncryption {
            scheme,
            keys: keys.clone(),
        })
    };
    Ok(match (format, method) {
        (Format::Hls, EncryptionMethod::Aes128) => Packaging::Hls {
            aes_128: Some(keys.clone()),
        },
        (Format::Cmaf, EncryptionMethod::Cenc) => Packaging::Cmaf {
            encryption: common(Scheme::Cenc),
        },
        (Format::Cmaf, EncryptionMethod::Cbcs) => Packaging::Cmaf {
            encryption: common(Scheme::Cbcs),
        },
        (Format::Dash, EncryptionMethod::Cenc) => Packaging::Dash {
            encryption: common(Scheme::Cenc),
        },
        (Format::Dash, EncryptionMethod::Cbcs) => Packaging::Dash {
            encryption: common(Scheme::Cbcs),
        },
        (Format::Mss, EncryptionMethod::Cenc) if keys.rotation_seconds > 0 => {
            return Err(err(
                format!("{f}.encryption.key_rotation_interval_seconds"),
                "must be 0 on a Smooth Streaming endpoint: its manifest has one ProtectionHeader (one key id) for the whole presentation",
            ));
        }
        (Format::Mss, EncryptionMethod::Cenc) => Packaging::Mss {
            encryption: common(Scheme::Cenc),
        },
        (Format::Mss, _) => {
            return Err(err(
                format!("{f}.encryption.method"),
                "Smooth Streaming (format \"mss\") is encrypted with PIFF common encryption: \"cenc\" (AES-CTR); \"cbcs\" and \"aes-128\" do not exist there",
            ));
        }
        _ => {
            return Err(err(
                format!("{f}.encryption.method"),
                "\"aes-128\" encrypts whole MPEG-TS segments (format \"hls\"); \"cenc\" and \"cbcs\" encrypt CMAF samples (formats \"cmaf\" and \"dash\"; \"mss\" takes \"cenc\")",
            ));
        }
    })
}

fn keys(ef: &str, e: Encryption) -> Result<Keys, ConfigError> {
    if e.key_rotation_interval_seconds > 0 && e.key_rotation_interval_seconds < 2 {
        return Err(err(
            format!("{ef}.key_rotation_interval_seconds"),
            "must be 0 (no rotation) or at least 2",
        ));
    }
    let constant_iv = match &e.constant_iv {
        Some(iv) => Some(hex16(&format!("{ef}.constant_iv"), iv)?),
        None => None,
    };
    let material = match e.key {
        KeySource::Derived { secret } if secret.len() < 16 => {
            return Err(err(
                format!("{ef}.key.derived.secret"),
                "must be at least 16 characters",
            ));
        }
        KeySource::Derived { secret } => KeyMaterial::Derived { secret },
        KeySource::Static { key_hex } => {
            KeyMaterial::Static(hex16(&format!("{ef}.key.static.key_hex"), &key_hex)?)
        }
    };
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
    Ok(Keys {
        rotation_seconds: e.key_rotation_interval_seconds,
        constant_iv,
        material,
        token: e.key_token,
    })
}

/// The endpoint's access rules, built from its `access` section.
fn access_rules(f: &str, access: Access) -> Result<AccessRules, ConfigError> {
    let mut cdn_identifier = None;
    if let Some(cdn) = access.cdn_identifier {
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
        cdn_identifier = Some(CdnIdentifierRule {
            header: cdn.header.to_ascii_lowercase(),
            secrets: cdn.secrets,
        });
    }
    let mut allowlist = Vec::new();
    for (i, c) in access.ip_allowlist.iter().enumerate() {
        allowlist.push(Cidr::parse(c).ok_or_else(|| {
            err(
                format!("{f}.access.ip_allowlist[{i}]"),
                format!("'{c}' is not a CIDR (203.0.113.0/24, 2001:db8::/32) or an IP address"),
            )
        })?);
    }
    Ok(AccessRules {
        cdn_identifier,
        allowlist,
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
        assert_eq!(secure.access.allowlist.len(), 2);
        assert_eq!(s.channels["news"]["hls"].time_delay_seconds, 0);
        assert_eq!(s.store.timeout_ms, 2000);
        assert_eq!(s.fingerprint.len(), 16);
        let other = Settings::from_json(EXAMPLE.replace("60", "61").as_bytes()).unwrap();
        assert_ne!(other.fingerprint, s.fingerprint, "another configuration");
    }

    fn field_of(json: &str) -> String {
        Settings::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn caption_channels_are_checked() {
        let with = |format: &str, captions: &str| {
            format!(
                r#"{{ "store": {{ "cluster": "s" }}, "channels": {{ "news": {{ "endpoints": {{
                  "e": {{ "format": "{format}", "captions": {captions} }} }} }} }} }}"#
            )
        };
        let ok = Settings::from_json(
            with("hls", r#"[{"channel": 1, "language": "eng", "name": "English"}, {"channel": 4, "language": "fr"}]"#)
                .as_bytes(),
        )
        .unwrap();
        let c = &ok.channels["news"]["e"].captions;
        assert_eq!(
            (c[0].instream_id(), c[1].display_name()),
            ("CC1".into(), "fr")
        );
        for (format, captions, field) in [
            (
                "hls",
                r#"[{"channel": 5, "language": "eng"}]"#,
                "captions[0].channel",
            ),
            (
                "hls",
                r#"[{"channel": 1, "language": "eng"}, {"channel": 1, "language": "fr"}]"#,
                "captions[1].channel",
            ),
            (
                "dash",
                r#"[{"channel": 1, "language": "English"}]"#,
                "captions[0].language",
            ),
            (
                "cmaf",
                r#"[{"channel": 1, "language": "en", "name": "a\"b"}]"#,
                "captions[0].name",
            ),
            ("mss", r#"[{"channel": 1, "language": "en"}]"#, "captions"),
            ("hls", r#"[{"channel": 1, "lang": "en"}]"#, "lang"),
        ] {
            let e = field_of(&with(format, captions));
            assert!(e.contains(field), "{format} {captions}: {e}");
        }
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
        // Smooth Streaming: PIFF cenc, one key for the presentation.
        let mss = EXAMPLE.replace(
            "\"format\": \"hls\", \"manifest_window_seconds\": 60, \"time",
            "\"format\": \"mss\", \"manifest_window_seconds\": 60, \"time",
        );
        for method in ["aes-128", "cbcs"] {
            let e = field_of(&mss.replace("aes-128", method));
            assert!(e.contains("encryption.method") && e.contains("PIFF"), "{e}");
        }
        let e = field_of(&mss.replace("aes-128", "cenc"));
        assert!(
            e.contains("encryption.key_rotation_interval_seconds")
                && e.contains("ProtectionHeader"),
            "{e}"
        );
        let one_key = mss.replace("aes-128", "cenc").replace(
            "\"key_rotation_interval_seconds\": 60",
            "\"key_rotation_interval_seconds\": 0",
        );
        assert!(Settings::from_json(one_key.as_bytes()).is_ok());
        let e = field_of(&EXAMPLE.replace("\"cluster\": \"edgepack_store\"", "\"cluster\": \"\""));
        assert!(e.contains("store.cluster"), "{e}");
        let e = field_of("{");
        assert!(e.contains("line 1"), "{e}");
    }
}
