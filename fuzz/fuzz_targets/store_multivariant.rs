//! The store's multivariant playlist as the filter reads it: an endpoint's HLS multivariant
//! answer (stream selection, `aws.manifestfilter`) and DASH variant list, from any bytes. The
//! last byte picks the endpoint (and whether a manifest filter applies); the rest is the
//! playlist. Property: every answer is a documented status, refusals say why.
#![no_main]

use edgepack_filter::packager::{Job, JobKind, StoreAnswer, respond};
use edgepack_filter::query::ManifestFilter;
use edgepack_fuzz::{check_answer, settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((pick, body)) = data.split_last() else {
        return;
    };
    let s = settings();
    let endpoints: Vec<_> = s.channels.values().flat_map(|eps| eps.values()).collect();
    let ep = endpoints[usize::from(*pick) % endpoints.len()];
    let filter = (pick & 0x80 != 0)
        .then(|| ManifestFilter::parse("video_height:100-1080;audio_sample_rate:48000").ok())
        .flatten();
    let _ = edgepack_filter::multivariant::variants(body, ep, filter.as_ref());
    let none = |_: &str| None;
    let answer = StoreAnswer {
        status: 200,
        header: &none,
        body,
    };
    let job = Job {
        channel: ep.channel.clone(),
        endpoint: ep.name.clone(),
        kind: JobKind::Multivariant {
            filter,
            carry: vec!["aws.manifestsettings=time_delay:2".into()],
        },
    };
    check_answer(&respond(s, &job, &answer, edgepack_fuzz::T0));
});
