//! Encoder authentication: HTTP Digest (RFC 7616: SHA-256 and MD5, `qop=auth`) and Basic.
//!
//! Nonces are stateless: `hex(issued_at_secs) "." hex(HMAC-SHA256(server_secret, issued_at))`, so
//! any number of uploads can authenticate without the server remembering anything, and an expired
//! (or pre-restart) nonce with otherwise correct credentials is answered `stale=true`, which makes
//! the client retry with the fresh nonce instead of asking for a password.
//!
//! Replays are refused: the server remembers, for each (nonce, cnonce) that authenticated, the
//! highest `nc` (RFC 7616 §3.4: the client counts its requests under a nonce), until the nonce
//! expires. A request whose `nc` is not above it — a captured request sent again — is answered
//! like an expired nonce, so an honest client just retries with a fresh one.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

use crate::config::Credentials;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks nonces; one per process.
pub struct Authenticator {
    secret: [u8; 32],
    realm: String,
    nonce_ttl_secs: u64,
    opaque: String,
    /// (nonce, cnonce) → (highest nc seen, when the nonce was issued).
    counts: std::sync::Mutex<std::collections::HashMap<(String, String), (u32, u64)>>,
}

/// Past this many remembered (nonce, cnonce) pairs, expired ones are dropped; past twice as
/// many, the oldest half. Only requests with the right password are remembered.
const MAX_COUNTS: usize = 1 << 16;

/// 401 reason when no credentials were sent: the first round of every Digest exchange.
pub const CHALLENGE_REASON: &str = "credentials required (Digest or Basic)";
/// 401 reason when a Digest nonce expired: the client retries with the new one.
pub const STALE_REASON: &str = "nonce expired; retry with the new nonce";

/// Why a request was not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// The header could not be parsed.
    Malformed(&'static str),
    /// Wrong user, password or digest.
    Rejected,
    /// Credentials were right but the nonce expired or is not ours: retry with a new one.
    Stale,
    /// Credentials were right but this (nonce, cnonce, nc) was used before: a replay.
    Replayed,
}

