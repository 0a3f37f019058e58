//! A viewer's query string: the parameters edgepack reads, `aws.manifestfilter`,
//! `aws.manifestsettings` and `start`/`end` (epoch seconds or ISO 8601), and the view query the
//! filter then sends to the store. Properties: a filter keeps its ranges ordered; a time-shift
//! turned into the store's view query reads back the same.
#![no_main]

use edgepack_filter::query::{ManifestFilter, Query, TimeShift};
use edgepack_fuzz::without_idle_now;
use edgepack_store_api::window::{ViewQuery, WindowSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let _ = ManifestFilter::parse(raw);
    let Ok(q) = Query::parse(raw) else { return };
    if let Some(f) = &q.manifest_filter {
        let _ = ManifestFilter::parse(f);
    }
    let Ok(t) = TimeShift::from_query(&q) else {
        return;
    };
    let view = ViewQuery {
        spec: WindowSpec {
            now_ms: 1_795_617_331_666,
            window_ms: t.window_seconds.map_or(60_000, |s| s.saturating_mul(1000)) as i64,
            delay_ms: t.delay_seconds.map_or(0, |s| s.saturating_mul(1000)) as i64,
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        },
        rotation_seconds: 4,
    };
    if view.spec.window_ms < 0 || view.spec.delay_ms < 0 {
        return;
    }
    let text = view.to_query();
    assert_eq!(
        ViewQuery::parse(&text),
        Ok(Some(without_idle_now(view))),
        "{text}"
    );
});
