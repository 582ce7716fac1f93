//! The onnxruntime backend (cargo feature `onnxruntime`), on the `ort` crate with
//! onnxruntime's shared library loaded at run time rather than linked: from
//! `ORT_DYLIB_PATH`, else `libonnxruntime.so` on the library path (the PyPI wheel ships
//! one in `onnxruntime/capi/`). Nothing is downloaded.
//!
//! A model is one onnxruntime session (CPU, all graph optimizations, `threads` intra-op
//! threads) shared by every app granted it; their inferences take turns on it. Tensors
//! of f32, f64, u8, i32 and i64 go in and out. Only models the operator granted by file
//! run here; a guest's bytes always go to tract.

use super::caught;
use super::context::{Port, Runner};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{DynValue, Tensor as OrtTensor, ValueType};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use wasmtime_wasi_nn::Tensor;
use wasmtime_wasi_nn::wit::TensorType;

/// A model loaded into an onnxruntime session.
pub struct OrtModel {
    session: Mutex<Session>,
    inputs: Vec<Port>,
    outputs: Vec<String>,
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl OrtModel {
    /// Loads the ONNX file an operator granted into a new session whose inferences use
    /// `threads` threads; weights it keeps in files beside it (ONNX external data) are
    /// found there. The error is one line. Models from a guest's bytes never come here:
    /// they could name any file of the host as external data (see `BytesLoader`).
    pub fn from_file(path: &Path, threads: usize) -> Result<OrtModel, String> {
        library()?;
        let session = caught(|| {
            Session::builder()?
                .with_optimization_level(GraphOptimizationLevel::Level3)?
                .with_intra_threads(threads)?
                .with_inter_threads(1)?
                .commit_from_file(path)
        })?
        .map_err(one_line)?;
        let inputs = session
            .inputs
            .iter()
            .map(|input| match &input.input_type {
                ValueType::Tensor { ty, shape, .. } => Ok(Port {
                    name: input.name.clone(),
                    ty: wasi_type(*ty).map_err(|e| format!("input `{}`: {e}", input.name))?,
                    dims: shape.iter().map(|&d| usize::try_from(d).ok()).collect(),
                }),
                other => Err(format!("input `{}` is a {other}, not a tensor", input.name)),
            })
            .collect::<Result<_, String>>()?;
        let outputs = session.outputs.iter().map(|o| o.name.clone()).collect();
        Ok(OrtModel {
            session: Mutex::new(session),
            inputs,
            outputs,
        })
    }
}

impl Runner for OrtModel {
    type Input = Tensor;

    fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    fn outputs(&self) -> &[String] {
        &self.outputs
    }

    fn prepare(&self, ix: usize, tensor: &Tensor) -> Result<Tensor, String> {
        self.inputs[ix].check(tensor)?;
        Ok(tensor.clone())
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        let values = self
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(port, tensor)| Ok((port.name.as_str(), to_value(tensor)?)))
            .collect::<Result<Vec<(&str, SessionInputValue<'static>)>, String>>()?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        caught(|| {
            let outputs = session.run(values).map_err(one_line)?;
            (0..outputs.len())
                .map(|ix| from_value(&outputs[ix]))
                .collect()
        })?
    }
}

/// Loads onnxruntime's library once per process, so that a missing or unusable one is
/// an error here rather than a panic inside `ort`, which loads the same path next.
fn library() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path =
                std::env::var_os("ORT_DYLIB_PATH").unwrap_or_else(|| "libonnxruntime.so".into());
            // SAFETY: loading onnxruntime runs only its own initializers, as `ort` does
            // when it loads the library itself.
            match unsafe { libloading::Library::new(&path) } {
                Ok(library) => {
                    // Kept loaded for the life of the process, as `ort` keeps it.
                    std::mem::forget(library);
                    Ok(())
                }
                Err(e) => Err(format!(
                    "cannot load onnxruntime from `{}`: {e} (set ORT_DYLIB_PATH to its \
                     libonnxruntime.so, e.g. the one in the PyPI wheel's onnxruntime/capi/)",
                    Path::new(&path).display()
                )),
            }
        })
        .clone()
}