impl AuthFailure {
    /// Plain-text reason for the 401 body and the log line.
    pub fn reason(&self) -> String {
        match self {
            AuthFailure::Missing => CHALLENGE_REASON.to_owned(),
            AuthFailure::Malformed(why) => format!("malformed Authorization header: {why}"),
            AuthFailure::Rejected => "wrong username or password for this input".to_owned(),
            AuthFailure::Stale => STALE_REASON.to_owned(),
            AuthFailure::Replayed => {
                "nonce count (nc) already used with this nonce and cnonce: a replay is refused; retry with the new nonce".to_owned()
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// Constant-time equality (`subtle`): the time taken does not depend on where `a` and `b` differ.
/// Slices of different lengths are unequal at once, so compare fixed-length values (digests,
/// MACs) when the length itself is secret.
fn ct_eq(a: &[u8], b: &[u8]) -> Choice {
    a.ct_eq(b)
}

/// The username an `Authorization` header presents (Basic or Digest), unverified, for the access
/// log: never the password. At most 64 characters.
pub fn presented_user(header: Option<&str>) -> Option<String> {
    let (scheme, rest) = header?.trim().split_once(' ')?;
    let user = if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        text.split_once(':')?.0.to_owned()
    } else if scheme.eq_ignore_ascii_case("digest") {
        parse_params(rest)?
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("username"))?
            .1
    } else {
        return None;
    };
    Some(user.chars().take(64).collect())
}

/// Constant-time equality of two strings of any lengths (usernames, passwords): their SHA-256
/// digests are compared, so neither the bytes nor the length of the configured one shows.
fn ct_eq_secret(presented: &str, configured: &str) -> Choice {
    ct_eq(
        &Sha256::digest(presented.as_bytes()),
        &Sha256::digest(configured.as_bytes()),
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    /// A new authenticator with a random secret (nonces from a previous process are stale).
    pub fn new(realm: &str, nonce_ttl_secs: u64) -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        let mut opaque = [0u8; 16];
        getrandom::fill(&mut opaque)?;
        Ok(Self {
            secret,
            realm: realm.to_owned(),
            nonce_ttl_secs,
            opaque: hex::encode(opaque),
            counts: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn mac(&self, issued: u64) -> Vec<u8> {
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            // HMAC takes keys of any length; this cannot happen, and an empty MAC fails closed.
            Err(_) => return Vec::new(),
        };
        mac.update(&issued.to_be_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    fn nonce_at(&self, issued: u64) -> String {
        format!("{issued:x}.{}", hex::encode(self.mac(issued)))
    }

    /// When the nonce was issued, if it is ours and not expired.
    fn nonce_issued(&self, nonce: &str, now: u64) -> Option<u64> {
        let (ts, mac) = nonce.split_once('.')?;
        let (Ok(issued), Ok(mac)) = (u64::from_str_radix(ts, 16), hex::decode(mac)) else {
            return None;
        };
        let expected = self.mac(issued);
        (!expected.is_empty()
            && bool::from(ct_eq(&expected, &mac))
            && issued <= now
            && now - issued <= self.nonce_ttl_secs)
            .then_some(issued)
    }

    /// Records `nc` for (nonce, cnonce); false when it is not above the highest seen (a replay).
    fn count(&self, nonce: &str, cnonce: &str, nc: u32, issued: u64, now: u64) -> bool {
        let mut counts = match self.counts.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if counts.len() >= MAX_COUNTS {
            let ttl = self.nonce_ttl_secs;
            counts.retain(|_, (_, at)| now.saturating_sub(*at) <= ttl);
        }
        if counts.len() >= 2 * MAX_COUNTS {
            let mut ages: Vec<u64> = counts.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            let median = ages[ages.len() / 2];
            counts.retain(|_, (_, at)| *at > median);
        }
        let entry = counts
            .entry((nonce.to_owned(), cnonce.to_owned()))
            .or_insert((0, issued));
        if nc <= entry.0 {
            return false;
        }
        entry.0 = nc;
        true
    }

    /// The `WWW-Authenticate` values of a 401, strongest first. ffmpeg keeps the last Digest
    /// challenge it parses and understands only MD5, so MD5 comes after SHA-256; Basic is last.
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        let nonce = self.nonce_at(now_secs());
        let stale = if stale { ", stale=true" } else { "" };
        let mut out = Vec::with_capacity(3);
        for alg in ["SHA-256", "MD5"] {
            out.push(format!(
                "Digest realm=\"{}\", qop=\"auth\", algorithm={alg}, nonce=\"{nonce}\", opaque=\"{}\"{stale}",
                self.realm, self.opaque
            ));
        }
        out.push(format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm));
        out
    }

    /// Checks an `Authorization` header for `method` and the request target `uri` (path and
    /// query, exactly as sent) against the input's credentials.
    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        uri: &str,
        creds: &Credentials,
    ) -> Result<(), AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?.trim();
        let (scheme, rest) = header
            .split_once(' ')
            .ok_or(AuthFailure::Malformed("no scheme"))?;
        if scheme.eq_ignore_ascii_case("basic") {
            self.verify_basic(rest.trim(), creds)
        } else if scheme.eq_ignore_ascii_case("digest") {
            self.verify_digest(rest, method, uri, creds, now_secs())
        } else {
            Err(AuthFailure::Malformed("scheme must be Digest or Basic"))
        }
    }

    fn verify_basic(&self, token: &str, creds: &Credentials) -> Result<(), AuthFailure> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| AuthFailure::Malformed("Basic credentials are not base64"))?;
        let text = String::from_utf8(raw)
            .map_err(|_| AuthFailure::Malformed("Basic credentials are not UTF-8"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or(AuthFailure::Malformed("Basic credentials lack ':'"))?;
        // Both compared, whichever is wrong: the time taken does not say which.
        let ok = ct_eq_secret(user, &creds.username) & ct_eq_secret(pass, &creds.password);
        if bool::from(ok) {
            Ok(())
        } else {
            Err(AuthFailure::Rejected)
        }
    }

    fn verify_digest(
        &self,
        params: &str,
        method: &str,
        uri: &str,
        creds: &Credentials,
        now: u64,
    ) -> Result<(), AuthFailure> {
        let p = parse_params(params).ok_or(AuthFailure::Malformed("bad Digest parameter list"))?;
        let get = |k: &str| {
            p.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let username = get("username").ok_or(AuthFailure::Malformed("Digest without username"))?;
        let realm = get("realm").ok_or(AuthFailure::Malformed("Digest without realm"))?;
        let nonce = get("nonce").ok_or(AuthFailure::Malformed("Digest without nonce"))?;
        let duri = get("uri").ok_or(AuthFailure::Malformed("Digest without uri"))?;
        let response = get("response").ok_or(AuthFailure::Malformed("Digest without response"))?;
        let alg = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(_) => return Err(AuthFailure::Malformed("algorithm must be MD5 or SHA-256")),
        };
        if get("qop").is_some_and(|q| !q.eq_ignore_ascii_case("auth")) {
            return Err(AuthFailure::Malformed("qop must be auth"));
        }
        let qop = get("qop").ok_or(AuthFailure::Malformed("qop=auth is required"))?;
        let nc = get("nc").ok_or(AuthFailure::Malformed("qop=auth without nc"))?;
        let cnonce = get("cnonce").ok_or(AuthFailure::Malformed("qop=auth without cnonce"))?;
        if duri != uri {
            return Err(AuthFailure::Malformed(
                "Digest uri does not match the request target",
            ));
        }
        // The response is computed and compared whether or not the username is right, and the
        // three checks are combined without short-circuit: the time taken does not say which
        // one failed. The username must be checked on its own: HA1 takes the username the
        // client sent, so a response made with the right password under another name would
        // otherwise pass. (The realm is public: it is in every challenge.)
        let ha1 = alg.hash(&format!("{username}:{realm}:{}", creds.password));
        let ha2 = alg.hash(&format!("{method}:{duri}"));
        let expected = alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"));
        let ok = ct_eq_secret(username, &creds.username)
            & ct_eq(
                expected.as_bytes(),
                response.to_ascii_lowercase().as_bytes(),
            )
            & Choice::from(u8::from(realm == self.realm));
        if !bool::from(ok) {
            return Err(AuthFailure::Rejected);
        }
        let Some(issued) = self.nonce_issued(nonce, now) else {
            return Err(AuthFailure::Stale);
        };
        let nc = u32::from_str_radix(nc, 16)
            .map_err(|_| AuthFailure::Malformed("nc must be 8 hex digits"))?;
        if !self.count(nonce, cnonce, nc, issued, now) {
            return Err(AuthFailure::Replayed);
        }
        Ok(())
    }
}

/// Parses `k=v, k="quoted, v"` lists; `None` when malformed.
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        if key.is_empty() || key.contains([',', ' ', '"']) {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &q[end? + 1..];
            value = v;
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            username: "enc1".into(),
            password: "s3cret".into(),
        }
    }

