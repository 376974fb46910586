//! Device profiles (`devices/*.toml`, built into the binary): backend, precision, DLA core,
//! threads, camera defaults and input size per Jetson module, chosen with `--device NAME` (or a
//! path to a `.toml` file) or detected from `/proc/device-tree/model`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::BackendKind;
use crate::source::v4l2::Codec;
use csra_core::manifest::MAX_INPUT_SIDE;
use csra_trt::Precision;
use thiserror::Error;

/// The profiles shipped in `devices/`, as (name, TOML text).
const BUILT_IN: [(&str, &str); 5] = [
    (
        "jetson-orin-nano",
        include_str!("../../../../devices/jetson-orin-nano.toml"),
    ),
    (
        "jetson-orin-nx",
        include_str!("../../../../devices/jetson-orin-nx.toml"),
    ),
    (
        "jetson-agx-orin",
        include_str!("../../../../devices/jetson-agx-orin.toml"),
    ),
    (
        "jetson-xavier-nx",
        include_str!("../../../../devices/jetson-xavier-nx.toml"),
    ),
    ("x86-cpu", include_str!("../../../../devices/x86-cpu.toml")),
];

/// The profile used when the device tree names no known Jetson.
pub const FALLBACK_PROFILE: &str = "x86-cpu";

/// Where the board's model string is.
pub const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";

/// An error choosing or reading a profile.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// No profile has that name.
    #[error("unknown device profile {name:?}; known profiles: {known}, or pass a path to a .toml profile")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// A profile file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A profile is not valid TOML or misses fields.
    #[error("device profile {origin}: {reason}")]
    Parse {
        /// The profile's name or file.
        origin: String,
        /// The parser's message.
        reason: String,
    },
}

/// Reads a precision the way `--precision` spells it (`fp32`, `fp16`, `int8`).
fn precision<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Precision, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Camera settings a profile starts from; `--input-*` flags override them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraDefaults {
    /// The V4L2 device.
    pub device: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub rate: u32,
    /// A pixel encoding to insist on; unset, MJPEG is preferred and YUYV taken when the
    /// camera has no MJPEG.
    #[serde(default)]
    pub codec: Option<Codec>,
}

/// The sensor mode a board's CSI camera (`--input csi://N`) runs at unless the `--input-*`
/// flags say otherwise: a mode the usual camera module (IMX219, IMX477) offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsiDefaults {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub rate: u32,
}

/// One device profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Its name, e.g. `jetson-orin-nano`.
    pub name: String,
    /// The board, in words.
    pub description: String,
    /// Substrings of `/proc/device-tree/model` that select it.
    #[serde(default)]
    pub model_match: Vec<String>,
    /// The engine to run: `auto`, `tensorrt` or `tract`.
    pub backend: BackendKind,
    /// TensorRT's precision: `fp32`, `fp16` or `int8` (tract always runs FP32).
    #[serde(deserialize_with = "precision")]
    pub precision: Precision,
    /// The DLA core TensorRT uses, if any (GPU only when absent).
    #[serde(default)]
    pub dla_core: Option<u32>,
    /// TensorRT's workspace memory-pool limit in MiB [default: csra-trt's, 1024].
    #[serde(default)]
    pub workspace_mib: Option<u64>,
    /// CPU threads for tract; 0 means every core.
    pub threads: usize,
    /// The square input size models for this board are exported at.
    pub input_size: u32,
    /// The board's CPU core as `rustc -C target-cpu` names it (e.g. `cortex-a78ae`), which
    /// `scripts/build-edge.sh --device NAME` builds for; none means the portable build.
    #[serde(default)]
    pub target_cpu: Option<String>,
    /// Camera defaults.
    pub camera: CameraDefaults,
    /// CSI camera defaults, on boards that usually carry a CSI camera; without them
    /// `csi://` takes the `camera` size and rate.
    #[serde(default)]
    pub csi: Option<CsiDefaults>,
}

