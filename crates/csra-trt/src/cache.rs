//! Engine-cache file names: everything an engine depends on is in its name, so a new model, a
//! JetPack upgrade, another GPU, precision or DLA core never loads a stale engine.

use sha2::{Digest, Sha256};

use crate::library::{DeviceInfo, Version};
use crate::options::{BatchProfile, Options, Precision};

/// What a serialized engine depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The file stem of the model, for people reading the directory.
    pub model_stem: String,
    /// sha256 of the ONNX bytes, hex.
    pub model_sha256: String,
    /// The loaded TensorRT version.
    pub tensorrt: Version,
    /// The GPU's name.
    pub gpu: String,
    /// The GPU's compute capability.
    pub compute: (i32, i32),
    /// The DLA core, or the GPU.
    pub dla_core: Option<u32>,
    /// The precision.
    pub precision: Precision,
    /// The batch profile.
    pub batch: BatchProfile,
    /// For INT8: a digest of the calibration input, which decides the engine's scales.
    pub calibration_digest: Option<String>,
}

impl CacheKey {
    /// The key for `onnx` (the model's bytes) built with `options` on `device`.
    ///
    /// `calibration_cache` is the calibration cache's content when INT8 calibrates from a cache
    /// file alone.
    pub fn new(
        model_stem: &str,
        onnx: &[u8],
        tensorrt: Version,
        device: &DeviceInfo,
        options: &Options,
        calibration_cache: Option<&[u8]>,
    ) -> CacheKey {
        let calibration_digest = match (&options.calibration, options.precision) {
            (Some(c), Precision::Int8) => {
                let mut h = Sha256::new();
                if c.data.is_empty() {
                    h.update(calibration_cache.unwrap_or_default());
                } else {
                    for v in &c.data {
                        h.update(v.to_le_bytes());
                    }
                }
                Some(hex(&h.finalize())[..12].to_owned())
            }
            _ => None,
        };
        CacheKey {
            model_stem: model_stem.to_owned(),
            model_sha256: sha256_hex(onnx),
            tensorrt,
            gpu: device.name.clone(),
            compute: device.compute,
            dla_core: options.dla_core,
            precision: options.precision,
            batch: options.batch,
            calibration_digest,
        }
    }

    /// The engine's file name, e.g.
    /// `model-<sha256>-trt10.3.0-orin-sm87-gpu-fp16.engine`.
    pub fn file_name(&self) -> String {
        let mut name = format!(
            "{}-{}-trt{}-{}-sm{}{}-{}-{}",
            sanitise(&self.model_stem),
            self.model_sha256,
            self.tensorrt,
            sanitise(&self.gpu),
            self.compute.0,
            self.compute.1,
            match self.dla_core {
                Some(core) => format!("dla{core}"),
                None => "gpu".to_owned(),
            },
            self.precision,
        );
        if let Some(digest) = &self.calibration_digest {
            name += &format!("-cal{digest}");
        }
        if self.batch != BatchProfile::default() {
            let b = self.batch;
            name += &format!("-b{}-{}-{}", b.min, b.opt, b.max);
        }
        name + ".engine"
    }

    /// The timing cache's file name: TensorRT's timings hold for one TensorRT and one GPU.
    pub fn timing_cache_name(&self) -> String {
        format!(
            "timing-trt{}-{}-sm{}{}.cache",
            self.tensorrt,
            sanitise(&self.gpu),
            self.compute.0,
            self.compute.1
        )
    }
}

/// sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case ASCII letters and digits; every other run of characters becomes one `_`.
fn sanitise(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "unnamed".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Calibration;

    fn device(name: &str, compute: (i32, i32)) -> DeviceInfo {
        DeviceInfo {
            index: 0,
            name: name.to_owned(),
            compute,
            integrated: true,
            zero_copy: true,
            fast_fp16: true,
            fast_int8: true,
            dla_cores: 2,
            total_memory: 0,
        }
    }

    const TRT: Version = Version {
        major: 8,
        minor: 5,
        patch: 2,
    };

    fn name(onnx: &[u8], trt: Version, dev: &DeviceInfo, o: &Options) -> String {
        CacheKey::new("model", onnx, trt, dev, o, None).file_name()
    }

    #[test]
    fn the_name_spells_out_every_dependency() {
        let o = Options::new("/c");
        let n = name(b"abc", TRT, &device("NVIDIA Orin (nvgpu)", (8, 7)), &o);
        // sha256("abc"), a published test vector.
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            n,
            format!("model-{sha}-trt8.5.2-nvidia_orin_nvgpu-sm87-gpu-fp32.engine")
        );
    }

    #[test]
    fn any_change_of_model_version_gpu_precision_or_dla_changes_the_name() {
        let orin = device("Orin", (8, 7));
        let base_options = Options::new("/c");
        let base = name(b"model", TRT, &orin, &base_options);
        let mut fp16 = base_options.clone();
        fp16.precision = Precision::Fp16;
        let mut dla = fp16.clone();
        dla.dla_core = Some(0);
        let mut dla1 = fp16.clone();
        dla1.dla_core = Some(1);
        let mut batch = base_options.clone();
        batch.batch = BatchProfile {
            min: 1,
            opt: 4,
            max: 8,
        };
        let newer = Version {
            major: 10,
            minor: 3,
            patch: 0,
        };
        let names = [
            base.clone(),
            name(b"model2", TRT, &orin, &base_options),
            name(b"model", newer, &orin, &base_options),
            name(b"model", TRT, &device("Xavier", (8, 7)), &base_options),
            name(b"model", TRT, &device("Orin", (7, 2)), &base_options),
            name(b"model", TRT, &orin, &fp16),
            name(b"model", TRT, &orin, &dla),
            name(b"model", TRT, &orin, &dla1),
            name(b"model", TRT, &orin, &batch),
        ];
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:#?}");
        // The same inputs give the same name: the cache is found again.
        assert_eq!(name(b"model", TRT, &orin, &base_options), base);
    }

    #[test]
    fn int8_engines_depend_on_their_calibration() {
        let orin = device("Orin", (8, 7));
        let mut o = Options::new("/c");
        o.precision = Precision::Int8;
        o.calibration = Some(Calibration {
            data: vec![0.25; 6],
            cache: "/c/calib".into(),
        });
        let a = name(b"m", TRT, &orin, &o);
        o.calibration = Some(Calibration {
            data: vec![0.5; 6],
            cache: "/c/calib".into(),
        });
        let b = name(b"m", TRT, &orin, &o);
        assert_ne!(a, b);
        assert!(a.contains("-int8-cal"), "{a}");
    }

    #[test]
    fn sanitising_keeps_letters_and_digits_only() {
        assert_eq!(sanitise("NVIDIA Jetson AGX Orin"), "nvidia_jetson_agx_orin");
        assert_eq!(sanitise("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitise("///"), "unnamed");
    }
}