    fn digest_header(a: &Authenticator, alg: &str, nonce: &str, pass: &str, uri: &str) -> String {
        digest_header_nc(
            a,
            alg,
            nonce,
            pass,
            uri,
            &format!("c-{alg}-{pass}-{uri}"),
            1,
        )
    }

    fn digest_header_nc(
        a: &Authenticator,
        alg: &str,
        nonce: &str,
        pass: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let algo = if alg == "MD5" {
            Algorithm::Md5
        } else {
            Algorithm::Sha256
        };
        let ha1 = algo.hash(&format!("enc1:{}:{pass}", a.realm));
        let ha2 = algo.hash(&format!("PUT:{uri}"));
        let resp = algo.hash(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"enc1\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={alg}, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\", response=\"{resp}\"",
            a.realm
        )
    }

    #[test]
    fn digest_md5_and_sha256_accept_right_and_reject_wrong() {
        let a = Authenticator::new("edgepack", 300).unwrap();
        let nonce = a.nonce_at(now_secs());
        let uri = "/in/v1/news/1/a.ts";
        for alg in ["MD5", "SHA-256"] {
            let h = digest_header(&a, alg, &nonce, "s3cret", uri);
            assert_eq!(a.verify(Some(&h), "PUT", uri, &creds()), Ok(()));
            let h = digest_header(&a, alg, &nonce, "wrong", uri);
            assert_eq!(
                a.verify(Some(&h), "PUT", uri, &creds()),
                Err(AuthFailure::Rejected)
            );
            // A digest made for another path must not authorize this one.
            let h = digest_header(&a, alg, &nonce, "s3cret", "/in/v1/news/1/b.ts");
            assert!(a.verify(Some(&h), "PUT", uri, &creds()).is_err());
        }
    }