impl DeviceProfile {
    /// Parses a profile's TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ProfileError> {
        let profile: Self = toml::from_str(text).map_err(|e| ProfileError::Parse {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        profile.check().map_err(|reason| ProfileError::Parse {
            origin: origin.to_owned(),
            reason,
        })?;
        Ok(profile)
    }

    /// The values TOML's types cannot bound: a profile that asks for 100 000 threads or a
    /// 100 000-pixel input is a typo, and would take the machine down before the first frame.
    fn check(&self) -> Result<(), String> {
        if self.threads > MAX_THREADS {
            return Err(format!(
                "threads = {}: at most {MAX_THREADS} (0 means every core)",
                self.threads
            ));
        }
        if !(1..=MAX_INPUT_SIDE).contains(&self.input_size) {
            return Err(format!(
                "input_size = {}: pass the model's side in pixels, 1 to {MAX_INPUT_SIDE}",
                self.input_size
            ));
        }
        let camera = &self.camera;
        if !(1..=MAX_FRAME_SIDE).contains(&camera.width)
            || !(1..=MAX_FRAME_SIDE).contains(&camera.height)
        {
            return Err(format!(
                "camera {}x{}: each side lies in 1 to {MAX_FRAME_SIDE} pixels",
                camera.width, camera.height
            ));
        }
        if !(1..=MAX_FRAME_RATE).contains(&camera.rate) {
            return Err(format!(
                "camera rate = {}: frames per second lie in 1 to {MAX_FRAME_RATE}",
                camera.rate
            ));
        }
        Ok(())
    }

    /// The built-in profile `name`.
    pub fn built_in(name: &str) -> Result<Self, ProfileError> {
        match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Self::parse(text, n),
            None => Err(ProfileError::Unknown {
                name: name.to_owned(),
                known: built_in_names().join(", "),
            }),
        }
    }

    /// `--device NAME`: a built-in name, or a path to a `.toml` profile.
    pub fn named(name: &str) -> Result<Self, ProfileError> {
        let path = Path::new(name);
        if name.ends_with(".toml") || path.components().count() > 1 {
            let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
                path: path.to_owned(),
                source,
            })?;
            return Self::parse(&text, name);
        }
        Self::built_in(name)
    }

    /// The profile for this machine: the Jetson its device tree names, else
    /// [`FALLBACK_PROFILE`].
    pub fn detect() -> Result<Self, ProfileError> {
        let model = read_device_tree_model(Path::new(DEVICE_TREE_MODEL));
        Self::built_in(detect_name(model.as_deref()).unwrap_or(FALLBACK_PROFILE))
    }

    /// The thread count to use: [`DeviceProfile::threads`], with 0 meaning every core, and
    /// never more than this machine's cores (a profile written for a bigger board runs here
    /// too, with a warning).
    pub fn resolved_threads(&self) -> usize {
        let cores = available_cores();
        match self.threads {
            0 => cores,
            threads if threads > cores => {
                log::warn!(
                    "device profile {} asks for {threads} threads; this machine has {cores} cores, so {cores} are used",
                    self.name
                );
                cores
            }
            threads => threads,
        }
    }
}

/// The most threads a profile may name: more than any Jetson or workstation has cores.
pub const MAX_THREADS: usize = 256;

/// The largest camera frame side a profile may name (8K is 7680).
const MAX_FRAME_SIDE: u32 = 8192;

/// The highest camera frame rate a profile may name.
const MAX_FRAME_RATE: u32 = 1000;

/// This machine's CPU cores as the scheduler lets this process use them (1 when unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The names of the built-in profiles.
pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _)| *n).collect()
}

/// The built-in profile whose `model_match` occurs in `model` (a device-tree model string).
pub fn detect_name(model: Option<&str>) -> Option<&'static str> {
    let model = model?;
    BUILT_IN.iter().find_map(|(name, text)| {
        let profile = DeviceProfile::parse(text, name).ok()?;
        profile
            .model_match
            .iter()
            .any(|m| model.contains(m.as_str()))
            .then_some(*name)
    })
}

