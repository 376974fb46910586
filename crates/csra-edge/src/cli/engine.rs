//! `--backend`, `--precision`, `--dla`, `--calibration`, `--engine-cache`, `--workspace-mib`,
//! `--onnxruntime-library`: the engine a run, a benchmark or a check uses, with flags winning over the device profile.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use csra_edge::backend::{default_engine_cache, BackendConfig, BackendKind};
use csra_edge::model::ModelFiles;
use csra_edge::pictures::Pictures;
use csra_edge::profile::DeviceProfile;
use csra_trt::{sha256_hex, Calibration, Precision};

/// Calibrating INT8 on fewer pictures than this rarely represents the scenes.
const MIN_CALIBRATION_PICTURES: usize = 8;

/// How the network runs.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// The inference engine: auto (TensorRT when it loads and finds a GPU, else ONNX Runtime
    /// when built in and loadable, else tract), tensorrt, onnxruntime or tract [default: the
    /// device profile's].
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub backend: Option<BackendArg>,
    /// TensorRT's precision; int8 needs --calibration or an earlier calibration cache
    /// [default: the device profile's].
    #[arg(long, value_enum, value_name = "PRECISION")]
    pub precision: Option<PrecisionArg>,
    /// Run TensorRT on this DLA core, with GPU fallback (needs fp16 or int8) [default: the
    /// device profile's].
    #[arg(long, value_name = "CORE")]
    pub dla: Option<u32>,
    /// INT8 calibration pictures: a folder, file or glob, preprocessed as at inference.
    #[arg(long, value_name = "DIR|GLOB")]
    pub calibration: Option<String>,
    /// Where TensorRT engines (and timing and calibration caches) are kept [default:
    /// $STATE_DIRECTORY/engines under systemd, else ~/.cache/csra-edge/engines].
    #[arg(long, value_name = "DIR")]
    pub engine_cache: Option<PathBuf>,
    /// TensorRT's workspace memory limit in MiB [default: the device profile's, or 1024].
    #[arg(long, value_name = "MIB")]
    pub workspace_mib: Option<u64>,
    /// ONNX Runtime's shared library, for --backend onnxruntime or auto in a build with the
    /// `onnxruntime` feature [default: $ORT_DYLIB_PATH, else libonnxruntime.so on the loader's
    /// path].
    #[arg(long, value_name = "FILE")]
    pub onnxruntime_library: Option<PathBuf>,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// TensorRT when it loads and finds a GPU, else ONNX Runtime when built in, else tract.
    Auto,
    /// TensorRT on the GPU; an error when it cannot run.
    Tensorrt,
    /// ONNX Runtime on the CPU (a build with the `onnxruntime` feature).
    Onnxruntime,
    /// tract on the CPU.
    Tract,
}

impl From<BackendArg> for BackendKind {
    fn from(arg: BackendArg) -> BackendKind {
        match arg {
            BackendArg::Auto => BackendKind::Auto,
            BackendArg::Tensorrt => BackendKind::Tensorrt,
            BackendArg::Onnxruntime => BackendKind::Onnxruntime,
            BackendArg::Tract => BackendKind::Tract,
        }
    }
}

/// `--precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit floats (TF32 off).
    Fp32,
    /// 16-bit floats where faster.
    Fp16,
    /// 8-bit integers after calibration.
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(arg: PrecisionArg) -> Precision {
        match arg {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Fp16 => Precision::Fp16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

impl EngineArgs {
    /// The backend configuration for `model`: these flags over `profile`, `threads` for tract.
    /// INT8 calibration pictures are read only when TensorRT may run at INT8.
    pub fn config(
        &self,
        profile: &DeviceProfile,
        model: &ModelFiles,
        threads: usize,
    ) -> anyhow::Result<BackendConfig> {
        let kind = self.backend.map_or(profile.backend, BackendKind::from);
        let precision = self.precision.map_or(profile.precision, Precision::from);
        self.config_at(kind, precision, profile, model, threads)
    }

    /// [`EngineArgs::config`] at a given engine and precision (`verify` tries several).
    pub fn config_at(
        &self,
        kind: BackendKind,
        precision: Precision,
        profile: &DeviceProfile,
        model: &ModelFiles,
        threads: usize,
    ) -> anyhow::Result<BackendConfig> {
        let engine_cache = self
            .engine_cache
            .clone()
            .unwrap_or_else(default_engine_cache);
        let mut tensorrt = csra_trt::Options::new(engine_cache);
        tensorrt.precision = precision;
        tensorrt.dla_core = self.dla.or(profile.dla_core);
        if let Some(mib) = self.workspace_mib.or(profile.workspace_mib) {
            tensorrt.workspace_mib = mib;
        }
        let tensorrt_may_run = matches!(kind, BackendKind::Auto | BackendKind::Tensorrt);
        if precision == Precision::Int8 && tensorrt_may_run {
            tensorrt.calibration = Some(self.calibration(model, &tensorrt.engine_cache)?);
        }
        Ok(BackendConfig {
            kind,
            threads,
            onnxruntime_library: self.onnxruntime_library.clone(),
            tensorrt,
        })
    }

    /// The calibration pictures, and the calibration cache beside the engines (named by the
    /// model's digest, so another model never reads it).
    fn calibration(
        &self,
        model: &ModelFiles,
        engine_cache: &std::path::Path,
    ) -> anyhow::Result<Calibration> {
        let onnx = std::fs::read(&model.onnx)
            .with_context(|| format!("reading {}", model.onnx.display()))?;
        let cache = engine_cache.join(format!("{}.int8-calibration", &sha256_hex(&onnx)[..16]));
        let data = match &self.calibration {
            Some(input) => {
                let pictures = Pictures::read(input, &model.manifest, MIN_CALIBRATION_PICTURES)
                    .with_context(|| format!("--calibration {input}"))?;
                log::info!(
                    "INT8 calibration on {} picture(s) from {input} ({} skipped)",
                    pictures.len(),
                    pictures.skipped
                );
                pictures.data
            }
            None => Vec::new(),
        };
        Ok(Calibration { data, cache })
    }
}