    /// #16 §3: a captured Digest request sent again is refused; the client's next count under
    /// the same nonce and another client's count 1 (its own cnonce) are not.
    #[test]
    fn a_replayed_nonce_count_is_refused() {
        let a = Authenticator::new("edgepack", 300).unwrap();
        let nonce = a.nonce_at(now_secs());
        let uri = "/in/v1/news/1/a.ts";
        let first = digest_header_nc(&a, "MD5", &nonce, "s3cret", uri, "c1", 1);
        assert_eq!(a.verify(Some(&first), "PUT", uri, &creds()), Ok(()));
        assert_eq!(
            a.verify(Some(&first), "PUT", uri, &creds()),
            Err(AuthFailure::Replayed)
        );
        let second = digest_header_nc(&a, "MD5", &nonce, "s3cret", uri, "c1", 2);
        assert_eq!(a.verify(Some(&second), "PUT", uri, &creds()), Ok(()));
        let back = digest_header_nc(&a, "MD5", &nonce, "s3cret", uri, "c1", 1);
        assert_eq!(
            a.verify(Some(&back), "PUT", uri, &creds()),
            Err(AuthFailure::Replayed)
        );
        let other_client = digest_header_nc(&a, "MD5", &nonce, "s3cret", uri, "c2", 1);
        assert_eq!(a.verify(Some(&other_client), "PUT", uri, &creds()), Ok(()));
        // A wrong password is rejected before anything is remembered.
        let wrong = digest_header_nc(&a, "MD5", &nonce, "nope", uri, "c3", 1);
        assert_eq!(
            a.verify(Some(&wrong), "PUT", uri, &creds()),
            Err(AuthFailure::Rejected)
        );
        assert_eq!(a.counts.lock().unwrap().len(), 2);
        let bad_nc = first.replace("nc=00000001", "nc=zz");
        assert!(matches!(
            a.verify(Some(&bad_nc), "PUT", uri, &creds()),
            Err(AuthFailure::Rejected | AuthFailure::Malformed(_))
        ));
    }

    #[test]
    fn expired_or_foreign_nonce_with_right_password_is_stale() {
        let a = Authenticator::new("edgepack", 300).unwrap();
        let uri = "/in/v1/news/1/a.ts";
        let old = a.nonce_at(now_secs() - 301);
        let h = digest_header(&a, "MD5", &old, "s3cret", uri);
        assert_eq!(
            a.verify(Some(&h), "PUT", uri, &creds()),
            Err(AuthFailure::Stale)
        );
        let other = Authenticator::new("edgepack", 300).unwrap();
        let foreign = other.nonce_at(now_secs());
        let h = digest_header(&a, "MD5", &foreign, "s3cret", uri);
        assert_eq!(
            a.verify(Some(&h), "PUT", uri, &creds()),
            Err(AuthFailure::Stale)
        );
        assert!(a.challenges(true)[0].contains("stale=true"));
    }

