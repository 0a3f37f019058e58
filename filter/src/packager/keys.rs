//! Keys and licenses, answered without the store: AES-128 / SAMPLE-AES key delivery
//! (`key/{period}`) and the W3C ClearKey license server (`clearkey`), both token-guarded.

use super::{LicenseRequest, Request, endpoint};
use crate::access;
use crate::config::{Endpoint, Format, Settings};
use crate::crypto;
use crate::error::FilterError;
use crate::http_policy::{LICENSE_METHODS, NO_STORE};
use crate::query::Query;
use crate::response::Response;
use crate::route::{Asset, Route};

/// Largest ClearKey license request read (a few key ids of JSON).
pub const MAX_LICENSE_REQUEST: usize = 16 * 1024;

/// Key and license requests are authorized before anything is looked up, the way
/// MediaPackage refuses a bad token: the method (license: POST), then the token — checked
/// against the endpoint's token secret, or, for an unknown channel or endpoint or a clear one,
/// refused with the same 403 and the same words after the same HMAC — then the endpoint's access
/// rules. An unauthenticated caller gets the same answer for a key period or endpoint that
/// exists and one that does not; what is looked up after this (period, format, key ids) answers
/// only callers holding a valid token. Other assets: `Ok`, nothing checked here.
pub(super) fn authorize(
    settings: &Settings,
    r: &Route,
    req: &Request<'_>,
    path: &str,
    raw_query: &str,
) -> Result<(), FilterError> {
    let license = match r.asset {
        Asset::License => true,
        Asset::Key { .. } => false,
        _ => return Ok(()),
    };
    if license && req.method != "POST" {
        return Err(FilterError::MethodNotAllowed(
            "a ClearKey license request is a POST of {\"kids\":[…]} (W3C EME)".into(),
            LICENSE_METHODS,
        ));
    }
    let query = Query::parse(raw_query)?;
    let found = settings
        .channels
        .get(&r.channel)
        .and_then(|endpoints| endpoints.get(&r.endpoint))
        .and_then(|ep| ep.keys().map(|k| (ep, k.token.secret.as_str())));
    crypto::verify_token(
        found.map(|(_, secret)| secret),
        path,
        query.token.as_deref(),
        req.now_ms,
    )?;
    let Some((ep, _)) = found else {
        return Err(FilterError::Forbidden(crypto::INVALID_TOKEN.into()));
    };
    access::check(&ep.access, req.header, req.client_ip)
}

/// The key of a key period (`key/{period}`, the URI of the playlists' `EXT-X-KEY`); the request
/// was [`authorize`]d.
pub(super) fn deliver(ep: &Endpoint, key_id: &str) -> Result<Response, FilterError> {
    // DASH and Smooth Streaming players get keys from a license server, never from a key URI.
    if ep.keys().is_none() || matches!(ep.format(), Format::Dash | Format::Mss) {
        return Err(FilterError::NotFound(format!(
            "endpoint '{}' has no key URIs",
            ep.name
        )));
    }
    let period: u64 = key_id
        .parse()
        .map_err(|_| FilterError::BadRequest(format!("key id '{key_id}' is not a key period")))?;
    let key = crypto::key_for(ep, period)?;
    Ok(
        Response::with_body(200, "application/octet-stream", key.to_vec())
            .header("cache-control", NO_STORE),
    )
}

/// Checks a ClearKey license request before its body is read (it was [`authorize`]d): a
/// common-encryption endpoint.
pub(super) fn check_license_request(ep: &Endpoint) -> Result<(), FilterError> {
    ep.common_encryption().map(|_| ()).ok_or_else(|| {
        FilterError::NotFound(format!(
            "endpoint '{}' does not use common encryption (cenc/cbcs): no ClearKey licenses",
            ep.name
        ))
    })
}

