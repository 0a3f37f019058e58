//! Keys and licenses, answered without the store: AES-128 / SAMPLE-AES key delivery
//! (`key/{period}`) and the W3C ClearKey license server (`clearkey`), both token-guarded.

use super::{LicenseRequest, Request, endpoint};
use crate::config::{CommonEncryption, Endpoint, Format, Settings};
use crate::crypto;
use crate::error::FilterError;
use crate::http_policy::NO_STORE;
use crate::query::Query;
use crate::response::Response;

/// Largest ClearKey license request read (a few key ids of JSON).
pub const MAX_LICENSE_REQUEST: usize = 16 * 1024;

/// The key of a key period (`key/{period}`, the URI of the playlists' `EXT-X-KEY`), if the
/// token bound to `path` is valid.
pub(super) fn deliver(
    ep: &Endpoint,
    key_id: &str,
    req: &Request<'_>,
    path: &str,
    query: &Query,
) -> Result<Response, FilterError> {
    // DASH players get keys from the license server, never from a key URI.
    let keys = ep
        .keys()
        .filter(|_| ep.format() != Format::Dash)
        .ok_or_else(|| {
            FilterError::NotFound(format!("endpoint '{}' is not encrypted: no keys", ep.name))
        })?;
    let period: u64 = key_id
        .parse()
        .map_err(|_| FilterError::BadRequest(format!("key id '{key_id}' is not a key period")))?;
    crypto::verify_token(&keys.token.secret, path, query.token.as_deref(), req.now_ms)?;
    let key = crypto::key_for(ep, period)?;
    Ok(
        Response::with_body(200, "application/octet-stream", key.to_vec())
            .header("cache-control", NO_STORE),
    )
}

/// Checks a ClearKey license request before its body is read: a common-encryption endpoint, a
/// POST, a valid token bound to `path`.
pub(super) fn check_license_request(
    ep: &Endpoint,
    req: &Request<'_>,
    path: &str,
    query: &Query,
) -> Result<(), FilterError> {
    let enc: &CommonEncryption = ep.common_encryption().ok_or_else(|| {
        FilterError::NotFound(format!(
            "endpoint '{}' does not use common encryption (cenc/cbcs): no ClearKey licenses",
            ep.name
        ))
    })?;
    if req.method != "POST" {
        return Err(FilterError::MethodNotAllowed(
            "a ClearKey license request is a POST of {\"kids\":[…]} (W3C EME)".into(),
        ));
    }
    crypto::verify_token(
        &enc.keys.token.secret,
        path,
        query.token.as_deref(),
        req.now_ms,
    )
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
        assert!(t.contains("<cenc:pssh>"), "{t}");

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
        assert_eq!(status_of(req("GET", &with_token)), 405);
        assert_eq!(
            status_of(req("POST", "/out/v1/news/dash/clearkey")),
            404,
            "a clear endpoint"
        );
        // Preflight for the license POST.
        match req("OPTIONS", path) {
            Plan::Respond(r) => assert_eq!(
                r.get("access-control-allow-methods"),
                Some("GET, POST, OPTIONS")
            ),
            other => panic!("{other:?}"),
        }
    }
}
