// SPDX-License-Identifier: MIT OR Apache-2.0
//! An ONNX model in an ONNX Runtime session.

use std::path::Path;
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use crate::decoders::{OutputSpec, OutputTensor};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("ONNX Runtime is not available: {0}")]
    Runtime(String),
    #[error("cannot read model '{path}': {reason}")]
    Unreadable { path: String, reason: String },
    #[error("model '{path}' is not usable: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
}

/// The process-wide ONNX Runtime environment, loaded once.
///
/// By default the runtime library is loaded at run time from `ORT_DYLIB_PATH` (falling back to
/// `libonnxruntime.so` on the library search path); with the `ort-download-binaries` feature it is
/// the one ort downloaded and linked at build time.
fn environment() -> Result<ort::environment::Environment, ModelError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        #[cfg(feature = "ort-load-dynamic")]
        let builder = {
            let path =
                std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| "libonnxruntime.so".into());
            ort::init_from(&path).map_err(|e| {
                format!("cannot load the ONNX Runtime library '{path}' ({e}); set ORT_DYLIB_PATH")
            })?
        };
        #[cfg(not(feature = "ort-load-dynamic"))]
        let builder = ort::init();
        builder
            .with_name("veil")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(ModelError::Runtime)
}

pub struct Model {
    session: Session,
    input_name: String,
    /// Declared input shape; `-1` marks dynamic dimensions.
    input_shape: Vec<i64>,
    outputs: Vec<OutputSpec>,
    /// Scratch for outputs that are not f32 (e.g. integer class ids), converted once per run.
    converted: Vec<Vec<f32>>,
}

impl Model {
    pub fn load(path: &Path, intra_threads: usize) -> Result<Model, ModelError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ModelError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let env = environment()?;
        let unsupported = |reason: String| ModelError::Unsupported {
            path: shown.clone(),
            reason,
        };
        let mut builder = Session::builder(&env).map_err(|e| ModelError::Runtime(e.to_string()))?;
        if intra_threads > 0 {
            builder = builder
                .with_intra_threads(intra_threads)
                .map_err(|e| unsupported(e.to_string()))?;
        }
        let session = builder
            .commit_from_memory(&bytes)
            .map_err(|e| unsupported(e.to_string()))?;
        let [input] = session.inputs() else {
            return Err(unsupported(format!(
                "expected one image input, found {}",
                session.inputs().len()
            )));
        };
        let input_shape = match input.dtype() {
            ValueType::Tensor {
                ty: ort::value::TensorElementType::Float32,
                shape,
                ..
            } if shape.len() == 4 => shape.to_vec(),
            other => {
                return Err(unsupported(format!(
                    "input '{}' must be a float32 NCHW tensor, found {other:?}",
                    input.name()
                )));
            }
        };
        if input_shape[1] != 3 && input_shape[1] != -1 {
            return Err(unsupported(format!(
                "input '{}' has {} channels, expected 3",
                input.name(),
                input_shape[1]
            )));
        }
        let outputs = session
            .outputs()
            .iter()
            .map(|o| OutputSpec {
                name: o.name().to_owned(),
                shape: match o.dtype() {
                    ValueType::Tensor { shape, .. } => shape.to_vec(),
                    _ => Vec::new(),
                },
            })
            .collect();
        Ok(Model {
            input_name: input.name().to_owned(),
            session,
            input_shape,
            outputs,
            converted: Vec::new(),
        })
    }

    pub fn outputs(&self) -> &[OutputSpec] {
        &self.outputs
    }

    /// The input size `(width, height)` if the model fixes it.
    pub fn fixed_input_size(&self) -> Option<(u32, u32)> {
        let (h, w) = (self.input_shape[2], self.input_shape[3]);
        (h > 0 && w > 0).then_some((w as u32, h as u32))
    }

    /// Whether the model takes several images per run (its batch dimension is dynamic).
    pub fn batchable(&self) -> bool {
        self.input_shape[0] < 0
    }

    /// Runs the model on one NCHW image and hands the outputs to `f`.
    pub fn run<R>(
        &mut self,
        input: &[f32],
        width: u32,
        height: u32,
        f: impl FnOnce(&[OutputTensor]) -> R,
    ) -> Result<R, ModelError> {
        let mut f = Some(f);
        let mut out = self.run_batch(input, 1, width, height, |_, outputs| {
            f.take().map(|f| f(outputs))
        })?;
        out.pop()
            .flatten()
            .ok_or_else(|| ModelError::Run("the model returned no result".into()))
    }

    /// Runs the model on `batch` NCHW images laid one after the other in `input` and hands the
    /// outputs of image `i` to `f(i, outputs)` (each output sliced to that image, its first
    /// dimension 1). `batch` > 1 needs a [`batchable`](Self::batchable) model.
    pub fn run_batch<R>(
        &mut self,
        input: &[f32],
        batch: usize,
        width: u32,
        height: u32,
        mut f: impl FnMut(usize, &[OutputTensor]) -> R,
    ) -> Result<Vec<R>, ModelError> {
        let run_err = |e: ort::Error| ModelError::Run(e.to_string());
        let shape = [batch as i64, 3, height as i64, width as i64];
        let tensor = TensorRef::from_array_view((shape, input)).map_err(run_err)?;
        let results = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(run_err)?;
        let mut converted = std::mem::take(&mut self.converted);
        converted.resize_with(self.outputs.len(), Vec::new);
        let mut shapes = Vec::with_capacity(self.outputs.len());
        let mut floats: Vec<Option<&[f32]>> = Vec::with_capacity(self.outputs.len());
        for (i, spec) in self.outputs.iter().enumerate() {
            let value = &results[spec.name.as_str()];
            if let Ok((shape, data)) = value.try_extract_tensor::<f32>() {
                shapes.push(shape.to_vec());
                floats.push(Some(data));
            } else {
                let (shape, data): (Vec<i64>, Vec<f32>) =
                    if let Ok((s, d)) = value.try_extract_tensor::<i64>() {
                        (s.to_vec(), d.iter().map(|&v| v as f32).collect())
                    } else if let Ok((s, d)) = value.try_extract_tensor::<i32>() {
                        (s.to_vec(), d.iter().map(|&v| v as f32).collect())
                    } else {
                        return Err(ModelError::Run(format!(
                            "output '{}' is not a numeric tensor",
                            spec.name
                        )));
                    };
                shapes.push(shape);
                converted[i] = data;
                floats.push(None);
            }
        }
        // Image i's share of each output: the outputs hold the batch along their first axis.
        let per_image: Vec<(Vec<i64>, usize)> = shapes
            .iter()
            .zip(&floats)
            .enumerate()
            .map(|(i, (shape, data))| {
                let len = data.map_or(converted[i].len(), |d| d.len());
                let mut one = shape.clone();
                if let Some(first) = one.first_mut() {
                    *first = 1;
                }
                (one, len / batch.max(1))
            })
            .collect();
        let mut results_per_image = Vec::with_capacity(batch);
        for image in 0..batch {
            let tensors: Vec<OutputTensor> = self
                .outputs
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let data = floats[i].unwrap_or(&converted[i]);
                    let (shape, len) = &per_image[i];
                    OutputTensor {
                        name: spec.name.as_str(),
                        shape: if batch == 1 { &shapes[i] } else { shape },
                        data: data.get(image * len..(image + 1) * len).unwrap_or(&[]),
                    }
                })
                .collect();
            results_per_image.push(f(image, &tensors));
        }
        drop(floats);
        drop(results);
        self.converted = converted;
        Ok(results_per_image)
    }
}
