// SPDX-License-Identifier: MIT OR Apache-2.0
//! `veil-launch '<pipeline>'`: like `gst-launch-1.0`, with every Veil plugin linked in (no
//! GST_PLUGIN_PATH needed). Prints each element message's structure on its own line (flushed at
//! once, so a parent process sees e.g. `veil-audit-queued` before it kills this one), exits 0 at
//! EOS and 1 on an error.

use std::io::Write;
use std::process::ExitCode;

use gst::prelude::*;

fn main() -> ExitCode {
    let description = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if description.trim().is_empty() {
        eprintln!("usage: veil-launch '<pipeline description>'");
        return ExitCode::from(2);
    }
    veil_e2e::init();
    let pipeline = match gst::parse::launch(&description) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("veil-launch: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(bus) = pipeline.bus() else {
        return ExitCode::FAILURE;
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        eprintln!("veil-launch: the pipeline does not start");
    }
    let mut code = ExitCode::SUCCESS;
    let mut out = std::io::stdout();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    let _ = writeln!(out, "{s}");
                    let _ = out.flush();
                }
            }
            gst::MessageView::Warning(w) => {
                eprintln!("veil-launch: warning: {} ({:?})", w.error(), w.debug())
            }
            gst::MessageView::Error(e) => {
                eprintln!("veil-launch: error: {} ({:?})", e.error(), e.debug());
                code = ExitCode::FAILURE;
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    code
}