/// The device-tree model string without its trailing NUL, if the file exists.
pub fn read_device_tree_model(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    Some(text.trim_end_matches('\0').trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses_with_its_own_name() {
        for name in built_in_names() {
            let profile = DeviceProfile::built_in(name).unwrap();
            assert_eq!(profile.name, name);
            assert!(profile.input_size > 0 && profile.camera.width > 0);
        }
    }

    #[test]
    fn jetsons_ask_for_tensorrt_and_the_fallback_for_auto() {
        for name in built_in_names() {
            let profile = DeviceProfile::built_in(name).unwrap();
            let expected = if name == FALLBACK_PROFILE {
                BackendKind::Auto
            } else {
                BackendKind::Tensorrt
            };
            assert_eq!(profile.backend, expected, "{name}");
        }
        let nx = DeviceProfile::built_in("jetson-orin-nx").unwrap();
        assert_eq!((nx.precision, nx.dla_core), (Precision::Fp16, Some(0)));
        let text = include_str!("../../../../devices/x86-cpu.toml").replace("fp32", "fp8");
        let err = DeviceProfile::parse(&text, "mine.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mine.toml") && err.contains("fp8"), "{err}");
    }

    #[test]
    fn jetson_profiles_name_a_cpu_rustc_builds_for_and_x86_stays_portable() {
        // scripts/build-edge.sh passes target_cpu to `-C target-cpu`; a typo there would only
        // show as a warning in a cross build nobody reads, so ask rustc itself.
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let out = std::process::Command::new(&rustc)
            .args([
                "--print",
                "target-cpus",
                "--target",
                "aarch64-unknown-linux-gnu",
            ])
            .output()
            .expect("rustc runs");
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8_lossy(&out.stdout);
        let known: Vec<&str> = listing
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        for name in built_in_names() {
            let profile = DeviceProfile::built_in(name).unwrap();
            match profile.target_cpu.as_deref() {
                Some(cpu) => assert!(known.contains(&cpu), "{name}: {cpu} not in {known:?}"),
                None => assert_eq!(name, FALLBACK_PROFILE, "a Jetson profile without a CPU"),
            }
        }
        let cpu = |name| DeviceProfile::built_in(name).unwrap().target_cpu;
        assert_eq!(cpu("jetson-orin-nano").as_deref(), Some("cortex-a78ae"));
        assert_eq!(cpu("jetson-xavier-nx").as_deref(), Some("carmel"));
    }

    #[test]
    fn detection_from_device_tree_model_strings() {
        // Model strings as the boards' device trees report them.
        let cases = [
            (
                "NVIDIA Jetson Orin Nano Developer Kit",
                Some("jetson-orin-nano"),
            ),
            (
                "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
                Some("jetson-orin-nano"),
            ),
            (
                "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
                Some("jetson-orin-nx"),
            ),
            ("Jetson AGX Orin", Some("jetson-agx-orin")),
            (
                "NVIDIA Jetson AGX Orin Developer Kit",
                Some("jetson-agx-orin"),
            ),
            (
                "NVIDIA Jetson Xavier NX Developer Kit",
                Some("jetson-xavier-nx"),
            ),
            ("Raspberry Pi 4 Model B Rev 1.4", None),
        ];
        for (model, expected) in cases {
            assert_eq!(detect_name(Some(model)), expected, "{model}");
        }
        assert_eq!(detect_name(None), None);
    }

    #[test]
    fn the_device_tree_string_loses_its_nul() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model");
        std::fs::write(&path, b"NVIDIA Jetson Xavier NX Developer Kit\0").unwrap();
        let model = read_device_tree_model(&path).unwrap();
        assert_eq!(detect_name(Some(&model)), Some("jetson-xavier-nx"));
        assert_eq!(read_device_tree_model(&dir.path().join("none")), None);
    }

    #[test]
    fn out_of_range_values_name_the_profile_and_the_field() {
        let text = include_str!("../../../../devices/x86-cpu.toml");
        let cases = [
            ("threads = 0", "threads = 100000", "threads = 100000"),
            ("input_size = 224", "input_size = 0", "input_size = 0"),
            ("rate = 30", "rate = 0", "rate = 0"),
            ("width = 640", "width = 100000", "100000x480"),
        ];
        for (from, to, expected) in cases {
            assert!(text.contains(from), "{from}");
            let err = DeviceProfile::parse(&text.replace(from, to), "big.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("big.toml") && err.contains(expected),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn threads_never_exceed_the_cores() {
        let mut profile = DeviceProfile::built_in(FALLBACK_PROFILE).unwrap();
        profile.threads = MAX_THREADS;
        assert_eq!(profile.resolved_threads(), available_cores());
        profile.threads = 0;
        assert_eq!(profile.resolved_threads(), available_cores());
        profile.threads = 1;
        assert_eq!(profile.resolved_threads(), 1);
    }

    #[test]
    fn unknown_names_and_bad_files_are_clear_errors() {
        let err = DeviceProfile::named("jetson-nano-2gb")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jetson-orin-nano") && err.contains("x86-cpu"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\n").unwrap();
        let err = DeviceProfile::named(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.toml") && err.contains("missing field"),
            "{err}"
        );
    }
}
