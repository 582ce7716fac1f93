//! The tract backend's place in a wedge built without it (cargo feature `nn` off: a
//! device build, docs/edge.md). No model can be loaded, so no [`NnModel`] exists; a
//! grant that names one fails with [`NO_TRACT`] before the app runs, and a guest that
//! loads a model from bytes gets that as its WASI-NN error.

use super::context::{Port, Runner};
use std::path::Path;
use wasmtime_wasi_nn::Tensor;

/// Why no model loads in this build.
const NO_TRACT: &str = "this wedge was built without WASI-NN's tract backend (cargo feature `nn`)";

/// A loaded model: none can exist in this build.
#[derive(Debug)]
pub enum NnModel {}

impl NnModel {
    /// Fails: there is no backend to load with.
    pub fn from_bytes(_bytes: &[u8], _threads: usize) -> Result<NnModel, String> {
        Err(NO_TRACT.into())
    }

    /// Fails: there is no backend to load with.
    pub fn from_untrusted_bytes(
        _bytes: &[u8],
        _threads: usize,
        _max_bytes: usize,
    ) -> Result<NnModel, String> {
        Err(NO_TRACT.into())
    }

    /// Fails: there is no backend to load with.
    pub fn from_file(_path: &Path, _threads: usize) -> Result<NnModel, String> {
        Err(NO_TRACT.into())
    }

    /// Never called: no model exists.
    pub fn infer(&self, _inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        match *self {}
    }
}

impl Runner for NnModel {
    type Input = ();

    fn inputs(&self) -> &[Port] {
        match *self {}
    }

    fn outputs(&self) -> &[String] {
        match *self {}
    }

    fn prepare(&self, _ix: usize, _tensor: &Tensor) -> Result<(), String> {
        match *self {}
    }

    fn run(&self, _inputs: Vec<()>) -> Result<Vec<Tensor>, String> {
        match *self {}
    }
}
