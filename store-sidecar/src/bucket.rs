//! The S3-compatible bucket of `[storage] kind = "s3"` (AWS S3, MinIO, Ceph RGW, R2, GCS's S3
//! API), through the `object_store` crate. What lives where is described in
//! [`crate::channel`]'s `replica` module; this is only the I/O.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::StorageConfig;
use crate::metrics::BucketLabels;

/// A bucket request that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BucketError {
    pub message: String,
    pub kind: BucketErrorKind,
}

/// What kind of failure: the viewer's answer depends on it (404, 504, 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketErrorKind {
    NotFound,
    TimedOut,
    Other,
}

impl BucketError {
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: BucketErrorKind::Other,
        }
    }

    fn from_store(what: &str, e: &object_store::Error) -> Self {
        let message = format!("{what}: {e}");
        // reqwest says so in the error's sources, not in its message.
        let debug = format!("{e:?}").to_ascii_lowercase();
        let kind = if matches!(e, object_store::Error::NotFound { .. }) {
            BucketErrorKind::NotFound
        } else if debug.contains("timed out") || debug.contains("timeout") {
            BucketErrorKind::TimedOut
        } else {
            BucketErrorKind::Other
        };
        Self { message, kind }
    }
}

/// A bucket and the key prefix the store lives under.
#[derive(Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `edgepack_store_bucket_requests`, by operation.
    counts: Family<BucketLabels, Counter>,
}

/// The keys of an AWS shared credentials file's section `profile` (`[default]` by default).
fn read_credentials(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let mut section = String::new();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        if section != profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some((id?, secret?, token))
}

