//! `csra-edge probe`: the cameras present, with what `--camera` and `--input-*` can ask of them.

use super::ProbeArgs;

/// Lists the V4L2 devices as text, or as one JSON array with `--json`.
#[cfg(feature = "camera")]
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use csra_edge::source::v4l2::probe::{list_cameras, Listing};

    let cameras = list_cameras();
    if args.json {
        let json = serde_json::to_string_pretty(&cameras).context("writing the listing as JSON")?;
        println!("{json}");
    } else {
        print!("{}", Listing(&cameras));
    }
    Ok(())
}

/// Without the `camera` feature there is no V4L2 code to list cameras with.
#[cfg(not(feature = "camera"))]
pub fn run(_args: &ProbeArgs) -> anyhow::Result<()> {
    Err(super::camera::missing_camera_feature("csra-edge probe"))
}
