//! The plugin configuration JSON (Envoy hands it to `on_configure`): any bytes are either a
//! validated configuration or one error that names where it went wrong. Property: a valid
//! configuration is deterministic (the same bytes give the same fingerprint) and every endpoint
//! it names sits under its own channel.
#![no_main]

use edgepack_filter::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Settings::from_json(data) {
        Ok(s) => {
            let again = Settings::from_json(data).map(|a| a.fingerprint);
            assert_eq!(again.as_deref(), Ok(s.fingerprint.as_str()));
            for (channel, endpoints) in &s.channels {
                for (name, ep) in endpoints {
                    assert_eq!((&ep.channel, &ep.name), (channel, name));
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
