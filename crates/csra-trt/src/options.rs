//! How to build and run an engine, and the checks that refuse impossible combinations before
//! minutes of building are spent.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::TrtError;
use crate::library::DeviceInfo;

/// The engine's number format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// FP32 throughout.
    #[default]
    Fp32,
    /// FP16 kernels where faster (needs a GPU with fast FP16).
    Fp16,
    /// INT8 kernels after entropy calibration, FP16/FP32 where INT8 has none.
    Int8,
}

impl Precision {
    /// The flag spelling: `fp32`, `fp16` or `int8`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }

    /// The shim's `csra_trt_precision` code.
    pub(crate) fn code(self) -> i32 {
        match self {
            Precision::Fp32 => 0,
            Precision::Fp16 => 1,
            Precision::Int8 => 2,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = TrtError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            _ => Err(TrtError::Options(format!(
                "unknown precision {s:?}: use fp32, fp16 or int8"
            ))),
        }
    }
}

/// The optimisation profile of a dynamic batch dimension (ignored by static-batch models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchProfile {
    /// The smallest batch the engine takes.
    pub min: u32,
    /// The batch TensorRT tunes for; the engine's buffers are sized for it.
    pub opt: u32,
    /// The largest batch the engine takes.
    pub max: u32,
}

impl Default for BatchProfile {
    fn default() -> Self {
        BatchProfile {
            min: 1,
            opt: 1,
            max: 1,
        }
    }
}

/// INT8 calibration input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calibration {
    /// Preprocessed pictures, exactly as inference takes them, one after the other (may be
    /// empty when `cache` already exists).
    pub data: Vec<f32>,
    /// The calibration cache: written after calibrating on `data`; read instead of
    /// calibrating only when `data` is empty (so new pictures never meet a stale cache).
    pub cache: PathBuf,
}

/// Everything that decides how an engine is built and where it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The CUDA device index.
    pub device: u32,
    /// The engine's number format.
    pub precision: Precision,
    /// The DLA core to run on (with GPU fallback), or the GPU when `None`.
    pub dla_core: Option<u32>,
    /// TensorRT's workspace memory-pool limit, in MiB.
    pub workspace_mib: u64,
    /// The batch profile for dynamic-batch models.
    pub batch: BatchProfile,
    /// INT8 calibration; required for `Precision::Int8`.
    pub calibration: Option<Calibration>,
    /// The directory of serialized engines (created when missing).
    pub engine_cache: PathBuf,
    /// TensorRT's timing cache; by default a file per TensorRT version and GPU in
    /// `engine_cache`.
    pub timing_cache: Option<PathBuf>,
}

impl Options {
    /// FP32 on GPU 0 with a 1 GiB workspace and engines kept in `engine_cache`.
    pub fn new(engine_cache: impl Into<PathBuf>) -> Options {
        Options {
            device: 0,
            precision: Precision::Fp32,
            dla_core: None,
            workspace_mib: 1024,
            batch: BatchProfile::default(),
            calibration: None,
            engine_cache: engine_cache.into(),
            timing_cache: None,
        }
    }

    /// Refuses combinations no device can build: DLA with FP32, INT8 without calibration, an
    /// empty workspace, a disordered batch profile.
    pub fn validate(&self) -> Result<(), TrtError> {
        if let (Some(core), Precision::Fp32) = (self.dla_core, self.precision) {
            return Err(TrtError::Options(format!(
                "--dla {core} needs --precision fp16 or int8: the DLA runs no FP32"
            )));
        }
        if self.precision == Precision::Int8 {
            let usable = self
                .calibration
                .as_ref()
                .is_some_and(|c| !c.data.is_empty() || c.cache.is_file());
            if !usable {
                return Err(TrtError::Options(
                    "--precision int8 needs calibration pictures (--calibration DIR) or an \
                     existing calibration cache"
                        .to_owned(),
                ));
            }
        }
        if self.workspace_mib == 0 {
            return Err(TrtError::Options(
                "the TensorRT workspace must be at least 1 MiB".to_owned(),
            ));
        }
        let b = self.batch;
        if b.min == 0 || b.min > b.opt || b.opt > b.max || i32::try_from(b.max).is_err() {
            return Err(TrtError::Options(format!(
                "the batch profile needs 1 <= min <= opt <= max, got {}/{}/{}",
                b.min, b.opt, b.max
            )));
        }
        Ok(())
    }

