//! Ad cues (#14): anything as a binary SCTE-35 `splice_info_section` and as a segment's tags,
//! then as a store view through every `ad_markers` mode:
//! - reading a cue never panics; one that reads has a CRC that matches;
//! - a cue read from tags survives the store's own tag (edge, id, binary cue);
//! - every mode writes a playlist without the store's tag, and `none` without any marker.
#![no_main]

use std::sync::OnceLock;

use edgepack_filter::Settings;
use edgepack_filter::media_rewrite;
use edgepack_filter::playlist_window::PlaylistType;
use edgepack_store_api::cues::{self, Cue};
use edgepack_store_api::scte35;
use libfuzzer_sys::fuzz_target;

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let json = r#"{"store":{"cluster":"s"},"channels":{"c":{"endpoints":{
            "none":{"format":"hls","ad_markers":"none"},
            "pass":{"format":"hls","ad_markers":"passthrough"},
            "enh":{"format":"hls","ad_markers":"scte35_enhanced","ads_on_delivery_restrictions":"both"},
            "dr":{"format":"hls","ad_markers":"daterange","ad_triggers":["splice_insert","break","program"]}}}}}"#;
        match Settings::from_json(json.as_bytes()) {
            Ok(s) => s,
            Err(e) => panic!("the target's configuration: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if scte35::parse(data).is_ok() {
        let len = data
            .len()
            .min(3 + (usize::from(data[1] & 0x0f) << 8 | usize::from(data[2])));
        assert_eq!(
            scte35::crc32_mpeg2(&data[..len]),
            0,
            "a cue read with a wrong CRC"
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(cue) = cues::from_tags(text.lines()) {
        let tag = cue.store_tag();
        assert!(!tag.contains('\n'), "the store's tag is one line: {tag:?}");
        let back = match Cue::from_store_tag(&tag) {
            Some(c) => c,
            None => panic!("the store cannot read its own tag {tag:?}"),
        };
        assert_eq!(back.edge, cue.edge, "{tag}");
        assert_eq!(back.scte35, cue.scte35, "{tag}");
        let id = cue.id.as_ref().map(|i| i.replace(['"', '\n', '\r'], ""));
        assert_eq!(back.id, id, "{tag}");
    }
    let Ok(pl) = edgepack_store_api::parse(data) else {
        return;
    };
    for (name, ep) in &settings().channels["c"] {
        let Ok(out) = media_rewrite::write(&pl, 0..pl.segments.len(), PlaylistType::Live, ep, 0)
        else {
            continue;
        };
        assert!(
            out.lines()
                .all(|l| l.split(':').next() != Some(cues::STORE_TAG)),
            "{name} shows the store's tag:\n{out}"
        );
        if name == "none" {
            assert!(
                out.lines().all(|l| !cues::is_cue_tag(l)),
                "none writes a marker:\n{out}"
            );
        }
    }
});
