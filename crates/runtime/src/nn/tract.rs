//! The tract backend: pure Rust ONNX inference, built into wedge.

use super::context::{Port, Runner};
use super::{bounds, caught};
use std::path::Path;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, TValue, Tensor as TractTensor, TypedModel,
    TypedRunnableModel,
};
use wasmtime_wasi_nn::Tensor;
use wasmtime_wasi_nn::wit::TensorType;

/// A model loaded and optimized once, run by any number of execution contexts.
pub struct NnModel {
    plan: TypedRunnableModel<TypedModel>,
    inputs: Vec<Port>,
    outputs: Vec<String>,
}

impl std::fmt::Debug for NnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NnModel")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl NnModel {
    /// Parses, optimizes and plans an ONNX model; `threads` above 1 gives its
    /// inferences a pool of that many threads. The error is one line.
    pub fn from_bytes(bytes: &[u8], threads: usize) -> Result<NnModel, String> {
        Self::load(bytes, threads, None)
    }

    /// Like [`NnModel::from_bytes`], for bytes an untrusted guest passed: the tensors the
    /// model declares, and those tract would compute while loading and optimizing it,
    /// must fit in `max_bytes`, checked before they are allocated (see `bounds`).
    pub fn from_untrusted_bytes(
        bytes: &[u8],
        threads: usize,
        max_bytes: usize,
    ) -> Result<NnModel, String> {
        Self::load(bytes, threads, Some(max_bytes))
    }

    fn load(bytes: &[u8], threads: usize, max_bytes: Option<usize>) -> Result<NnModel, String> {
        let line = |e: tract_onnx::prelude::TractError| format!("{e:#}").replace('\n', " ");
        caught(|| {
            let onnx = tract_onnx::onnx();
            let proto = onnx.proto_model_for_read(&mut &bytes[..]).map_err(line)?;
            let budget = max_bytes.map(bounds::Budget::new);
            if let (Some(budget), Some(graph)) = (&budget, &proto.graph) {
                bounds::check_declared(graph, budget)?;
            }
            let mut model = onnx.model_for_proto_model(&proto).map_err(line)?;
            drop(proto);
            if let Some(budget) = &budget {
                bounds::bound(&mut model, budget);
            }
            let input_names: Vec<String> = model
                .input_outlets()
                .map_err(line)?
                .iter()
                .map(|o| model.node(o.node).name.clone())
                .collect();
            let outputs: Vec<String> = model
                .output_outlets()
                .map_err(line)?
                .iter()
                .map(|o| match model.outlet_label(*o) {
                    Some(label) => label.to_string(),
                    None => model.node(o.node).name.clone(),
                })
                .collect();
            let typed = model.into_typed().map_err(line)?;
            if let Some(max) = max_bytes {
                bounds::check_typed(&typed, max)?;
            }
            let typed = typed.into_optimized().map_err(line)?;
            let mut inputs = Vec::with_capacity(input_names.len());
            for (ix, name) in input_names.into_iter().enumerate() {
                let fact = typed.input_fact(ix).map_err(line)?;
                let dims = fact
                    .shape
                    .dims()
                    .iter()
                    .map(|d| d.as_i64().and_then(|n| usize::try_from(n).ok()))
                    .collect();
                inputs.push(Port {
                    ty: tensor_type(fact.datum_type).map_err(|e| format!("input `{name}`: {e}"))?,
                    name,
                    dims,
                });
            }
            let options = tract_onnx::prelude::PlanOptions {
                executor: (threads > 1)
                    .then(|| tract_linalg::multithread::Executor::multithread(threads)),
                ..Default::default()
            };
            let plan = typed.into_runnable_with_options(&options).map_err(line)?;
            Ok(NnModel {
                plan,
                inputs,
                outputs,
            })
        })?
    }

    /// Reads and loads an ONNX file (see [`NnModel::from_bytes`]).
    pub fn from_file(path: &Path, threads: usize) -> Result<NnModel, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        NnModel::from_bytes(&bytes, threads)
    }

    /// Runs the model natively on WASI-NN tensors, one per input in the model's order,
    /// checked as a guest's are; the outputs in the model's order.
    pub fn infer(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!(
                "the model takes {} inputs, not {}",
                self.inputs.len(),
                inputs.len()
            ));
        }
        let inputs = inputs
            .iter()
            .enumerate()
            .map(|(ix, t)| self.prepare(ix, t))
            .collect::<Result<_, _>>()?;
        self.run(inputs)
    }
}

impl Runner for NnModel {
    type Input = TractTensor;

    fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    fn outputs(&self) -> &[String] {
        &self.outputs
    }

    fn prepare(&self, ix: usize, tensor: &Tensor) -> Result<TractTensor, String> {
        let dims = self.inputs[ix].check(tensor)?;
        let datum = datum_type(tensor.ty)?;
        // SAFETY: `check` found the data exactly as long as the shape and type need,
        // and every bit pattern is a valid value of the plain numeric types
        // `datum_type` admits.
        unsafe { TractTensor::from_raw_dt(datum, &dims, &tensor.data) }.map_err(|e| e.to_string())
    }

    fn run(&self, inputs: Vec<TractTensor>) -> Result<Vec<Tensor>, String> {
        let inputs = inputs.into_iter().map(TValue::from).collect();
        let outputs = caught(|| self.plan.run(inputs))?.map_err(|e| format!("{e:#}"))?;
        outputs.iter().map(|v| to_guest(v)).collect()
    }
}

/// The tract type of a WASI-NN tensor type; tract has no bfloat16.
fn datum_type(ty: TensorType) -> Result<DatumType, String> {
    Ok(match ty {
        TensorType::Fp16 => DatumType::F16,
        TensorType::Fp32 => DatumType::F32,
        TensorType::Fp64 => DatumType::F64,
        TensorType::U8 => DatumType::U8,
        TensorType::I32 => DatumType::I32,
        TensorType::I64 => DatumType::I64,
        TensorType::Bf16 => return Err("bf16 tensors are not supported".into()),
    })
}

/// The WASI-NN type of a tract tensor, for the types WASI-NN has.
fn tensor_type(datum: DatumType) -> Result<TensorType, String> {
    Ok(match datum {
        DatumType::F16 => TensorType::Fp16,
        DatumType::F32 => TensorType::Fp32,
        DatumType::F64 => TensorType::Fp64,
        DatumType::U8 => TensorType::U8,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        other => {
            return Err(format!(
                "the model uses {other:?} values, which WASI-NN cannot carry"
            ));
        }
    })
}

/// A tract output as a WASI-NN tensor.
fn to_guest(tensor: &TractTensor) -> Result<Tensor, String> {
    let ty = tensor_type(tensor.datum_type())?;
    let dimensions = tensor
        .shape()
        .iter()
        .map(|&d| u32::try_from(d).map_err(|_| "an output dimension is too large".to_string()))
        .collect::<Result<_, _>>()?;
    Ok(Tensor::new(dimensions, ty, tensor.as_bytes().to_vec()))
}
