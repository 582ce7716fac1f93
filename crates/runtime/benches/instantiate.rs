//! Per-instance cost of running an app from the AOT cache: a fresh store, WASI context,
//! instantiation from a pre-linked `InstancePre` on the pooling allocator, and the
//! guest's `_start` (or `wasi:cli/run`) printing one line to a discarded stdout.
//! Also the cost of loading compiled code from the cache (what a cold process pays), and
//! the cost of one HTTP request to a `wasi:http` component: a fresh store and instance,
//! the handler, and the response body read to its end (no network).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use wedge_manifest::Grants;
use wedge_runtime::{
    App, CodeCache, Control, Engine, EngineOptions, HttpApp, Outcome, Policy, Prepared,
    RequestLimits, SharedOutput, Stdio,
};
use wedge_test_programs::{http, p1, p2};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = CodeCache::new(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Policy::resolve(&Grants::default(), vec!["hello".into()]).expect("policy");
    for (name, wasm) in [("wasip1", p1::HELLO), ("wasip2", p2::HELLO)] {
        let engine = Engine::new(EngineOptions {
            pooling: Some(64),
            ..EngineOptions::default()
        })
        .expect("engine");
        App::load(&engine, Path::new(wasm), Some(&cache)).expect("warm the cache");

        c.bench_function(&format!("load_from_cache/{name}"), |b| {
            b.iter(|| App::load(&engine, Path::new(wasm), Some(&cache)).expect("load"))
        });

        let app = App::load(&engine, Path::new(wasm), Some(&cache)).expect("load");
        let prepared = Prepared::new(&app).expect("link");
        c.bench_function(&format!("instantiate_and_run_hello/{name}"), |b| {
            b.iter(|| {
                let outcome = rt
                    .block_on(prepared.run(&policy, Stdio::Null))
                    .expect("run");
                assert_eq!(outcome, Outcome::Exited(0));
            })
        });
    }
    bench_http(c, &cache, &rt, policy);
}

fn bench_http(c: &mut Criterion, cache: &CodeCache, rt: &tokio::runtime::Runtime, policy: Policy) {
    use http_body_util::BodyExt;
    let engine = Engine::new(EngineOptions {
        pooling: Some(64),
        ..EngineOptions::default()
    })
    .expect("engine");
    let app = App::load(&engine, Path::new(http::HELLO), Some(cache)).expect("load");
    let app = HttpApp::new(
        &app,
        policy,
        SharedOutput::Null,
        RequestLimits::new(1 << 20),
    )
    .expect("link");
    let control = Control::new();
    c.bench_function("handle_http_hello", |b| {
        b.iter(|| {
            rt.block_on(async {
                let request = ::http::Request::builder()
                    .uri("http://localhost/")
                    .body(
                        http_body_util::Empty::<bytes::Bytes>::new()
                            .map_err(|never| -> hyper::Error { match never {} }),
                    )
                    .expect("request");
                let response = app
                    .handle(request, false, &control, |_| {})
                    .await
                    .expect("response");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("body");
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
