//! A loopback RTSP server for csra-edge's tests (feature `rtsp-test-server`): serves one
//! gst-launch description through gst-rtsp-server, the server library RTSP cameras' vendors
//! and DeepStream use.
//!
//! ```text
//! csra-edge-rtsp-server PORT PATH 'LAUNCH'
//! csra-edge-rtsp-server 8554 /cam '( videotestsrc is-live=true ! x264enc ! rtph264pay name=pay0 pt=96 )'
//! ```
//!
//! It prints `ready rtsp://127.0.0.1:PORT/PATH` once it listens, and serves until killed.

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use rtsp::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, path, launch] = args.as_slice() else {
        bail!("usage: csra-edge-rtsp-server PORT PATH 'LAUNCH' (a gst-launch description in parentheses, its payloader named pay0)");
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("PORT {port:?} is not a port number"))?;
    if !path.starts_with('/') {
        bail!("PATH {path:?} must start with '/'");
    }
    gst::init().context("starting GStreamer")?;
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let mounts = server
        .mount_points()
        .context("the RTSP server has no mount points")?;
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(launch);
    // One pipeline for every client, as a camera has.
    factory.set_shared(true);
    mounts.add_factory(path, factory);
    let _source = server
        .attach(None)
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("ready rtsp://127.0.0.1:{port}{path}");
    main_loop.run();
    Ok(())
}