impl Bucket {
    /// The bucket `[storage]` names; credentials from the file it names, else the `AWS_*`
    /// environment.
    pub fn open(
        cfg: &StorageConfig,
        counts: Family<BucketLabels, Counter>,
    ) -> Result<Self, BucketError> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(cfg.bucket.clone().unwrap_or_default())
            // MinIO-like servers: the bucket in the path, not the host name.
            .with_virtual_hosted_style_request(false)
            .with_allow_http(cfg.allow_http)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(cfg.allow_http)
                    .with_timeout(Duration::from_secs(cfg.request_timeout_seconds))
                    .with_connect_timeout(Duration::from_secs(cfg.request_timeout_seconds)),
            )
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(cfg.request_timeout_seconds),
                ..Default::default()
            });
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            b = b.with_region("us-east-1");
        }
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(path) = &cfg.credentials_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                BucketError::other(format!(
                    "cannot read storage.credentials_file {}: {e}",
                    path.display()
                ))
            })?;
            let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
            let (id, secret, token) = read_credentials(&text, &profile).ok_or_else(|| {
                BucketError::other(format!(
                    "storage.credentials_file {}: no [{profile}] section with aws_access_key_id and aws_secret_access_key",
                    path.display()
                ))
            })?;
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = token {
                b = b.with_token(t);
            }
        }
        let store = b
            .build()
            .map_err(|e| BucketError::from_store("cannot use the bucket", &e))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
            counts,
        })
    }

    fn count(&self, op: &str) {
        self.counts
            .get_or_create(&BucketLabels { op: op.to_owned() })
            .inc();
    }

    fn key(&self, channel: &str, rest: &str) -> Path {
        Path::from(format!("{}{channel}/{rest}", self.prefix))
    }

    fn media_key(&self, channel: &str, hash: &str) -> Path {
        self.key(channel, &format!("media/{hash}"))
    }

    fn log_key(&self, channel: &str, n: u64) -> Path {
        self.key(channel, &format!("log/{n:020}"))
    }

    /// Stores a segment or initialization segment under its content hash.
    pub async fn put_media(
        &self,
        channel: &str,
        hash: &str,
        body: Bytes,
    ) -> Result<(), BucketError> {
        self.count("media_put");
        self.store
            .put(&self.media_key(channel, hash), PutPayload::from_bytes(body))
            .await
            .map(|_| ())
            .map_err(|e| BucketError::from_store("storing the upload", &e))
    }

    /// A segment or initialization segment by content hash.
    pub async fn get_media(&self, channel: &str, hash: &str) -> Result<Bytes, BucketError> {
        self.count("media_get");
        let got = self
            .store
            .get(&self.media_key(channel, hash))
            .await
            .map_err(|e| BucketError::from_store("reading a segment", &e))?;
        got.bytes()
            .await
            .map_err(|e| BucketError::from_store("reading a segment", &e))
    }

    /// Deletes media no retained entry uses; a missing object is not an error.
    pub async fn delete_media(&self, channel: &str, hash: &str) -> Result<(), BucketError> {
        self.count("delete");
        match self.store.delete(&self.media_key(channel, hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BucketError::from_store("deleting pruned media", &e)),
        }
    }

    /// Copies stored media to `key` (a harvest's package; not under the store's prefix).
    pub async fn copy_media(
        &self,
        channel: &str,
        hash: &str,
        key: &str,
    ) -> Result<(), BucketError> {
        self.count("copy");
        self.store
            .copy(&self.media_key(channel, hash), &Path::from(key))
            .await
            .map_err(|e| BucketError::from_store("copying a segment", &e))
    }

    /// Writes a text object at `key` (a harvest's playlists).
    pub async fn put_text(&self, key: &str, text: String) -> Result<(), BucketError> {
        self.count("put");
        self.store
            .put(&Path::from(key), PutPayload::from(text.into_bytes()))
            .await
            .map(|_| ())
            .map_err(|e| BucketError::from_store("writing a playlist", &e))
    }

    /// Whether an object exists at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, BucketError> {
        self.count("head");
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(BucketError::from_store("looking for the destination", &e)),
        }
    }

    /// Writes the snapshot of the index at log position `n`.
    pub async fn put_snapshot(
        &self,
        channel: &str,
        n: u64,
        body: Vec<u8>,
    ) -> Result<(), BucketError> {
        self.count("snapshot_put");
        self.store
            .put(
                &self.key(channel, &format!("snapshot/{n:020}")),
                PutPayload::from(body),
            )
            .await
            .map(|_| ())
            .map_err(|e| BucketError::from_store("writing an index snapshot", &e))
    }

    /// The log position of the newest snapshot (a LIST).
    pub async fn newest_snapshot(&self, channel: &str) -> Result<Option<u64>, BucketError> {
        use futures_util::TryStreamExt as _;
        self.count("snapshot_list");
        let prefix = self.key(channel, "snapshot");
        let listed: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| BucketError::from_store("listing index snapshots", &e))?;
        Ok(listed
            .iter()
            .filter_map(|m| m.location.filename()?.parse::<u64>().ok())
            .max())
    }

    /// The newest snapshot: its log position and body.
    pub async fn latest_snapshot(
        &self,
        channel: &str,
    ) -> Result<Option<(u64, Bytes)>, BucketError> {
        let Some(n) = self.newest_snapshot(channel).await? else {
            return Ok(None);
        };
        self.count("snapshot_get");
        let got = self
            .store
            .get(&self.key(channel, &format!("snapshot/{n:020}")))
            .await
            .map_err(|e| BucketError::from_store("reading an index snapshot", &e))?;
        let body = got
            .bytes()
            .await
            .map_err(|e| BucketError::from_store("reading an index snapshot", &e))?;
        Ok(Some((n, body)))
    }

    /// Deletes log objects `from..to` and the snapshot at `from` (superseded by a newer one).
    pub async fn delete_log_before(
        &self,
        channel: &str,
        from: u64,
        to: u64,
    ) -> Result<(), BucketError> {
        for n in from..to {
            self.count("delete");
            match self.store.delete(&self.log_key(channel, n)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(BucketError::from_store("deleting old index log", &e)),
            }
        }
        if from > 0 {
            self.count("delete");
            match self
                .store
                .delete(&self.key(channel, &format!("snapshot/{from:020}")))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(BucketError::from_store("deleting an old snapshot", &e)),
            }
        }
        Ok(())
    }

    /// Log object `n`, if it exists.
    pub async fn read_log(&self, channel: &str, n: u64) -> Result<Option<Bytes>, BucketError> {
        self.count("log_get");
        match self.store.get(&self.log_key(channel, n)).await {
            Ok(got) => got
                .bytes()
                .await
                .map(Some)
                .map_err(|e| BucketError::from_store("reading the index log", &e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BucketError::from_store("reading the index log", &e)),
        }
    }

    /// Creates log object `n` unless it exists (`If-None-Match: *`); false when another writer
    /// created it first.
    pub async fn create_log(
        &self,
        channel: &str,
        n: u64,
        body: Vec<u8>,
    ) -> Result<bool, BucketError> {
        self.count("log_put");
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.log_key(channel, n), PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(BucketError::from_store("writing the index log", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_profile_section() {
        let text = "[other]\naws_access_key_id = X\naws_secret_access_key = Y\n\n[default]\naws_access_key_id=AK\naws_secret_access_key = SK\n";
        assert_eq!(
            read_credentials(text, "default"),
            Some(("AK".into(), "SK".into(), None))
        );
        assert_eq!(
            read_credentials(text, "other").map(|c| c.0),
            Some("X".into())
        );
        assert_eq!(read_credentials(text, "missing"), None);
        assert_eq!(
            read_credentials("[default]\naws_access_key_id=A\n", "default"),
            None
        );
    }
}
