//! `v4l2src` launch lines of the kinds found in documentation and forum answers, run with the
//! name swapped, in-process (`gst::parse::launch`), against vivid (and v4l2loopback for MJPEG):
//! each must reach EOS without an error and deliver frames of the asked shape to every sink.
//!
//! Each line is kept as a `v4l2src` user writes it. At run time, and printed: `v4l2src` becomes
//! `rustv4l2src`, `/dev/video0` the test's node, the display sinks (`autovideosink`,
//! `xvimagesink`) `fakesink` (the VM has no display), a `location=` goes to a temporary folder,
//! and `num-buffers=5` is added where the line has no `num-buffers`. Run through
//! `scripts/vm-run`.

mod common;

use common::{SVideoInput, TIMEOUT, setup, shut_down, v4l2_ctl_ok};

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// Where a line captures from.
enum Source {
    /// vivid's single-planar node, on its webcam input.
    Webcam,
    /// vivid's node on its S-Video input, PAL (720x576), which can crop.
    SVideo,
    /// vivid's node on its TV input, which has norms.
    Tv,
    /// v4l2loopback fed with MJPEG frames of this size.
    Mjpeg(&'static str),
}

struct Line {
    /// As a `v4l2src` user writes it.
    text: &'static str,
    source: Source,
    /// For each sink, by factory name after the swaps: caps its frames' caps must lie within.
    expect: &'static [(&'static str, &'static str)],
}

/// The sink a frame reached, what it looked like.
#[derive(Clone, Debug)]
struct Frame {
    caps: gst::Caps,
    size: usize,
    head: [u8; 2],
}

/// `text` with the run-time swaps.
fn swapped(text: &str, node: &str, dir: &std::path::Path) -> String {
    let mut line = text
        .trim_start_matches("gst-launch-1.0 ")
        .replace("v4l2src", "rustv4l2src")
        .replace("/dev/video0", node)
        .replace("autovideosink", "fakesink")
        .replace("xvimagesink", "fakesink")
        .replace("location=", &format!("location={}/", dir.display()));
    if !line.contains("num-buffers") {
        line = line.replacen("rustv4l2src", "rustv4l2src num-buffers=5", 1);
    }
    line
}

fn frames_asked(line: &str) -> usize {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("num-buffers="))
        .map_or(5, |n| n.parse().expect("num-buffers=N"))
}

/// Runs `line` (`{fd}` in it becomes `fd`) from its source to EOS; checks every sink's frames.
fn run(line: &Line, fd: Option<i32>) {
    let _device = setup();
    let vivid = common::vivid_sp();
    let _input = match line.source {
        Source::SVideo => Some(SVideoInput::select(&vivid)),
        _ => None,
    };
    let _tv = matches!(line.source, Source::Tv).then(|| TvInput::select(&vivid));
    let (node, _writer) = match line.source {
        Source::Mjpeg(size) => {
            let node = common::loopback::node();
            let writer =
                common::loopback::Writer::feed(&node, size, "jpegenc ! image/jpeg,parsed=true");
            (node, Some(writer))
        }
        _ => (vivid.clone(), None),
    };
    let dir = std::env::temp_dir().join(format!("launchlines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let mut text = swapped(line.text, &node, &dir);
    if let Some(fd) = fd {
        text = text.replace("{fd}", &fd.to_string());
    }
    eprintln!("v4l2src line: {}\nrun as:       {text}", line.text);

    let pipeline = gst::parse::launch(&text)
        .unwrap_or_else(|e| panic!("cannot build '{text}': {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let seen: Arc<Mutex<Vec<(String, Frame)>>> = Arc::default();
    for sink in pipeline.iterate_sinks().into_iter().flatten() {
        let factory = sink
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        if let Ok(appsink) = sink.clone().downcast::<gst_app::AppSink>() {
            // An application pulls its samples; appsink holds EOS back until it has.
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(|s| {
                        s.pull_sample()
                            .map(|_| gst::FlowSuccess::Ok)
                            .map_err(|_| gst::FlowError::Eos)
                    })
                    .build(),
            );
        }
        let pad = sink.static_pad("sink").expect("a sink pad");
        let log = Arc::clone(&seen);
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                let map = buffer.map_readable().ok();
                let head = map.as_ref().map_or([0, 0], |m| [m[0], m[1]]);
                let caps = pad.current_caps().unwrap_or_else(gst::Caps::new_empty);
                let frame = Frame {
                    caps,
                    size: buffer.size(),
                    head,
                };
                log.lock().unwrap().push((factory.clone(), frame));
            }
            gst::PadProbeReturn::Ok
        });
    }
    let bus = pipeline.bus().expect("a bus");
    pipeline
        .set_state(gst::State::Playing)
        .unwrap_or_else(|_| panic!("'{text}' will not play:{}", common::bus_problems(&bus)));
    let limit = gst::ClockTime::try_from(TIMEOUT * 3).expect("fits");
    let end = bus.timed_pop_filtered(limit, &[gst::MessageType::Eos, gst::MessageType::Error]);
    let outcome = match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(_) => Err(common::describe(end.as_ref().unwrap())),
        None => Err(format!("no EOS within {limit}")),
    };
    shut_down(pipeline.upcast_ref());
    if let Err(e) = outcome {
        panic!("'{text}': {e}{}", common::bus_problems(&bus));
    }

    let seen = seen.lock().unwrap().clone();
    let asked = frames_asked(&text);
    for (factory, caps) in line.expect {
        let expected = gst::Caps::from_str(caps).expect("expected caps parse");
        let frames: Vec<_> = seen.iter().filter(|(f, _)| f == factory).collect();
        eprintln!(
            "{factory}: {} frames, caps {:?}",
            frames.len(),
            frames.first().map(|(_, f)| f.caps.to_string())
        );
        assert_eq!(frames.len(), asked, "frames at {factory}");
        for (_, frame) in frames {
            assert!(
                frame.caps.is_fixed() && frame.caps.is_subset(&expected),
                "{factory} got {} where {expected} was asked",
                frame.caps
            );
            check_frame(frame);
        }
    }
    let sinks: Vec<_> = seen.iter().map(|(f, _)| f.as_str()).collect();
    for sink in sinks {
        assert!(
            line.expect.iter().any(|(f, _)| *f == sink),
            "frames reached {sink}, which the line's expectations do not name"
        );
    }
}