fn one_line(e: ort::Error) -> String {
    e.to_string().replace('\n', " ")
}

/// The WASI-NN type of an onnxruntime element type, for those this backend carries.
fn wasi_type(ty: TensorElementType) -> Result<TensorType, String> {
    Ok(match ty {
        TensorElementType::Float32 => TensorType::Fp32,
        TensorElementType::Float64 => TensorType::Fp64,
        TensorElementType::Uint8 => TensorType::U8,
        TensorElementType::Int32 => TensorType::I32,
        TensorElementType::Int64 => TensorType::I64,
        other => return Err(format!("{other} tensors are not supported by this backend")),
    })
}

/// Plain numbers that a WASI-NN tensor holds as little-endian bytes.
trait LeBytes: Sized + Copy {
    fn read(bytes: &[u8]) -> Vec<Self>;
    fn write(values: &[Self]) -> Vec<u8>;
}

macro_rules! le_bytes {
    ($($ty:ty),*) => {$(
        impl LeBytes for $ty {
            fn read(bytes: &[u8]) -> Vec<Self> {
                bytes
                    .chunks_exact(size_of::<$ty>())
                    .map(|c| {
                        let mut raw = [0u8; size_of::<$ty>()];
                        raw.copy_from_slice(c);
                        <$ty>::from_le_bytes(raw)
                    })
                    .collect()
            }
            fn write(values: &[Self]) -> Vec<u8> {
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
        }
    )*};
}
le_bytes!(f32, f64, u8, i32, i64);

/// A checked guest tensor as an onnxruntime value.
fn to_value(tensor: &Tensor) -> Result<SessionInputValue<'static>, String> {
    fn make<T: LeBytes + ort::tensor::PrimitiveTensorElementType + std::fmt::Debug + 'static>(
        shape: Vec<i64>,
        data: &[u8],
    ) -> Result<SessionInputValue<'static>, String> {
        Ok(OrtTensor::<T>::from_array((shape, T::read(data)))
            .map_err(one_line)?
            .into())
    }
    let shape: Vec<i64> = tensor.dimensions.iter().map(|&d| i64::from(d)).collect();
    match tensor.ty {
        TensorType::Fp32 => make::<f32>(shape, &tensor.data),
        TensorType::Fp64 => make::<f64>(shape, &tensor.data),
        TensorType::U8 => make::<u8>(shape, &tensor.data),
        TensorType::I32 => make::<i32>(shape, &tensor.data),
        TensorType::I64 => make::<i64>(shape, &tensor.data),
        other => Err(format!(
            "{other:?} tensors are not supported by this backend"
        )),
    }
}

/// An onnxruntime output as a WASI-NN tensor.
fn from_value(value: &DynValue) -> Result<Tensor, String> {
    fn take<T: LeBytes + ort::tensor::PrimitiveTensorElementType + std::fmt::Debug>(
        value: &DynValue,
        ty: TensorType,
    ) -> Result<Tensor, String> {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(one_line)?;
        let dimensions = shape
            .iter()
            .map(|&d| u32::try_from(d).map_err(|_| format!("output dimension {d} is out of range")))
            .collect::<Result<_, _>>()?;
        Ok(Tensor::new(dimensions, ty, T::write(data)))
    }
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err("the model returned something other than a tensor".into());
    };
    match wasi_type(*ty)? {
        TensorType::Fp32 => take::<f32>(value, TensorType::Fp32),
        TensorType::Fp64 => take::<f64>(value, TensorType::Fp64),
        TensorType::U8 => take::<u8>(value, TensorType::U8),
        TensorType::I32 => take::<i32>(value, TensorType::I32),
        TensorType::I64 => take::<i64>(value, TensorType::I64),
        other => Err(format!(
            "{other:?} outputs are not supported by this backend"
        )),
    }
}
