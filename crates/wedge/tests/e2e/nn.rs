//! WASI-NN end to end: the `nn` guest (a core module on `wasi_ephemeral_nn` and a
//! component on `wasi:nn`) running the test models through wedge's tract backend,
//! checked against native tract and against onnxruntime's recorded outputs.

use crate::common::{Env, TestDaemon, app_folder};
use wedge_runtime::{NnModel, NnTensor, NnTensorType};
use wedge_test_programs::models::{CLASSIFIER, EMBEDDER, REFERENCE};
use wedge_test_programs::{p1, p2};

/// The canonical classifier input and the embedder's tokens (models/README.md).
fn canonical_image() -> Vec<f32> {
    (0..784).map(|i| (i % 17) as f32 / 16.0).collect()
}

fn tokens() -> Vec<i64> {
    (0..16).map(|i| (i * 37 + 5) % 1000).collect()
}

fn reference(model: &str, output: &str) -> Vec<f32> {
    let text = std::fs::read_to_string(REFERENCE).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[model][output]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// Native tract on the same model and input.
fn native(path: &str, input: NnTensor) -> Vec<f32> {
    let model = NnModel::from_file(std::path::Path::new(path), 1).unwrap();
    let outputs = model.infer(&[input]).unwrap();
    floats(&outputs[0].data)
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The values on the guest's output line starting with `label`.
fn values(stdout: &str, label: &str) -> Vec<f32> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in: {stdout}"));
    line.split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance,
        "{what}: off by {worst}: {got:?} vs {want:?}"
    );
}

fn model_grant(name: &str, path: &str) -> String {
    format!("{name}={path}")
}

#[test]
fn both_abis_classify_and_embed_like_native_tract_and_onnxruntime() {
    let env = Env::new();
    let image: Vec<u8> = canonical_image()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let native_logits = native(
        CLASSIFIER,
        NnTensor::new(vec![1, 1, 28, 28], NnTensorType::Fp32, image),
    );
    let token_bytes: Vec<u8> = tokens().iter().flat_map(|v| v.to_le_bytes()).collect();
    let native_embedding = native(
        EMBEDDER,
        NnTensor::new(vec![1, 16], NnTensorType::I64, token_bytes),
    );
    let ort_logits = reference("classifier", "logits");
    let ort_embedding = reference("embedder", "embedding");
    assert_close(
        &native_logits,
        &ort_logits,
        1e-4,
        "native tract vs onnxruntime",
    );

    let classifier = model_grant("mnist", CLASSIFIER);
    let embedder = model_grant("minilm", EMBEDDER);
    for guest in [p1::NN, p2::NN] {
        let run = env.wedge(&["run", "--nn-model", &classifier, guest, "classify", "mnist"]);
        run.expect_code(0);
        let logits = values(&run.stdout, "logits");
        assert_close(&logits, &native_logits, 1e-5, "guest vs native tract");
        assert_close(&logits, &ort_logits, 1e-4, "guest vs onnxruntime");
        assert!(run.stdout.contains("class 1\n"), "{}", run.stdout);

        let token_args: Vec<String> = tokens().iter().map(ToString::to_string).collect();
        let mut args = vec!["run", "--nn-model", &embedder, guest, "embed", "minilm"];
        args.extend(token_args.iter().map(String::as_str));
        let run = env.wedge(&args);
        run.expect_code(0);
        let embedding = values(&run.stdout, "embedding");
        assert_close(&embedding, &native_embedding, 1e-5, "embedding vs native");
        assert_close(&embedding, &ort_embedding, 1e-4, "embedding vs onnxruntime");
    }
}