use std::str::FromStr;

/// A raw frame holds at least its caps' bytes; a JPEG starts with its SOI marker.
fn check_frame(frame: &Frame) {
    let s = frame.caps.structure(0).expect("caps");
    match s.name().as_str() {
        "video/x-raw" => {
            let info = gst_video::VideoInfo::from_caps(&frame.caps).expect("raw video caps");
            assert!(
                frame.size >= info.size(),
                "{} bytes for {}",
                frame.size,
                frame.caps
            );
        }
        "image/jpeg" => assert_eq!(frame.head, [0xff, 0xd8], "a JPEG frame"),
        other => panic!("unexpected {other}"),
    }
}

/// vivid's TV input (1) for a test, its webcam input (0) again afterwards, pass or fail.
struct TvInput(String);

impl TvInput {
    fn select(device: &str) -> TvInput {
        v4l2_ctl_ok(&["-d", device, "-i", "1"]);
        TvInput(device.to_string())
    }
}

impl Drop for TvInput {
    fn drop(&mut self) {
        let _ = std::process::Command::new("v4l2-ctl")
            .args(["-d", &self.0, "-i", "0"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// The lines

#[test]
fn l01_plain() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src ! videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw")],
        },
        None,
    );
}

#[test]
fn l02_size_and_rate() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src device=/dev/video0 ! \
                   video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[(
                "fakesink",
                "video/x-raw,width=640,height=360,framerate=30/1",
            )],
        },
        None,
    );
}

#[test]
fn l03_format_yuy2_720p() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src device=/dev/video0 ! \
                   video/x-raw,format=YUY2,width=1280,height=720 ! videoconvert ! xvimagesink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,format=YUY2,width=1280,height=720")],
        },
        None,
    );
}

#[test]
fn l04_snapshot_to_jpeg_file() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src num-buffers=1 ! jpegenc ! filesink location=snapshot.jpg",
            source: Source::Webcam,
            expect: &[("filesink", "image/jpeg")],
        },
        None,
    );
}

#[test]
fn l05_io_mode_mmap() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src io-mode=mmap ! video/x-raw,width=320,height=180 ! fakesink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=320,height=180")],
        },
        None,
    );
}

#[test]
fn l06_io_mode_dmabuf_numeric() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src io-mode=4 ! video/x-raw,width=640,height=360 ! \
                   videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=640,height=360")],
        },
        None,
    );
}

#[test]
fn l07_io_mode_userptr() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src io-mode=userptr ! video/x-raw,width=640,height=360 ! \
                   videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=640,height=360")],
        },
        None,
    );
}

#[test]
fn l08_io_mode_rw() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src io-mode=rw ! video/x-raw,width=640,height=360 ! \
                   videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=640,height=360")],
        },
        None,
    );
}

