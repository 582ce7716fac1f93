//! WASI-NN overhead: one inference of the test classifier (about 2 ms) natively through
//! tract, and from a guest through WASI-NN, as a core module (`wasi_ephemeral_nn`) and as
//! a component (`wasi:nn`), on the same model in the same process. The guest runs
//! `bench mnist N` (N inferences in one instance); criterion's linear sampling fits the
//! time per inference, so the instance's fixed start-up cost drops out of the slope.
//! The target: the guest within 5% of native.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use std::path::Path;
use std::time::{Duration, Instant};
use wedge_manifest::{Grants, NnGrant};
use wedge_runtime::{
    App, EngineOptions, HostServices, NnModel, NnModels, NnTensor, NnTensorType, Outcome, Policy,
    Prepared, Stdio, Tiering,
};
use wedge_test_programs::models::CLASSIFIER;
use wedge_test_programs::{p1, p2};

fn bench(c: &mut Criterion) {
    let image: Vec<u8> = (0..784)
        .flat_map(|i| ((i % 17) as f32 / 16.0).to_le_bytes())
        .collect();
    let input = NnTensor::new(vec![1, 1, 28, 28], NnTensorType::Fp32, image);
    let model = NnModel::from_file(Path::new(CLASSIFIER), 1).expect("model");
    let mut group = c.benchmark_group("nn_classifier");
    group
        .sampling_mode(SamplingMode::Linear)
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("native_tract", |b| {
        b.iter(|| model.infer(std::slice::from_ref(&input)).expect("infer"))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let grants = Grants {
        nn: NnGrant {
            models: vec![format!("mnist={CLASSIFIER}").parse().expect("grant")],
            ..NnGrant::default()
        },
        ..Grants::default()
    };
    let models = NnModels::default();
    for (name, wasm) in [("wasip1", p1::NN), ("wasip2", p2::NN)] {
        let app = App::open(
            EngineOptions::default(),
            Path::new(wasm),
            None,
            Tiering::Off,
        )
        .expect("load");
        let prepared = Prepared::new(&app).expect("link");
        group.bench_function(format!("wasi_nn_{name}"), |b| {
            b.iter_custom(|iters| {
                let args = ["nn", "bench", "mnist", &iters.to_string()];
                let host = HostServices {
                    keyvalue: &|| unreachable!("no key-value grant"),
                    bus: &|| unreachable!("no messaging grant"),
                    nn_models: &models,
                };
                let argv = args.map(String::from).to_vec();
                let policy = Policy::grant(&grants, argv, "", &host).expect("policy");
                let started = Instant::now();
                let outcome = rt
                    .block_on(prepared.run(&policy, Stdio::Null))
                    .expect("run");
                assert_eq!(outcome, Outcome::Exited(0));
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
