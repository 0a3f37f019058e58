//! Key-delivery and license tokens (`{expiry}-{32 hex}`, HMAC-SHA256 over secret, path and
//! expiry). Properties: only a token minted with the secret for this very path and its expiry
//! opens it, until that second ends; a changed character, no secret or no token is refused with
//! 403. (The fuzzer's comparison tracing may learn a valid MAC: that token is then a real one.)
#![no_main]

use arbitrary::Arbitrary;
use edgepack_filter::crypto::{token, verify_token};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret: &'a str,
    path: &'a str,
    presented: &'a str,
    expiry: u64,
    now_ms: i64,
    flip: u8,
}

fuzz_target!(|i: Input<'_>| {
    if let Err(e) = verify_token(Some(i.secret), i.path, Some(i.presented), i.now_ms) {
        assert_eq!(e.status(), 403);
    }
    let Ok(good) = token(i.secret, i.path, i.expiry) else {
        return;
    };
    let expected_ok = (i.now_ms.max(0) as u64) / 1000 <= i.expiry;
    assert_eq!(
        verify_token(Some(i.secret), i.path, Some(&good), i.now_ms).is_ok(),
        expected_ok
    );
    // A presented token that opens the path is the one minted for its own expiry (up to the
    // spelling of the number and the case of the hex): the MAC covers the expiry.
    if verify_token(Some(i.secret), i.path, Some(i.presented), i.now_ms).is_ok() {
        let (expiry, mac) = i.presented.split_once('-').unwrap_or_default();
        let expiry: u64 = expiry
            .parse()
            .unwrap_or_else(|_| panic!("{:?} opened", i.presented));
        let minted = token(i.secret, i.path, expiry).unwrap_or_default();
        assert_eq!(
            format!("{expiry}-{}", mac.to_ascii_lowercase()),
            minted,
            "{:?} opened {:?}",
            i.presented,
            i.path
        );
    }
    // One character changed anywhere in the token.
    let mut forged = good.clone().into_bytes();
    let at = usize::from(i.flip) % forged.len();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    if let Ok(forged) = String::from_utf8(forged)
        && forged != good
    {
        assert!(verify_token(Some(i.secret), i.path, Some(&forged), i.now_ms).is_err());
    }
    assert!(verify_token(None, i.path, Some(&good), i.now_ms).is_err());
    assert!(verify_token(Some(i.secret), i.path, None, i.now_ms).is_err());
});