/// A ClearKey license with the key of every requested key id of this endpoint (each KID names
/// its key period).
pub(super) fn license(
    settings: &Settings,
    license: &LicenseRequest,
    body: &[u8],
) -> Result<Response, FilterError> {
    use base64::Engine as _;
    let ep = endpoint(settings, &license.channel, &license.endpoint)?;
    let bad = |why: &str| {
        FilterError::BadRequest(format!(
            "not a ClearKey license request ({why}); expected JSON {{\"kids\":[\"<base64url key id>\",…],\"type\":\"temporary\"}}"
        ))
    };
    if body.len() > MAX_LICENSE_REQUEST {
        return Err(bad("over 16 KiB"));
    }
    let request: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let kids = request
        .get("kids")
        .and_then(|k| k.as_array())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("no kids"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut keys = Vec::new();
    for kid in kids {
        let kid: [u8; 16] = kid
            .as_str()
            .and_then(|k| b64.decode(k.trim_end_matches('=')).ok())
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("a key id is not 16 bytes of base64url"))?;
        if let Some(period) = crypto::period_of_kid(ep, &kid) {
            keys.push((kid, crypto::key_for(ep, period)?));
        }
    }
    if keys.is_empty() {
        return Err(FilterError::NotFound(format!(
            "none of the requested key ids is a key of endpoint '{}'",
            ep.name
        )));
    }
    Ok(Response::with_body(
        200,
        "application/json",
        crypto::clearkey_license(&keys).into_bytes(),
    )
    .header("cache-control", NO_STORE))
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn encrypted_dash_has_a_period_per_key_and_its_license_server_answers_key_ids() {
        use base64::Engine as _;
        let t = mpd("dash-cenc", T0 + 8_000);
        let ep = &settings().channels["news"]["dash-cenc"];
        // Keys rotate every 4 s: the segments at 331.666, 333.666, 335.666 and 337.666 s past
        // the minute fall in key periods …82, …83, …83 and …84.
        let first = crate::key_periods::key_period(T0, 4);
        let periods: Vec<u64> = (0..4)
            .map(|i| crate::key_periods::key_period(T0 + 2000 * i, 4))
            .collect();
        assert_eq!(periods, [first, first + 1, first + 1, first + 2]);
        assert_eq!(t.matches("<Period ").count(), 3, "{t}");
        for p in first..=first + 2 {
            assert!(
                t.contains(&format!(
                    r#"<Period id="0-{p}" start="{}""#,
                    crate::dash::duration(p as i64 * 4000)
                )),
                "{t}"
            );
            let kid = crypto::kid_uuid(&crypto::kid_for(ep, p));
            assert_eq!(
                t.matches(&format!(r#"value="cenc" cenc:default_KID="{kid}""#))
                    .count(),
                2,
                "{t}"
            );
        }
        // The second period starts at its first segment; its init is built from it.
        assert!(
            t.contains(&format!(
                r#"initialization="$RepresentationID$/init-v{}.mp4""#,
                (T0 + 2000) * 90
            )),
            "{t}"
        );
        assert!(
            t.contains("<dashif:Laurl>https://edge.example/out/v1/news/dash-cenc/clearkey?token="),
            "{t}"
        );
        // Each period's pssh names its KID and the next period's, so a player holds the next
        // key before the manifest announces its period.
        for p in first..=first + 2 {
            let pssh =
                crate::cmaf::mp4::pssh(&[crypto::kid_for(ep, p), crypto::kid_for(ep, p + 1)]);
            let pssh = base64::engine::general_purpose::STANDARD.encode(pssh);
            assert!(t.contains(&format!("<cenc:pssh>{pssh}</cenc:pssh>")), "{t}");
        }

        // The license server: a POST naming key ids, with the token the MPD gives.
        let path = "/out/v1/news/dash-cenc/clearkey";
        let expiry = crypto::token_expiry(T0, 300);
        let token = crypto::token("tok-0123456789abcdef", path, expiry).unwrap();
        let req = |method: &str, p: &str| {
            let h = headers(&[]);
            plan(
                &settings(),
                &Request {
                    method,
                    path: p,
                    header: &h,
                    client_ip: None,
                    now_ms: T0,
                },
            )
        };
        let with_token = format!("{path}?token={token}");
        let Plan::ReadBody(job) = req("POST", &with_token) else {
            panic!("a license request reads its body")
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kid = crypto::kid_for(ep, first + 1);
        let body = format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, b64.encode(kid));
        let r = answer_body(&settings(), &job, body.as_bytes());
        assert_eq!(r.status, 200, "{}", text(&r));
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(json["keys"][0]["kid"], b64.encode(kid));
        assert_eq!(
            json["keys"][0]["k"],
            b64.encode(crypto::key_for(ep, first + 1).unwrap())
        );
        assert_eq!(r.get("cache-control"), Some("no-store"));
        assert_eq!(answer_body(&settings(), &job, b"{}").status, 400);
        assert_eq!(answer_body(&settings(), &job, b"[1").status, 400);
        let foreign = crypto::kid_for(&settings().channels["news"]["cmaf-cbcs"], first);
        let r = answer_body(
            &settings(),
            &job,
            format!(r#"{{"kids":["{}"]}}"#, b64.encode(foreign)).as_bytes(),
        );
        assert_eq!(r.status, 404, "another endpoint's key id: {}", text(&r));
        let status_of = |p: Plan| match p {
            Plan::Respond(r) => r.status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status_of(req("POST", path)), 403, "no token");
        match req("GET", &with_token) {
            Plan::Respond(r) => {
                assert_eq!(r.status, 405);
                assert_eq!(
                    r.get("allow"),
                    Some("POST, OPTIONS"),
                    "a license takes POST"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            status_of(req("POST", "/out/v1/news/dash/clearkey")),
            403,
            "a clear endpoint: refused as a wrong token is, before any lookup"
        );
        // Preflight for the license POST.
        match req("OPTIONS", path) {
            Plan::Respond(r) => {
                assert_eq!(r.get("access-control-allow-methods"), Some("POST, OPTIONS"))
            }
            other => panic!("{other:?}"),
        }
    }

    const SECRET: &str = "tok-0123456789abcdef";
    const ORIGIN: (&str, &str) = ("origin", "https://other-site.example");

    /// A request on a key or license path, as the shell would make it: the answer, or for a
    /// license that passed its checks, the answer to `body`.
    fn call(method: &str, path: &str, hdrs: &[(&str, &str)], now_ms: i64, body: &[u8]) -> Response {
        let h = headers(hdrs);
        let req = Request {
            method,
            path,
            header: &h,
            client_ip: Some("127.0.0.1".parse().unwrap()),
            now_ms,
        };
        match plan(&settings(), &req) {
            Plan::Respond(r) => r,
            Plan::ReadBody(job) => answer_body(&settings(), &job, body),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn with_token(path: &str, secret: &str, now_ms: i64) -> String {
        let t = crypto::token(secret, path, crypto::token_expiry(now_ms, 300)).unwrap();
        format!("{path}?token={t}")
    }

    /// Issue #16 §5: an unauthenticated caller cannot tell a key period, endpoint or channel
    /// that exists from one that does not. Every such request is refused 403 before anything is
    /// looked up, with the same headers and the same body (one of two: no token, or a token that
    /// opens nothing), after the same work (one HMAC-SHA256, see `crypto::verify_token`).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn unknown_and_wrong_are_one_answer_for_keys_and_licenses() {
        let now = T0 + 10_000;
        let keys = [
            "/out/v1/news/secure/key/441404", // exists (the CDN header is sent below)
            "/out/v1/news/cmaf-cbcs/key/7",   // exists
            "/out/v1/news/fixed/key/0",       // exists (static key)
            "/out/v1/news/secure/key/not-a-period",
            "/out/v1/news/dash-cenc/key/7", // DASH endpoints have no key URIs
            "/out/v1/news/hls/key/7",       // a clear endpoint
            "/out/v1/news/nope/key/7",      // unknown endpoint
            "/out/v1/sports/hls/key/7",     // unknown channel
        ];
        let licenses = [
            "/out/v1/news/dash-cenc/clearkey", // exists
            "/out/v1/news/cmaf-cbcs/clearkey", // exists
            "/out/v1/news/secure/clearkey",    // AES-128: no licenses
            "/out/v1/news/dash/clearkey",      // a clear endpoint
            "/out/v1/news/nope/clearkey",      // unknown endpoint
            "/out/v1/sports/dash/clearkey",    // unknown channel
        ];
        let refusals = |path: &str| {
            // A period of the wrong key, a token of another path, the right secret's token
            // for another endpoint's path, another secret's, tampered, malformed, none.
            let other_path = if path.ends_with("clearkey") {
                "/out/v1/news/dash-cenc/key/7"
            } else {
                "/out/v1/news/cmaf-cbcs/key/8"
            };
            let stolen = with_token(other_path, SECRET, now);
            let stolen = stolen.split_once('?').unwrap().1;
            let good = with_token(path, SECRET, now);
            let good_token = good.split_once('?').unwrap().1.trim_start_matches("token=");
            let tampered = good_token.replacen('-', "-f", 1)[..good_token.len()].to_owned();
            vec![
                (format!("{path}?{stolen}"), true),
                (with_token(path, "another-secret-0123", now), true),
                (format!("{path}?token={tampered}"), true),
                (format!("{path}?token=1"), true),
                (format!("{path}?token="), true),
                (format!("{path}?token=99999999999-{}", "0".repeat(32)), true),
                (path.to_owned(), false),
            ]
        };
        let mut bodies = std::collections::BTreeSet::new();
        let mut header_sets = std::collections::BTreeSet::new();
        for (paths, method) in [
            (&keys[..], "GET"),
            (&keys[..], "HEAD"),
            (&licenses[..], "POST"),
        ] {
            for path in paths {
                for (url, has_token) in refusals(path) {
                    let mut hdrs = vec![ORIGIN];
                    if path.contains("/secure/") {
                        hdrs.push(("x-edgepack-cdn-identifier", "current"));
                    }
                    let r = call(method, &url, &hdrs, now, b"{}");
                    let body = text(&r);
                    assert_eq!(r.status, 403, "{method} {url}: {body}");
                    let expected = if has_token {
                        crypto::INVALID_TOKEN
                    } else {
                        "key request without a token; use the key URI from the playlist"
                    };
                    assert_eq!(body.trim(), expected, "{method} {url}");
                    bodies.insert(body);
                    header_sets.insert(format!("{:?}", r.headers));
                }
            }
        }
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        assert_eq!(header_sets.len(), 1, "{header_sets:?}");

        // Without the CDN header or from outside the allowlist, a request with no valid token
        // gets that same answer: the access rules of an endpoint are not revealed either.
        let r = call("GET", "/out/v1/news/secure/key/3?token=1", &[], now, b"");
        assert_eq!((r.status, text(&r).trim()), (403, crypto::INVALID_TOKEN));

        // Only a valid token reaches what comes after: the access rules, the period, the format.
        let r = call("GET", &with_token(keys[0], SECRET, now), &[], now, b"");
        assert_eq!(r.status, 403);
        assert!(
            text(&r).contains("missing x-edgepack-cdn-identifier"),
            "{}",
            text(&r)
        );
        let cdn = [("x-edgepack-cdn-identifier", "current")];
        assert_eq!(
            call("GET", &with_token(keys[0], SECRET, now), &cdn, now, b"").status,
            200
        );
        assert_eq!(
            call("GET", &with_token(keys[3], SECRET, now), &cdn, now, b"").status,
            400
        );
        assert_eq!(
            call("GET", &with_token(keys[4], SECRET, now), &[], now, b"").status,
            404
        );
        let r = call(
            "POST",
            &with_token(licenses[2], SECRET, now),
            &cdn,
            now,
            b"{}",
        );
        assert_eq!(r.status, 404, "{}", text(&r));
        // A license is a POST, whoever asks and whatever the path: said before the token.
        for path in licenses {
            assert_eq!(call("GET", path, &[], now, b"").status, 405, "{path}");
        }
    }

    /// A key token, used through the filter, is refused once the clock passes its expiry
    /// (`now_ms` is the shell's clock, handed in with the request).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn key_and_license_tokens_expire_on_the_clock() {
        let minted = T0 + 10_000;
        let expiry = crypto::token_expiry(minted, 300);
        let last_valid = expiry as i64 * 1000 + 999;
        assert!(last_valid - minted >= 300_000 && last_valid - minted < 361_000);
        let key = with_token("/out/v1/news/cmaf-cbcs/key/7", SECRET, minted);
        let license = with_token("/out/v1/news/dash-cenc/clearkey", SECRET, minted);
        let ep = &settings().channels["news"]["dash-cenc"];
        let kids = {
            use base64::Engine as _;
            let kid = crypto::kid_for(ep, 7);
            format!(
                r#"{{"kids":["{}"]}}"#,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kid)
            )
        };
        for now in [minted, minted + 300_000, last_valid] {
            assert_eq!(call("GET", &key, &[], now, b"").status, 200, "{now}");
            assert_eq!(
                call("POST", &license, &[], now, kids.as_bytes()).status,
                200,
                "{now}"
            );
        }
        for now in [last_valid + 1, last_valid + 86_400_000] {
            for r in [
                call("GET", &key, &[], now, b""),
                call("POST", &license, &[], now, kids.as_bytes()),
            ] {
                assert_eq!(r.status, 403);
                assert!(text(&r).contains("expired"), "{}", text(&r));
            }
        }
    }

    /// Issue #16 §5: no key or license answer — 200 or error — may be kept by a shared cache,
    /// and CORS never lets a browser send credentials with them: `cache-control: no-store`,
    /// `access-control-allow-origin: *` (never the caller's origin echoed), no
    /// `access-control-allow-credentials`.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn key_and_license_answers_are_never_cached_and_never_credentialed() {
        use base64::Engine as _;
        let now = T0 + 10_000;
        let cdn = [ORIGIN, ("x-edgepack-cdn-identifier", "current")];
        let ep = &settings().channels["news"]["dash-cenc"];
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kids = |kid: [u8; 16]| format!(r#"{{"kids":["{}"]}}"#, b64.encode(kid));
        let foreign = crypto::kid_for(&settings().channels["news"]["cmaf-cbcs"], 7);
        let license = with_token("/out/v1/news/dash-cenc/clearkey", SECRET, now);
        let cases: Vec<(Response, u16)> = vec![
            (
                call(
                    "GET",
                    &with_token("/out/v1/news/secure/key/9", SECRET, now),
                    &cdn,
                    now,
                    b"",
                ),
                200,
            ),
            (
                call(
                    "HEAD",
                    &with_token("/out/v1/news/fixed/key/0", SECRET, now),
                    &cdn,
                    now,
                    b"",
                ),
                200,
            ),
            (
                call(
                    "POST",
                    &license,
                    &cdn,
                    now,
                    kids(crypto::kid_for(ep, 7)).as_bytes(),
                ),
                200,
            ),
            (
                call("POST", &license, &cdn, now, kids(foreign).as_bytes()),
                404,
            ),
            (call("POST", &license, &cdn, now, b"not json"), 400),
            (
                call(
                    "POST",
                    &license,
                    &cdn,
                    now,
                    &vec![b' '; MAX_LICENSE_REQUEST + 1],
                ),
                400,
            ),
            (call("POST", &license, &cdn, now + 86_400_000, b"{}"), 403),
            (call("GET", &license, &cdn, now, b""), 405),
            (
                call("PUT", "/out/v1/news/secure/key/9", &cdn, now, b""),
                405,
            ),
            (
                call("GET", "/out/v1/news/secure/key/9", &cdn, now, b""),
                403,
            ),
            (
                call("GET", "/out/v1/news/nope/key/9?token=1", &cdn, now, b""),
                403,
            ),
            (
                call(
                    "GET",
                    &with_token("/out/v1/news/secure/key/x", SECRET, now),
                    &cdn,
                    now,
                    b"",
                ),
                400,
            ),
            (
                call(
                    "GET",
                    &with_token("/out/v1/news/dash-cenc/key/1", SECRET, now),
                    &cdn,
                    now,
                    b"",
                ),
                404,
            ),
            (
                call(
                    "GET",
                    "/out/v1/news/secure/key/9?token=1&token=2",
                    &cdn,
                    now,
                    b"",
                ),
                400,
            ),
        ];
        for (r, status) in &cases {
            assert_eq!(r.status, *status, "{}", text(r));
            assert_eq!(
                r.get("cache-control"),
                Some("no-store"),
                "{status}: {:?}",
                r.headers
            );
            assert_eq!(
                r.get("access-control-allow-origin"),
                Some("*"),
                "{:?}",
                r.headers
            );
            assert_eq!(
                r.get("access-control-allow-credentials"),
                None,
                "{:?}",
                r.headers
            );
            assert!(
                r.get("expires").is_none() && r.get("etag").is_none(),
                "{:?}",
                r.headers
            );
        }
        // The preflight of a key or license request neither allows credentials.
        for path in [
            "/out/v1/news/secure/key/9",
            "/out/v1/news/dash-cenc/clearkey",
        ] {
            let r = call(
                "OPTIONS",
                path,
                &[ORIGIN, ("access-control-request-headers", "authorization")],
                now,
                b"",
            );
            assert_eq!(r.status, 204);
            assert_eq!(r.get("access-control-allow-origin"), Some("*"));
            assert_eq!(r.get("access-control-allow-credentials"), None);
        }
    }
}
