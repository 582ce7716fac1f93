//! Runs ONNX models through WASI-NN, for wedge's tests and benchmarks: as a core module
//! on the preview 1 ABI (`wasi_ephemeral_nn`), as a component on `wasi:nn`. The models
//! are `crates/test-programs/models` (see its README for the canonical inputs).
//!
//! - `classify NAME`: the canonical image through the named model; prints `logits`
//!   and the ten values, then `class K`
//! - `embed NAME T0 … T15`: a sentence's 16 token ids through the named embedder;
//!   prints `embedding` and the 32 values
//! - `bytes PATH`: loads the model from the file's bytes instead, then classifies
//! - `wrong-shape NAME`, `wrong-type NAME`: classifies with a flat [1, 784] tensor, or
//!   with i32 values (both must fail)
//! - `contexts NAME N`: holds N execution contexts at once; prints `contexts N`
//! - `bench NAME N`: N classifications, printing nothing but `done N`
//! - `bad-pointer NAME`: (preview 1) passes the host a tensor outside its memory
//!
//! A WASI-NN error goes to stderr as `error: …` with exit status 1.

use std::process::ExitCode;

/// The canonical classifier input: `x[i] = (i % 17) / 16` over [1, 1, 28, 28].
fn canonical_image() -> Vec<f32> {
    (0..784).map(|i| (i % 17) as f32 / 16.0).collect()
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

fn from_le_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn print_values(label: &str, values: &[f32]) {
    let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    println!("{label} {}", text.join(" "));
}

/// One input tensor: the model's name for it, dimensions, element type, little-endian
/// data.
struct Input {
    name: &'static str,
    dims: Vec<u32>,
    ty: Kind,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Kind {
    F32,
    I32,
    I64,
}

fn image_input(dims: Vec<u32>) -> Input {
    Input {
        name: "image",
        dims,
        ty: Kind::F32,
        data: le_bytes(&canonical_image(), f32::to_le_bytes),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let count = |i: usize| -> Result<usize, String> {
        arg(i)?.parse().map_err(|_| format!("`{}` is not a number", arg(i).unwrap_or("")))
    };
    match arg(0)? {
        "classify" => classify(nn::Model::by_name(arg(1)?)?, image_input(vec![1, 1, 28, 28])),
        "bytes" => {
            let path = arg(1)?;
            let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
            classify(nn::Model::from_bytes(&bytes)?, image_input(vec![1, 1, 28, 28]))
        }
        "wrong-shape" => classify(nn::Model::by_name(arg(1)?)?, image_input(vec![1, 784])),
        "wrong-type" => {
            let ints: Vec<i32> = (0..784).map(|i| i % 17).collect();
            let input = Input {
                name: "image",
                dims: vec![1, 1, 28, 28],
                ty: Kind::I32,
                data: le_bytes(&ints, i32::to_le_bytes),
            };
            classify(nn::Model::by_name(arg(1)?)?, input)
        }
        "embed" => {
            let tokens = args[2..]
                .iter()
                .map(|t| t.parse::<i64>().map_err(|_| format!("bad token `{t}`")))
                .collect::<Result<Vec<_>, _>>()?;
            let input = Input {
                name: "tokens",
                dims: vec![1, tokens.len() as u32],
                ty: Kind::I64,
                data: le_bytes(&tokens, i64::to_le_bytes),
            };
            let out = nn::Model::by_name(arg(1)?)?.context()?.infer(&input)?;
            print_values("embedding", &from_le_f32(&out));
            Ok(())
        }
        "contexts" => {
            let model = nn::Model::by_name(arg(1)?)?;
            let n = count(2)?;
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(model.context()?);
            }
            println!("contexts {}", held.len());
            Ok(())
        }
        "bench" => {
            let n = count(2)?;
            let mut context = nn::Model::by_name(arg(1)?)?.context()?;
            let input = image_input(vec![1, 1, 28, 28]);
            for _ in 0..n {
                context.infer(&input)?;
            }
            println!("done {n}");
            Ok(())
        }
        "bad-pointer" => nn::Model::by_name(arg(1)?)?.context()?.bad_pointer(),
        other => Err(format!("unknown command `{other}`")),
    }
}

fn classify(model: nn::Model, input: Input) -> Result<(), String> {
    let logits = from_le_f32(&model.context()?.infer(&input)?);
    print_values("logits", &logits);
    let class = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0);
    println!("class {class}");
    Ok(())
}

/// The preview 1 ABI: `wasi_ephemeral_nn`, as its witx lowers it.
#[cfg(target_env = "p1")]
mod nn {
    use super::{Input, Kind};

    #[link(wasm_import_module = "wasi_ephemeral_nn")]
    unsafe extern "C" {
        fn load(builders: *const Slice, count: u32, encoding: u32, target: u32, graph: *mut u32)
        -> u32;
        fn load_by_name(name: *const u8, len: u32, graph: *mut u32) -> u32;
        fn init_execution_context(graph: u32, context: *mut u32) -> u32;
        fn set_input(context: u32, index: u32, tensor: *const Tensor) -> u32;
        fn compute(context: u32) -> u32;
        fn get_output(context: u32, index: u32, out: *mut u8, max: u32, written: *mut u32)
        -> u32;
    }

    /// A `list<u8>` as the ABI passes it.
    #[repr(C)]
    struct Slice {
        ptr: *const u8,
        len: u32,
    }

    /// The `tensor` record as the ABI lays it out.
    #[repr(C)]
    struct Tensor {
        dims: *const u32,
        dims_len: u32,
        ty: u8,
        data: *const u8,
        data_len: u32,
    }

    const ONNX: u32 = 1;
    const CPU: u32 = 0;

    fn check(errno: u32, what: &str) -> Result<(), String> {
        const NAMES: [&str; 9] = [
            "success",
            "invalid-argument",
            "invalid-encoding",
            "missing-memory",
            "busy",
            "runtime-error",
            "unsupported-operation",
            "too-large",
            "not-found",
        ];
        match errno {
            0 => Ok(()),
            n => Err(format!(
                "{what}: {}",
                NAMES.get(n as usize).copied().unwrap_or("unknown error")
            )),
        }
    }

    pub struct Model(u32);
    pub struct Context(u32);

    impl Model {
        pub fn by_name(name: &str) -> Result<Model, String> {
            let mut graph = 0;
            // SAFETY: the pointers are valid for the call.
            check(
                unsafe { load_by_name(name.as_ptr(), name.len() as u32, &mut graph) },
                "load-by-name",
            )?;
            Ok(Model(graph))
        }

        pub fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
            let builder = Slice {
                ptr: bytes.as_ptr(),
                len: bytes.len() as u32,
            };
            let mut graph = 0;
            // SAFETY: the pointers are valid for the call.
            check(unsafe { load(&builder, 1, ONNX, CPU, &mut graph) }, "load")?;
            Ok(Model(graph))
        }

        pub fn context(&self) -> Result<Context, String> {
            let mut context = 0;
            // SAFETY: the pointer is valid for the call.
            check(
                unsafe { init_execution_context(self.0, &mut context) },
                "init-execution-context",
            )?;
            Ok(Context(context))
        }
    }

    impl Context {
        /// Hands the host a tensor record that points outside linear memory.
        pub fn bad_pointer(&mut self) -> Result<(), String> {
            let tensor = Tensor {
                dims: 0xffff_fff0 as *const u32,
                dims_len: 4,
                ty: 1,
                data: 0xffff_ff00 as *const u8,
                data_len: 3136,
            };
            // SAFETY: the host reads the record, which is valid; it must refuse what
            // the record points at.
            check(unsafe { set_input(self.0, 0, &tensor) }, "set-input")
        }

        /// Runs one input through the model; the first output's bytes.
        pub fn infer(&mut self, input: &Input) -> Result<Vec<u8>, String> {
            let ty = match input.ty {
                Kind::F32 => 1,
                Kind::I32 => 4,
                Kind::I64 => 5,
            };
            let tensor = Tensor {
                dims: input.dims.as_ptr(),
                dims_len: input.dims.len() as u32,
                ty,
                data: input.data.as_ptr(),
                data_len: input.data.len() as u32,
            };
            // SAFETY: the tensor and the buffers it points at outlive the calls.
            unsafe {
                check(set_input(self.0, 0, &tensor), "set-input")?;
                check(compute(self.0), "compute")?;
                let mut out = vec![0u8; 1 << 16];
                let mut written = 0;
                check(
                    get_output(self.0, 0, out.as_mut_ptr(), out.len() as u32, &mut written),
                    "get-output",
                )?;
                out.truncate(written as usize);
                Ok(out)
            }
        }
    }
}

