//! The V4L2 capture path on a real kernel driver: `csra-edge-camera-check` runs inside a VM
//! with the kernel's `vivid` virtual camera (`../shared/tools/vivid-vm`). It probes the
//! devices, negotiates YUYV (vivid has no MJPEG), captures frames and checks their size,
//! `bytesused` and sequence, then unplugs the camera twice (vivid's Disconnect control; then
//! unbinding the driver, which removes the node, and binding it again) and checks that capture
//! reconnects after each.
//!
//! The VM tool installs QEMU on its first run (as root, as on CI). Without the tool the test
//! fails, saying where it looked.
// The V4L2 camera code exists only with the `camera` feature.
#![cfg(feature = "camera")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[test]
fn vivid_camera_captures_probes_and_reconnects_after_an_unplug() {
    let tool = std::env::var_os("CSRA_VIVID_VM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| csra_test_support::shared_dir().join("tools/vivid-vm/run-in-vivid-vm"));
    if !tool.is_file() {
        csra_test_support::missing_tool(
            &format!("the vivid VM tool {}", tool.display()),
            "check out shared/ beside this repository, or set CSRA_SHARED_DIR or CSRA_VIVID_VM",
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let check = stripped(
        env!("CARGO_BIN_EXE_csra-edge-camera-check").as_ref(),
        scratch.path(),
    );
    let started = Instant::now();
    let output = Command::new(&tool)
        .args(["--timeout", "90", "--"])
        .arg(&check)
        .args([
            "--device",
            "/dev/video0",
            "--width",
            "320",
            "--height",
            "240",
        ])
        .args(["--rate", "30", "--expect-unsupported", "mjpeg"])
        .args(["--frames", "8", "--unplug-vivid"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("--- in the vivid VM ({elapsed:?}) ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(output.status.success(), "exit status {}", output.status);
    assert!(stdout.contains("CAMERA_CHECK OK"), "the check did not pass");

    // probe: vivid's capture node offers YUYV, and the JSON form parses.
    assert!(
        stdout.contains("/dev/video0: "),
        "probe did not list /dev/video0"
    );
    assert!(stdout.contains("  YUYV ("), "probe did not list YUYV");
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROBE_JSON "))
        .expect("no PROBE_JSON line");
    let cameras: serde_json::Value = serde_json::from_str(json).expect("probe JSON");
    let video0 = cameras
        .as_array()
        .and_then(|list| list.iter().find(|c| c["path"] == "/dev/video0"))
        .expect("/dev/video0 in the probe JSON");
    assert_eq!(video0["driver"], "vivid");
    assert!(
        video0["formats"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["fourcc"] == "YUYV" && !f["sizes"].as_array().is_none_or(Vec::is_empty))),
        "{video0}"
    );

    // Asking for MJPEG is refused with what the device offers.
    let refused = stdout
        .lines()
        .find_map(|l| l.strip_prefix("UNSUPPORTED "))
        .expect("no UNSUPPORTED line");
    assert!(
        refused.starts_with("/dev/video0 does not support MJPEG; it offers YUYV (YUYV 4:2:2), "),
        "{refused}"
    );
    // Negotiation fell back to YUYV at the offered size nearest 320x240 (vivid: 320x180), read
    // back from the driver with its stride, at the requested 30 fps.
    let negotiated = stdout
        .lines()
        .find(|l| l.starts_with("NEGOTIATED "))
        .expect("no NEGOTIATED line");
    assert_eq!(
        negotiated,
        "NEGOTIATED yuyv 320x180 stride 640 fps Some(30.0)"
    );
    // Every frame is the buffer sliced to bytesused: stride × height for YUYV.
    let sizes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("FRAME "))
        .filter_map(|l| l.split(" age ").next())
        .collect();
    for line in &sizes {
        assert!(line.ends_with("bytes 115200 320x180 stride 640"), "{line}");
    }
    assert_eq!(
        sizes.len(),
        24,
        "8 frames before the unplugs and 8 after each"
    );
    assert!(stdout.contains("DISCONNECTED /dev/video0"));
    for step in ["UNBOUND vivid.", "BOUND vivid."] {
        assert!(
            stdout.lines().any(|l| l.starts_with(step)),
            "no {step} line"
        );
    }
    assert_eq!(
        stdout.matches("RECONNECTED after").count(),
        2,
        "a reconnect per unplug"
    );
}

/// A copy of `binary` without debug information: test builds carry hundreds of megabytes of
/// it, more than the VM's 1 GiB of RAM can unpack. The binary itself when `strip` is missing.
fn stripped(binary: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join(binary.file_name().expect("a binary path ends in its name"));
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status();
    match status {
        Ok(s) if s.success() => copy,
        _ => binary.to_owned(),
    }
}
