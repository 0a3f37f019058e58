//! A viewer's request through the whole sans-IO filter, as the shell drives it in Envoy: plan →
//! store answers (DASH asks twice; a Smooth Streaming manifest up to 2 + one per track whose
//! codec data is not known yet) → the viewer's answer, or the license body → the license. Structure-aware: paths of every endpoint and asset kind (or anything), queries,
//! headers, valid or forged key tokens, and store answers that are the recorded ones, mutated,
//! or anything. Property: every answer is a documented status, refusals say why in plain text,
//! a 405 says what is allowed, nothing panics.
#![no_main]

use edgepack_filter::packager::{Plan, Request, StoreAnswer, answer_body, on_store_answer, plan};
use edgepack_fuzz::{ViewerRequest, check_answer, lookup, settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: ViewerRequest| {
    let s = settings();
    let path = input.path();
    let headers = input.headers();
    let header = lookup(&headers);
    let req = Request {
        method: input.method(),
        path: &path,
        header: &header,
        client_ip: input.client_ip(),
        now_ms: input.now_ms(),
    };
    let mut step = plan(s, &req);
    let mut answers = input.store.iter();
    // A store multivariant playlist may name any number of variants (each a codec fetch of a
    // Smooth Streaming manifest): the chain must end, within a bound no real channel reaches.
    for _ in 0..100 {
        step = match step {
            Plan::NotOurs => return,
            Plan::Respond(r) => {
                check_answer(&r);
                return;
            }
            Plan::ReadBody(license) => {
                check_answer(&answer_body(s, &license, &input.body));
                return;
            }
            Plan::Fetch(f) => {
                assert!(f.path.starts_with("/store/v1/"), "fetch of {}", f.path);
                let Some(a) = answers.next() else { return };
                let body = a.body();
                let store_headers = a.headers();
                let h = lookup(&store_headers);
                let answer = StoreAnswer {
                    status: a.status(),
                    header: &h,
                    body: &body,
                };
                on_store_answer(s, &f.next, &answer, req.now_ms)
            }
        };
    }
    panic!("more store fetches for one request than its tracks need: {step:?}");
});
