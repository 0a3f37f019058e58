//! ClearKey license requests (W3C EME: `{"kids":["base64url",…],"type":"temporary"}`) to the
//! cenc endpoint's license server, with a valid token: any body gets a license or one refusal
//! that says why. Properties: a license is JSON with one key per requested key id of this
//! endpoint, never a key of another endpoint's id.
#![no_main]

use edgepack_filter::packager::{LicenseRequest, answer_body};
use edgepack_fuzz::{check_answer, settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let s = settings();
    for endpoint in ["dash-cenc", "cmaf-cbcs", "hls", "nope"] {
        let license = LicenseRequest {
            channel: "news".into(),
            endpoint: endpoint.into(),
        };
        let r = answer_body(s, &license, body);
        check_answer(&r);
        if r.status == 200 {
            let v: serde_json::Value = match serde_json::from_slice(&r.body) {
                Ok(v) => v,
                Err(e) => panic!("a license that is not JSON: {e}"),
            };
            assert!(v["keys"].is_array(), "{v}");
        }
    }
});
