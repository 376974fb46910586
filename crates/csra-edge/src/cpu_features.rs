//! The CPU features this binary was compiled to assume, checked against the CPU it runs on.
//!
//! A build for one board (`-C target-cpu=cortex-a78ae`, the `target_cpu` of the Jetson device
//! profiles, built by `scripts/build-edge.sh`) may use instructions that older cores lack:
//! copied to the wrong board, it would die of SIGILL before printing a word. Checked first
//! thing instead (csra-edge's binary runs [`check`] from `.preinit_array`), it names what is
//! missing and which build to use. The portable build (no `RUSTFLAGS`) assumes nothing beyond
//! the architecture's baseline and always passes.
//!
//! The CPU is asked through the kernel, not `is_*_feature_detected!`: those macros answer
//! "yes" for every feature the build was compiled with, which is the question being checked.
//! On aarch64 that is the `AT_HWCAP` words of `/proc/self/auxv` (which qemu-user emulates, so
//! the check can be tested on an x86 machine); on x86-64 the `flags` of `/proc/cpuinfo`. Where
//! neither can be read the check passes: it must never stop a build that would have run.

use thiserror::Error;

/// How the kernel reports one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Each architecture's table uses its own variants.
#[allow(dead_code)]
enum Probe {
    /// A bit of `AT_HWCAP` (aarch64's `HWCAP_*`).
    Hwcap(u32),
    /// A bit of `AT_HWCAP2` (aarch64's `HWCAP2_*`).
    Hwcap2(u32),
    /// A word of `/proc/cpuinfo`'s `flags` line (x86).
    Flag(&'static str),
}

/// `(rustc's feature name, assumed by this build, how the kernel reports it)` for every
/// user-space feature `-C target-cpu` can turn on.
macro_rules! features {
    ($detect:ident; $($name:tt => $probe:expr),* $(,)?) => {
        const FEATURES: &[(&str, bool, Probe)] =
            &[$(($name, cfg!(target_feature = $name), $probe)),*];

        /// The standard library's run-time answer for `name`: the test's independent
        /// reference for the probe table (true for features the build assumes).
        #[cfg(test)]
        fn std_detects(name: &str) -> Option<bool> {
            use std::arch::$detect;
            match name {
                $($name => Some($detect!($name)),)*
                _ => None,
            }
        }
    };
}

// Bit numbers from Linux's arch/arm64/include/uapi/asm/hwcap.h. Not `ssbs`: the compiler never
// emits it on its own, and qemu's emulated cores do not report it.
#[cfg(target_arch = "aarch64")]
features! {
    is_aarch64_feature_detected;
    "aes" => Probe::Hwcap(3),
    "sha2" => Probe::Hwcap(6),
    "crc" => Probe::Hwcap(7),
    "lse" => Probe::Hwcap(8),
    "fp16" => Probe::Hwcap(9),
    "rdm" => Probe::Hwcap(12),
    "rcpc" => Probe::Hwcap(15),
    "dpb" => Probe::Hwcap(16),
    "dotprod" => Probe::Hwcap(20),
    "sve" => Probe::Hwcap(22),
    "sve2" => Probe::Hwcap2(1),
    "i8mm" => Probe::Hwcap2(13),
    "bf16" => Probe::Hwcap2(14),
}

// Flag names as Linux's /proc/cpuinfo spells them.
#[cfg(target_arch = "x86_64")]
features! {
    is_x86_feature_detected;
    "sse3" => Probe::Flag("pni"),
    "ssse3" => Probe::Flag("ssse3"),
    "sse4.1" => Probe::Flag("sse4_1"),
    "sse4.2" => Probe::Flag("sse4_2"),
    "popcnt" => Probe::Flag("popcnt"),
    "avx" => Probe::Flag("avx"),
    "avx2" => Probe::Flag("avx2"),
    "fma" => Probe::Flag("fma"),
    "bmi1" => Probe::Flag("bmi1"),
    "bmi2" => Probe::Flag("bmi2"),
    "f16c" => Probe::Flag("f16c"),
    "lzcnt" => Probe::Flag("abm"),
    "movbe" => Probe::Flag("movbe"),
    "avx512f" => Probe::Flag("avx512f"),
    "avx512bw" => Probe::Flag("avx512bw"),
    "avx512cd" => Probe::Flag("avx512cd"),
    "avx512dq" => Probe::Flag("avx512dq"),
    "avx512vl" => Probe::Flag("avx512vl"),
    "avx512vnni" => Probe::Flag("avx512_vnni"),
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
const FEATURES: &[(&str, bool, Probe)] = &[];

#[cfg(all(test, not(any(target_arch = "aarch64", target_arch = "x86_64"))))]
fn std_detects(_: &str) -> Option<bool> {
    None
}

/// What the kernel says this CPU has.
#[derive(Debug, Default, PartialEq, Eq)]
struct CpuReport {
    hwcap: u64,
    hwcap2: u64,
    flags: Vec<String>,
}

impl CpuReport {
    fn has(&self, probe: Probe) -> bool {
        match probe {
            Probe::Hwcap(bit) => self.hwcap >> bit & 1 == 1,
            Probe::Hwcap2(bit) => self.hwcap2 >> bit & 1 == 1,
            Probe::Flag(flag) => self.flags.iter().any(|f| f == flag),
        }
    }

    /// This CPU's report, or `None` where the kernel's files cannot be read.
    fn read() -> Option<Self> {
        if cfg!(target_arch = "aarch64") {
            auxv_report(&std::fs::read("/proc/self/auxv").ok()?)
        } else if cfg!(target_arch = "x86_64") {
            cpuinfo_report(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
        } else {
            None
        }
    }
}

/// `AT_HWCAP` and `AT_HWCAP2` from the auxiliary vector: native-endian `(type, value)` pairs
/// of 64-bit words, ending at type 0.
fn auxv_report(auxv: &[u8]) -> Option<CpuReport> {
    const AT_HWCAP: u64 = 16;
    const AT_HWCAP2: u64 = 26;
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or_default()))
        .collect();
    let mut report = CpuReport::default();
    let mut found = false;
    for pair in words.chunks_exact(2) {
        match pair[0] {
            0 => break,
            AT_HWCAP => (report.hwcap, found) = (pair[1], true),
            AT_HWCAP2 => report.hwcap2 = pair[1],
            _ => {}
        }
    }
    found.then_some(report)
}

/// The first `flags` line of `/proc/cpuinfo` (every core lists the same).
fn cpuinfo_report(cpuinfo: &str) -> Option<CpuReport> {
    let line = cpuinfo.lines().find(|l| l.starts_with("flags"))?;
    let (_, flags) = line.split_once(':')?;
    Some(CpuReport {
        flags: flags.split_whitespace().map(str::to_owned).collect(),
        ..CpuReport::default()
    })
}

/// This binary needs CPU features the running CPU does not have.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "this csra-edge was built for a CPU with {} (`-C target-cpu`), and this CPU lacks {}: \
     copy the portable build (built without RUSTFLAGS) to this machine, or build one for it \
     with `scripts/build-edge.sh --device PROFILE` on a Jetson (the profile whose target_cpu \
     is this board's core) or `scripts/build-edge.sh --native` on this machine",
    .assumed.join(", "), .missing.join(", ")
)]
pub struct MissingFeatures {
    /// Every checked feature the build assumes.
    pub assumed: Vec<&'static str>,
    /// The assumed features this CPU lacks.
    pub missing: Vec<&'static str>,
}

