//! The encoder's `Authorization` header (Digest MD5/SHA-256 with qop=auth, or Basic) checked
//! against an input's credentials. Properties: nothing but the right credentials passes — a
//! Basic header passes only when it decodes to exactly the configured user and password, and
//! no Digest passes without a nonce this process issued (the fuzzer cannot forge its MAC).
#![no_main]

use arbitrary::Arbitrary;
use edgepack_store::auth::Authenticator;
use edgepack_store::config::Credentials;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    header: &'a str,
    method: &'a str,
    uri: &'a str,
}

fuzz_target!(|i: Input<'_>| {
    let auth = match Authenticator::new("edgepack ingest", 300) {
        Ok(a) => a,
        Err(e) => panic!("no randomness: {e}"),
    };
    let creds = Credentials {
        username: "enc1".into(),
        password: "pw1".into(),
    };
    let passed = auth.verify(Some(i.header), i.method, i.uri, &creds).is_ok();
    if passed {
        let (scheme, rest) = i.header.trim().split_once(' ').unwrap_or_default();
        assert!(
            scheme.eq_ignore_ascii_case("basic"),
            "a forged Digest passed: {}",
            i.header
        );
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim());
        assert_eq!(
            decoded.ok().as_deref(),
            Some(&b"enc1:pw1"[..]),
            "{}",
            i.header
        );
    }
    if let Err(e) = auth.verify(Some(i.header), i.method, i.uri, &creds) {
        assert!(!e.reason().is_empty());
    }
});
