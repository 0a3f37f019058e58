//! Who may request an endpoint: MediaPackage's CDN identifier header and an IP allowlist.

use std::net::IpAddr;

use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::error::FilterError;

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:db8::/32`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// True when `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// MediaPackage's CDN authorization: a header (lower-case name) carrying one of the secrets
/// (current, previous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnIdentifierRule {
    pub header: String,
    pub secrets: Vec<String>,
}

/// Who may request an endpoint; built by the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRules {
    pub cdn_identifier: Option<CdnIdentifierRule>,
    /// Empty: any address.
    pub allowlist: Vec<Cidr>,
}

/// True when `presented` is one of `secrets`. Constant-time (`subtle`) over SHA-256 digests, so
/// neither a secret's bytes nor its length shows in the time taken, and every secret is compared
/// (no early exit on the first match).
fn is_one_of(secrets: &[String], presented: &str) -> bool {
    let digest = |s: &str| <Sha256 as sha2::Digest>::digest(s.as_bytes());
    let presented = digest(presented);
    secrets
        .iter()
        .fold(Choice::from(0), |found, s| {
            found | digest(s).as_slice().ct_eq(presented.as_slice())
        })
        .into()
}

/// Checks an endpoint's access rules. `header` looks up a request header by lower-case name.
pub fn check(
    rules: &AccessRules,
    header: &dyn Fn(&str) -> Option<String>,
    client_ip: Option<IpAddr>,
) -> Result<(), FilterError> {
    if let Some(cdn) = &rules.cdn_identifier {
        let name = &cdn.header;
        match header(name) {
            None => {
                return Err(FilterError::Forbidden(format!(
                    "missing {name} header: this endpoint is served only through its CDN"
                )));
            }
            Some(v) if !is_one_of(&cdn.secrets, &v) => {
                return Err(FilterError::Forbidden(format!(
                    "wrong {name} header: this endpoint is served only through its CDN"
                )));
            }
            Some(_) => {}
        }
    }
    if !rules.allowlist.is_empty() {
        let allowed = client_ip.is_some_and(|ip| rules.allowlist.iter().any(|c| c.contains(ip)));
        if !allowed {
            return Err(FilterError::Forbidden(format!(
                "client address {} is not in this endpoint's IP allowlist",
                client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cidr_v4_v6_and_mapped() {
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(net.contains("203.0.113.77".parse().unwrap()));
        assert!(!net.contains("203.0.114.1".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.9".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cdn_identifier_matches_either_secret_exactly() {
        let secrets = ["current-secret".to_owned(), "previous".to_owned()];
        assert!(is_one_of(&secrets, "current-secret"));
        assert!(is_one_of(&secrets, "previous"));
        for wrong in [
            "",
            "current",
            "current-secret ",
            "previou",
            "previous\0",
            "PREVIOUS",
        ] {
            assert!(!is_one_of(&secrets, wrong), "{wrong:?}");
        }
        assert!(!is_one_of(&[], "anything"));
    }
}
