//! The sidecar's TOML configuration: any text is a validated configuration or one error that
//! names the field. Property: channel ids are unique and safe to use in paths.
#![no_main]

use edgepack_store::Settings;
use edgepack_store::config::is_safe_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let env = |k: &str| (k == "PW").then(|| "from-env".to_owned());
    match Settings::from_toml(text, env) {
        Ok(s) => {
            let mut ids: Vec<&str> = s.channels.iter().map(|c| c.id.as_str()).collect();
            assert!(ids.iter().all(|id| is_safe_id(id)));
            ids.sort_unstable();
            let n = ids.len();
            ids.dedup();
            assert_eq!(ids.len(), n, "duplicate channel ids");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