/// The component ABI: `wasi:nn` as wasmtime-wasi-nn 48 carries it.
#[cfg(target_env = "p2")]
mod nn {
    use super::{Input, Kind};

    wit_bindgen::generate!({
        path: "../../../../wit/deps/nn",
        world: "wasi:nn/ml",
    });
    use wasi::nn::errors::Error;
    use wasi::nn::graph::{self, ExecutionTarget, GraphEncoding};
    use wasi::nn::inference::GraphExecutionContext;
    use wasi::nn::tensor::{Tensor, TensorType};

    fn show(what: &str, e: Error) -> String {
        format!("{what}: {:?}: {}", e.code(), e.data())
    }

    pub struct Model(graph::Graph);
    pub struct Context(GraphExecutionContext);

    impl Model {
        pub fn by_name(name: &str) -> Result<Model, String> {
            graph::load_by_name(name)
                .map(Model)
                .map_err(|e| show("load-by-name", e))
        }

        pub fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
            graph::load(&[bytes.to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu)
                .map(Model)
                .map_err(|e| show("load", e))
        }

        pub fn context(&self) -> Result<Context, String> {
            self.0
                .init_execution_context()
                .map(Context)
                .map_err(|e| show("init-execution-context", e))
        }
    }

    impl Context {
        /// Only the preview 1 ABI passes raw pointers.
        pub fn bad_pointer(&mut self) -> Result<(), String> {
            Err("bad-pointer needs the preview 1 ABI".into())
        }

        /// Runs one input through the model; the first output's bytes.
        pub fn infer(&mut self, input: &Input) -> Result<Vec<u8>, String> {
            let ty = match input.ty {
                Kind::F32 => TensorType::Fp32,
                Kind::I32 => TensorType::I32,
                Kind::I64 => TensorType::I64,
            };
            let tensor = Tensor::new(&input.dims, ty, &input.data);
            let outputs = self
                .0
                .compute(vec![(input.name.to_string(), tensor)])
                .map_err(|e| show("compute", e))?;
            let (_, first) = outputs.into_iter().next().ok_or("compute: no output")?;
            Ok(first.data())
        }
    }
}
