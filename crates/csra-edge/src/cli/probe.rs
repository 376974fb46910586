//! `csra-edge probe`: the cameras present, with what `--camera` and `--input-*` can ask of them.

use anyhow::Context;

use super::ProbeArgs;
use crate::camera::probe::{list_cameras, Listing};

/// Lists the V4L2 devices as text, or as one JSON array with `--json`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let cameras = list_cameras();
    if args.json {
        let json = serde_json::to_string_pretty(&cameras).context("writing the listing as JSON")?;
        println!("{json}");
    } else {
        print!("{}", Listing(&cameras));
    }
    Ok(())
}