/// The checked features this build assumes beyond the architecture's baseline, e.g.
/// `["crc", "dotprod", "fp16", "lse", …]` for a Cortex-A78AE build; empty for the portable one.
pub fn assumed() -> Vec<&'static str> {
    FEATURES
        .iter()
        .filter_map(|&(name, assumed, _)| assumed.then_some(name))
        .collect()
}

/// Fails when this build assumes a feature the running CPU lacks.
pub fn check() -> Result<(), MissingFeatures> {
    if assumed().is_empty() {
        return Ok(());
    }
    match CpuReport::read() {
        Some(cpu) => check_against(FEATURES, &cpu),
        None => Ok(()),
    }
}

fn check_against(
    features: &[(&'static str, bool, Probe)],
    cpu: &CpuReport,
) -> Result<(), MissingFeatures> {
    let assumed: Vec<&'static str> = features
        .iter()
        .filter_map(|&(name, assumed, _)| assumed.then_some(name))
        .collect();
    let missing: Vec<&'static str> = features
        .iter()
        .filter_map(|&(name, assumed, probe)| (assumed && !cpu.has(probe)).then_some(name))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingFeatures { assumed, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An auxiliary vector as the kernel lays it out: pairs of words, `AT_NULL` last.
    fn auxv(pairs: &[(u64, u64)]) -> Vec<u8> {
        pairs
            .iter()
            .chain([&(0, 0)])
            .flat_map(|&(k, v)| [k.to_ne_bytes(), v.to_ne_bytes()])
            .flatten()
            .collect()
    }

    #[test]
    fn hwcap_words_are_read_from_the_auxiliary_vector() {
        // AT_PAGESZ, AT_HWCAP with ATOMICS (bit 8) and ASIMDDP (bit 20), AT_HWCAP2 with I8MM.
        let bytes = auxv(&[(6, 4096), (16, 1 << 8 | 1 << 20), (26, 1 << 13)]);
        let cpu = auxv_report(&bytes).unwrap();
        assert!(cpu.has(Probe::Hwcap(8)) && cpu.has(Probe::Hwcap(20)));
        assert!(!cpu.has(Probe::Hwcap(9)));
        assert!(cpu.has(Probe::Hwcap2(13)) && !cpu.has(Probe::Hwcap2(14)));
        assert_eq!(auxv_report(&auxv(&[(6, 4096)])), None, "no AT_HWCAP");
    }

    #[test]
    fn cpuinfo_flags_are_read_from_the_first_flags_line() {
        let text =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse4_1 avx2 fma abm\n\
                    processor\t: 1\nflags\t\t: fpu\n";
        let cpu = cpuinfo_report(text).unwrap();
        assert!(cpu.has(Probe::Flag("avx2")) && cpu.has(Probe::Flag("abm")));
        assert!(!cpu.has(Probe::Flag("avx512f")));
        assert_eq!(cpuinfo_report("processor\t: 0\n"), None);
    }

    #[test]
    fn a_missing_assumed_feature_is_named_with_the_fix() {
        // A Cortex-A78AE build (LSE, dot product, FP16 assumed) on a Cortex-A53 (CRC only).
        let features = [
            ("crc", true, Probe::Hwcap(7)),
            ("lse", true, Probe::Hwcap(8)),
            ("fp16", true, Probe::Hwcap(9)),
            ("dotprod", true, Probe::Hwcap(20)),
            ("sve", false, Probe::Hwcap(22)),
        ];
        let a53 = CpuReport {
            hwcap: 1 << 7,
            ..CpuReport::default()
        };
        let error = check_against(&features, &a53).unwrap_err();
        assert_eq!(error.missing, ["lse", "fp16", "dotprod"]);
        assert_eq!(error.assumed, ["crc", "lse", "fp16", "dotprod"]);
        let message = error.to_string();
        assert!(
            message.contains("this CPU lacks lse, fp16, dotprod"),
            "{message}"
        );
        assert!(
            message.contains("scripts/build-edge.sh --device"),
            "{message}"
        );
        assert!(
            message.contains("scripts/build-edge.sh --native"),
            "{message}"
        );
        let a78ae = CpuReport {
            hwcap: 1 << 7 | 1 << 8 | 1 << 9 | 1 << 20,
            ..CpuReport::default()
        };
        assert_eq!(check_against(&features, &a78ae), Ok(()));
    }

    #[test]
    fn the_kernels_report_agrees_with_the_standard_librarys_detection() {
        // std asks the CPU itself (CPUID, getauxval); where it is not short-circuited by the
        // build's own flags, a wrong bit or flag name in the table shows up as a disagreement.
        let Some(cpu) = CpuReport::read() else {
            return;
        };
        for &(name, assumed, probe) in FEATURES {
            if !assumed {
                assert_eq!(
                    Some(cpu.has(probe)),
                    std_detects(name),
                    "{name} ({probe:?})"
                );
            }
        }
        assert_eq!(check(), Ok(()));
    }
}