    /// Refuses what `device` cannot do: FP16 or INT8 without fast kernels, a DLA core it lacks.
    pub fn validate_for(&self, device: &DeviceInfo) -> Result<(), TrtError> {
        self.validate()?;
        match self.precision {
            Precision::Fp16 if !device.fast_fp16 => {
                return Err(TrtError::Options(format!(
                    "{} has no fast FP16; use --precision fp32",
                    device.name
                )))
            }
            Precision::Int8 if !device.fast_int8 => {
                return Err(TrtError::Options(format!(
                    "{} has no fast INT8; use --precision fp16 or fp32",
                    device.name
                )))
            }
            _ => {}
        }
        if let Some(core) = self.dla_core {
            if core >= device.dla_cores {
                let fix = if device.dla_cores == 0 {
                    "drop --dla".to_owned()
                } else {
                    format!("pass --dla 0..{}", device.dla_cores - 1)
                };
                return Err(TrtError::Options(format!(
                    "{} has {} DLA cores, so no core {core}; {fix}",
                    device.name, device.dla_cores
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orin(dla_cores: u32) -> DeviceInfo {
        DeviceInfo {
            index: 0,
            name: "Orin".to_owned(),
            compute: (8, 7),
            integrated: true,
            zero_copy: true,
            fast_fp16: true,
            fast_int8: true,
            dla_cores,
            total_memory: 0,
        }
    }

    fn message(r: Result<(), TrtError>) -> String {
        r.expect_err("should be refused").to_string()
    }

    #[test]
    fn the_defaults_are_valid() {
        Options::new("/cache").validate().unwrap();
        Options::new("/cache").validate_for(&orin(0)).unwrap();
    }

    #[test]
    fn dla_with_fp32_is_refused_and_with_fp16_accepted() {
        let mut o = Options::new("/cache");
        o.dla_core = Some(0);
        assert!(message(o.validate()).contains("--precision fp16 or int8"));
        o.precision = Precision::Fp16;
        o.validate_for(&orin(2)).unwrap();
    }

    #[test]
    fn int8_without_calibration_is_refused() {
        let mut o = Options::new("/cache");
        o.precision = Precision::Int8;
        assert!(message(o.validate()).contains("--calibration"));
        o.calibration = Some(Calibration {
            data: Vec::new(),
            cache: "/nonexistent/calib.cache".into(),
        });
        assert!(message(o.validate()).contains("--calibration"));
        o.calibration = Some(Calibration {
            data: vec![0.5; 12],
            cache: "/nonexistent/calib.cache".into(),
        });
        o.validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("calib.cache");
        std::fs::write(&cache, b"cache").unwrap();
        o.calibration = Some(Calibration {
            data: Vec::new(),
            cache,
        });
        o.validate().unwrap();
    }

    #[test]
    fn a_dla_core_the_device_lacks_is_refused_at_build_time() {
        let mut o = Options::new("/cache");
        o.precision = Precision::Fp16;
        o.dla_core = Some(1);
        o.validate().unwrap();
        assert!(message(o.validate_for(&orin(1))).contains("pass --dla 0..0"));
        assert!(message(o.validate_for(&orin(0))).contains("drop --dla"));
        o.validate_for(&orin(2)).unwrap();
    }

    #[test]
    fn precisions_the_device_lacks_are_refused() {
        let mut slow = orin(0);
        slow.fast_fp16 = false;
        slow.fast_int8 = false;
        let mut o = Options::new("/cache");
        o.precision = Precision::Fp16;
        assert!(message(o.validate_for(&slow)).contains("no fast FP16"));
        o.precision = Precision::Int8;
        o.calibration = Some(Calibration {
            data: vec![0.0; 3],
            cache: "/c".into(),
        });
        assert!(message(o.validate_for(&slow)).contains("no fast INT8"));
    }

    #[test]
    fn bad_workspace_and_batch_profiles_are_refused() {
        let mut o = Options::new("/cache");
        o.workspace_mib = 0;
        assert!(message(o.validate()).contains("workspace"));
        o.workspace_mib = 16;
        o.batch = BatchProfile {
            min: 2,
            opt: 1,
            max: 4,
        };
        assert!(message(o.validate()).contains("min <= opt <= max"));
        o.batch.min = 0;
        assert!(message(o.validate()).contains("min <= opt <= max"));
    }

    #[test]
    fn precision_parses_its_flag_spellings_only() {
        for p in [Precision::Fp32, Precision::Fp16, Precision::Int8] {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("FP16".parse::<Precision>().unwrap(), Precision::Fp16);
        assert!("fp8".parse::<Precision>().is_err());
    }
}