#[test]
fn l09_norm_pal() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src norm=PAL ! video/x-raw,width=720,height=576 ! \
                   videoconvert ! autovideosink",
            source: Source::Tv,
            expect: &[("fakesink", "video/x-raw,width=720,height=576")],
        },
        None,
    );
}

#[test]
fn l10_crop() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src crop-top=16 crop-bottom=32 crop-left=8 crop-right=24 ! \
                   video/x-raw,format=YUY2 ! videoconvert ! autovideosink",
            source: Source::SVideo,
            expect: &[("fakesink", "video/x-raw,format=YUY2,width=688,height=528")],
        },
        None,
    );
}

#[test]
fn l11_extra_controls() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src extra-controls=\"c,brightness=100,contrast=60\" ! \
                   video/x-raw,width=640,height=360 ! videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=640,height=360")],
        },
        None,
    );
    let node = common::vivid_sp();
    let got = v4l2_ctl_ok(&["-d", &node, "--get-ctrl", "brightness,contrast"]);
    v4l2_ctl_ok(&["-d", &node, "--set-ctrl", "brightness=128,contrast=128"]);
    assert!(
        got.contains("brightness: 100") && got.contains("contrast: 60"),
        "{got}"
    );
}

#[test]
fn l12_pixel_aspect_ratio() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src pixel-aspect-ratio=59/54 ! \
                   video/x-raw,width=640,height=360 ! videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[(
                "fakesink",
                "video/x-raw,width=640,height=360,pixel-aspect-ratio=59/54",
            )],
        },
        None,
    );
}

#[test]
fn l13_force_aspect_ratio_off() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src force-aspect-ratio=false ! \
                   video/x-raw,width=640,height=360,pixel-aspect-ratio=4/3 ! fakesink",
            source: Source::Webcam,
            expect: &[(
                "fakesink",
                "video/x-raw,width=640,height=360,pixel-aspect-ratio=4/3",
            )],
        },
        None,
    );
}

#[test]
fn l14_mjpeg_jpegdec() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src device=/dev/video0 ! \
                   image/jpeg,width=640,height=480,framerate=30/1 ! jpegdec ! videoconvert ! \
                   autovideosink",
            source: Source::Mjpeg("640x480"),
            expect: &[("fakesink", "video/x-raw,width=640,height=480")],
        },
        None,
    );
}

#[test]
fn l15_tee_to_two_sinks() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src ! video/x-raw,width=640,height=360 ! tee name=t \
                   t. ! queue ! videoconvert ! autovideosink \
                   t. ! queue ! jpegenc ! multifilesink location=frame%05d.jpg",
            source: Source::Webcam,
            expect: &[
                ("fakesink", "video/x-raw,width=640,height=360"),
                ("multifilesink", "image/jpeg,width=640,height=360"),
            ],
        },
        None,
    );
}

#[test]
fn l16_opencv_appsink_bgr() {
    run(
        &Line {
            text: "v4l2src device=/dev/video0 ! video/x-raw,format=YUY2,width=640,height=480 ! \
                   videoconvert ! video/x-raw,format=BGR ! appsink",
            source: Source::Webcam,
            expect: &[("appsink", "video/x-raw,format=BGR,width=640,height=480")],
        },
        None,
    );
}

/// Not a `v4l2src` line: its `device-fd` is read-only. The program opens the node and passes
/// the descriptor, which is still open afterwards.
#[test]
fn l17_device_fd_from_a_program() {
    let node = common::vivid_sp();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
        .expect("open the node");
    run(
        &Line {
            text: "v4l2src device-fd={fd} ! video/x-raw,width=640,height=360 ! videoconvert ! \
                   autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=640,height=360")],
        },
        Some(file.as_raw_fd()),
    );
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFD).expect("the program's fd is open");
}

#[test]
fn l18_decodebin() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src ! decodebin ! videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw")],
        },
        None,
    );
}

#[test]
fn l19_videoscale_to_a_size_the_device_lacks() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src ! videoscale ! video/x-raw,width=320,height=240 ! \
                   videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,width=320,height=240")],
        },
        None,
    );
}

#[test]
fn l20_nv12_from_the_driver() {
    run(
        &Line {
            text: "gst-launch-1.0 v4l2src ! video/x-raw,format=NV12,width=640,height=360 ! \
                   videoconvert ! autovideosink",
            source: Source::Webcam,
            expect: &[("fakesink", "video/x-raw,format=NV12,width=640,height=360")],
        },
        None,
    );
}