    #[test]
    fn basic() {
        let a = Authenticator::new("edgepack", 300).unwrap();
        let ok = base64::engine::general_purpose::STANDARD.encode("enc1:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("enc1:nope");
        assert_eq!(
            a.verify(Some(&format!("Basic {ok}")), "PUT", "/x", &creds()),
            Ok(())
        );
        assert_eq!(
            a.verify(Some(&format!("Basic {bad}")), "PUT", "/x", &creds()),
            Err(AuthFailure::Rejected)
        );
        assert_eq!(
            a.verify(None, "PUT", "/x", &creds()),
            Err(AuthFailure::Missing)
        );
        assert!(matches!(
            a.verify(Some("Basic !!!"), "PUT", "/x", &creds()),
            Err(AuthFailure::Malformed(_))
        ));
    }

    /// A response computed with the right password under another username (HA1 takes the name
    /// the client sends) or another realm is refused; so is a Basic pair with the wrong user.
    #[test]
    fn the_username_and_realm_are_checked_as_well_as_the_response() {
        let a = Authenticator::new("edgepack", 300).unwrap();
        let nonce = a.nonce_at(now_secs());
        let uri = "/in/v1/news/1/a.ts";
        let right = digest_header(&a, "SHA-256", &nonce, "s3cret", uri);
        assert_eq!(a.verify(Some(&right), "PUT", uri, &creds()), Ok(()));
        for (name, realm) in [("enc2", "edgepack"), ("enc", "edgepack"), ("enc1", "other")] {
            let algo = Algorithm::Sha256;
            let ha1 = algo.hash(&format!("{name}:{realm}:s3cret"));
            let ha2 = algo.hash(&format!("PUT:{uri}"));
            let resp = algo.hash(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
            let h = format!(
                "Digest username=\"{name}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\", response=\"{resp}\""
            );
            assert_eq!(
                a.verify(Some(&h), "PUT", uri, &creds()),
                Err(AuthFailure::Rejected),
                "{name} {realm}"
            );
        }
        // Upper-case hex in the response is the same response (a new cnonce: not a replay).
        let right = digest_header_nc(&a, "SHA-256", &nonce, "s3cret", uri, "upper", 1);
        let upper = right.replace(
            right
                .rsplit("response=\"")
                .next()
                .unwrap()
                .trim_end_matches('"'),
            &right
                .rsplit("response=\"")
                .next()
                .unwrap()
                .trim_end_matches('"')
                .to_ascii_uppercase(),
        );
        assert_eq!(a.verify(Some(&upper), "PUT", uri, &creds()), Ok(()));
        for pair in [
            "enc2:s3cret",
            "enc:s3cret",
            "enc1:s3cre",
            "enc1:s3cret ",
            ":s3cret",
            "enc1:",
        ] {
            let b = base64::engine::general_purpose::STANDARD.encode(pair);
            assert_eq!(
                a.verify(Some(&format!("Basic {b}")), "PUT", "/x", &creds()),
                Err(AuthFailure::Rejected),
                "{pair}"
            );
        }
    }

    #[test]
    fn secrets_compare_by_value_whatever_their_lengths() {
        assert!(bool::from(ct_eq_secret("s3cret", "s3cret")));
        for other in ["", "s", "s3cre", "s3cret!", "S3CRET", "s3cret\0"] {
            assert!(!bool::from(ct_eq_secret(other, "s3cret")), "{other:?}");
        }
        assert!(bool::from(ct_eq(b"abc", b"abc")));
        assert!(!bool::from(ct_eq(b"abc", b"abd")));
        assert!(!bool::from(ct_eq(b"abc", b"ab")));
    }

    #[test]
    fn params_parse_quoted_commas_and_escapes() {
        let p = parse_params(r#"a="x, y", b=z , c="q\"d""#).unwrap();
        assert_eq!(p[0], ("a".into(), "x, y".into()));
        assert_eq!(p[1], ("b".into(), "z".into()));
        assert_eq!(p[2], ("c".into(), "q\"d".into()));
        assert!(parse_params(r#"a="unterminated"#).is_none());
    }
}