#[test]
fn only_granted_models_and_well_formed_tensors_reach_the_backend() {
    let env = Env::new();
    let classifier = model_grant("mnist", CLASSIFIER);
    let models = std::path::Path::new(CLASSIFIER).parent().unwrap();
    let volume = format!("{}:/models:ro", models.display());
    for guest in [p1::NN, p2::NN] {
        // A name nobody granted, and no grant at all.
        let run = env.wedge(&["run", "--nn-model", &classifier, guest, "classify", "other"]);
        run.expect_code(1);
        assert!(run.stderr.contains("error: load-by-name"), "{}", run.stderr);
        env.wedge(&["run", guest, "classify", "mnist"])
            .expect_code(1);

        // Bytes from the guest only with --nn-allow-bytes.
        let bytes = ["bytes", "/models/classifier.onnx"];
        let mut denied = vec!["run", "-v", &volume, guest];
        denied.extend(bytes);
        let run = env.wedge(&denied);
        run.expect_code(1);
        assert!(run.stderr.contains("error: load"), "{}", run.stderr);
        let mut allowed = vec!["run", "--nn-allow-bytes", "-v", &volume, guest];
        allowed.extend(bytes);
        let run = env.wedge(&allowed);
        run.expect_code(0);
        assert!(run.stdout.contains("class 1\n"), "{}", run.stdout);
        // Garbage as a model, from the guest: an error, not a crash.
        let mut garbage = vec!["run", "--nn-allow-bytes", "-v", &volume, guest];
        garbage.extend(["bytes", "/models/README.md"]);
        let run = env.wedge(&garbage);
        run.expect_code(1);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

        for command in ["wrong-shape", "wrong-type"] {
            let run = env.wedge(&["run", "--nn-model", &classifier, guest, command, "mnist"]);
            run.expect_code(1);
            assert!(run.stderr.contains("error:"), "{command}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }

        let limited = [
            "run",
            "--nn-model",
            &classifier,
            "--nn-max-contexts",
            "2",
            guest,
        ];
        let mut two = limited.to_vec();
        two.extend(["contexts", "mnist", "2"]);
        assert_eq!(env.wedge(&two).expect_code(0).stdout, "contexts 2\n");
        let mut three = limited.to_vec();
        three.extend(["contexts", "mnist", "3"]);
        let run = env.wedge(&three);
        run.expect_code(1);
        assert!(
            run.stderr.contains("init-execution-context"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_guest_passing_pointers_outside_its_memory_traps_without_hurting_the_host() {
    let env = Env::new();
    let classifier = model_grant("mnist", CLASSIFIER);
    let run = env.wedge(&[
        "run",
        "--nn-model",
        &classifier,
        p1::NN,
        "bad-pointer",
        "mnist",
    ]);
    run.expect_code(134);
    assert!(
        run.stderr.contains("host function failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_model_from_bytes_cannot_make_the_host_allocate_past_the_memory_limit() {
    // Each hostile model makes tract build a 64 MiB tensor while loading it (the
    // initializer one declares 1.6 GB), from a few hundred bytes; see
    // scripts/nn-models.py.
    let env = Env::new();
    let models = std::path::Path::new(CLASSIFIER).parent().unwrap();
    let volume = format!("{}:/models:ro", models.display());
    let load = |memory: &str, guest: &str, model: &str| {
        let path = format!("/models/hostile/{model}.onnx");
        let args = [
            "run",
            "-m",
            memory,
            "--nn-allow-bytes",
            "-v",
            &volume,
            guest,
            "bytes",
            &path,
        ];
        env.wedge(&args)
    };
    for model in [
        "constant-of-shape",
        "expand",
        "tile",
        "range",
        "initializer",
    ] {
        for guest in [p1::NN, p2::NN] {
            let run = load("16MiB", guest, model);
            run.expect_code(1);
            assert!(
                run.stderr.contains("error: load"),
                "{model}: {}",
                run.stderr
            );
            assert!(!run.stdout.contains("class"), "{model}: {}", run.stdout);
            assert!(!run.stderr.contains("panicked"), "{model}: {}", run.stderr);
        }
    }
    // The limit decides, not the operator: under a limit above 64 MiB the same model
    // loads and classifies (the first ten pixels, of which the tenth is the largest).
    let run = load("512MiB", p1::NN, "constant-of-shape");
    run.expect_code(0);
    assert!(run.stdout.contains("class 9\n"), "{}", run.stdout);
}

#[test]
fn a_bad_model_grant_fails_before_the_app_runs() {
    let env = Env::new();
    let readme = std::path::Path::new(CLASSIFIER).with_file_name("README.md");
    let grant = format!("bad={}", readme.display());
    env.wedge(&["run", "--nn-model", &grant, p1::NN, "classify", "bad"])
        .expect_code(125)
        .expect_one_line_error("cannot load model");
    let missing = format!("gone={}", env.path("missing.onnx").display());
    env.wedge(&["run", "--nn-model", &missing, p1::NN, "classify", "gone"])
        .expect_code(125)
        .expect_one_line_error("cannot load model");
    env.wedge(&["run", "--nn-model", "no-path", p1::NN, "classify", "x"])
        .expect_code(125)
        .expect_one_line_error("expected NAME=PATH");
}

#[test]
fn manifests_and_daemon_containers_grant_models_too() {
    let env = Env::new();
    let dir = app_folder(
        &env,
        p2::NN,
        "classifier",
        "[nn]\nmodels = { mnist = \"model.onnx\" }\n",
    );
    std::fs::copy(CLASSIFIER, dir.join("model.onnx")).unwrap();
    let run = env.wedge(&["run", dir.to_str().unwrap(), "classify", "mnist"]);
    run.expect_code(0);
    assert!(run.stdout.contains("class 1\n"), "{}", run.stdout);

    let d = TestDaemon::start(&env, &[]);
    let grant = model_grant("mnist", CLASSIFIER);
    for (name, guest) in [("c1", p1::NN), ("c2", p2::NN)] {
        d.wedge(
            &env,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--nn-model",
                &grant,
                guest,
                "classify",
                "mnist",
            ],
        )
        .expect_code(0);
        assert_eq!(d.wedge(&env, &["wait", name]).stdout.trim(), "0");
        let logs = d.wedge(&env, &["logs", name]).stdout;
        assert!(logs.contains("class 1\n"), "{logs}");
    }
    // The daemon checks the model when the container is created.
    let bad = format!("bad={}", env.path("missing.onnx").display());
    let run = d.wedge(
        &env,
        &["run", "-d", "--name", "bad", "--nn-model", &bad, p1::NN],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("cannot load model"), "{}", run.stderr);
}

/// A build without the `onnxruntime` feature says so when a grant asks for it.
#[cfg(not(feature = "onnxruntime"))]
#[test]
fn onnxruntime_needs_a_build_with_its_feature() {
    let env = Env::new();
    let classifier = model_grant("mnist", CLASSIFIER);
    env.wedge(&[
        "run",
        "--nn-backend",
        "onnxruntime",
        "--nn-model",
        &classifier,
        p1::NN,
        "classify",
        "mnist",
    ])
    .expect_code(125)
    .expect_one_line_error("cargo feature `onnxruntime`");
    env.wedge(&["run", "--nn-backend", "ort", p1::NN])
        .expect_code(125)
        .expect_one_line_error("`tract` or `onnxruntime`");
}

/// The onnxruntime backend (built with `--features onnxruntime`; `scripts/test.sh` runs
/// this with the library from the PyPI wheel in `ORT_DYLIB_PATH`): the recorded
/// onnxruntime outputs on both ABIs (f32 images, i64 tokens), and the same grants,
/// checks and limits as with tract.
#[cfg(feature = "onnxruntime")]
#[test]
fn onnxruntime_backend_gives_onnxruntime_outputs_under_the_same_grants() {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "set ORT_DYLIB_PATH to onnxruntime's libonnxruntime.so (scripts/test.sh does)"
    );
    let env = Env::new();
    let classifier = model_grant("mnist", CLASSIFIER);
    let embedder = model_grant("minilm", EMBEDDER);
    let ort = ["run", "--nn-backend", "onnxruntime"];
    for guest in [p1::NN, p2::NN] {
        let mut args = ort.to_vec();
        args.extend(["--nn-model", &classifier, guest, "classify", "mnist"]);
        let run = env.wedge(&args);
        run.expect_code(0);
        let logits = values(&run.stdout, "logits");
        assert_close(&logits, &reference("classifier", "logits"), 1e-5, "logits");

        let token_args: Vec<String> = tokens().iter().map(ToString::to_string).collect();
        let mut args = ort.to_vec();
        args.extend(["--nn-model", &embedder, guest, "embed", "minilm"]);
        args.extend(token_args.iter().map(String::as_str));
        let run = env.wedge(&args);
        run.expect_code(0);
        let embedding = values(&run.stdout, "embedding");
        assert_close(
            &embedding,
            &reference("embedder", "embedding"),
            1e-5,
            "embedding",
        );

        for (command, model) in [
            ("classify", "other"),
            ("wrong-shape", "mnist"),
            ("wrong-type", "mnist"),
        ] {
            let mut args = ort.to_vec();
            args.extend(["--nn-model", &classifier, guest, command, model]);
            let run = env.wedge(&args);
            run.expect_code(1);
            assert!(run.stderr.contains("error:"), "{command}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
        let mut args = ort.to_vec();
        args.extend(["--nn-model", &classifier, "--nn-max-contexts", "2"]);
        args.extend([guest, "contexts", "mnist", "3"]);
        let run = env.wedge(&args);
        run.expect_code(1);
        assert!(
            run.stderr.contains("init-execution-context"),
            "{}",
            run.stderr
        );
    }
    // Models from the guest's bytes, when granted, go to onnxruntime too.
    let models = std::path::Path::new(CLASSIFIER).parent().unwrap();
    let volume = format!("{}:/models:ro", models.display());
    for (file, code) in [("classifier.onnx", 0), ("README.md", 1)] {
        let path = format!("/models/{file}");
        let mut args = ort.to_vec();
        args.extend(["--nn-allow-bytes", "-v", &volume, p2::NN, "bytes", &path]);
        let run = env.wedge(&args);
        run.expect_code(code);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // A daemon container on onnxruntime.
    let d = TestDaemon::start(&env, &[]);
    let mut args = vec!["run", "-d", "--name", "ort", "--nn-backend", "onnxruntime"];
    args.extend(["--nn-model", &classifier, p1::NN, "classify", "mnist"]);
    d.wedge(&env, &args).expect_code(0);
    assert_eq!(d.wedge(&env, &["wait", "ort"]).stdout.trim(), "0");
    let logs = d.wedge(&env, &["logs", "ort"]).stdout;
    assert!(logs.contains("class 1\n"), "{logs}");
    // A machine without the library: a one-line error before the app runs.
    let mut args = ort.to_vec();
    args.extend(["--nn-model", &classifier, p1::NN, "classify", "mnist"]);
    env.wedge_with(
        &args,
        b"",
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so".into())],
    )
    .expect_code(125)
    .expect_one_line_error("cannot load onnxruntime");
}

#[test]
fn images_carry_model_names_and_the_operator_grants_the_files() {
    let env = Env::new();
    let dir = app_folder(
        &env,
        p1::NN,
        "classifier",
        "[nn]\nmodels = { mnist = \"model.onnx\" }\nmax_contexts = 1\n",
    );
    std::fs::copy(CLASSIFIER, dir.join("model.onnx")).unwrap();
    let reference = "local/nn-classifier:1";
    env.wedge(&["build", "-t", reference, dir.to_str().unwrap()])
        .expect_code(0);
    let run = env.wedge(&["image", "inspect", reference]);
    run.expect_code(0);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        info["requested"]["nn"]["models"][0], "mnist",
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("model.onnx"),
        "a host path travelled in the image: {}",
        run.stdout
    );
    // The image names the model; only the operator's grant supplies the file.
    env.wedge(&["run", "--grant-requested", reference, "classify", "mnist"])
        .expect_code(1);
    let grant = model_grant("mnist", CLASSIFIER);
    let run = env.wedge(&["run", "--nn-model", &grant, reference, "classify", "mnist"]);
    run.expect_code(0);
    assert!(run.stdout.contains("class 1\n"), "{}", run.stdout);
    // Its context cap applies as a limit.
    let run = env.wedge(&[
        "run",
        "--nn-model",
        &grant,
        reference,
        "contexts",
        "mnist",
        "2",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("init-execution-context"),
        "{}",
        run.stderr
    );
}
