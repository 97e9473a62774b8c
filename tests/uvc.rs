//! uvcvideo, the kernel's driver for USB webcams, bound to a virtual camera of our own
//! (`examples/uvc_camera`: a USB/IP device handed to the stock `vhci-hcd`, streaming over bulk).
//! The camera draws its frame number into every picture, so a test reads from the pixels which
//! frames arrived.
//!
//! Needs root in the test VM (it loads vhci-hcd and plugs devices in): run through
//! `scripts/vm-run`, as `scripts/test` does.

mod common;

use common::uvc::{Camera, frame_number};
use common::{Capture, assert_no_problems, in_device_memory, setup, v4l2_ctl_ok};

use std::collections::BTreeSet;

use gst::prelude::*;
use gst_video::prelude::*;

/// (fourcc, width, height, fps) for every size and interval `v4l2-ctl --list-formats-ext` lists.
fn listed_by_v4l2_ctl(node: &str) -> BTreeSet<(String, i32, i32, String)> {
    let text = v4l2_ctl_ok(&["-d", node, "--list-formats-ext"]);
    let (mut fourcc, mut size) = (String::new(), (0, 0));
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.split_once("]: '") {
            fourcc = rest.1.chars().take(4).collect();
        } else if let Some(s) = line.strip_prefix("Size: Discrete ") {
            let (w, h) = s.split_once('x').expect("WxH");
            size = (w.parse().expect("width"), h.parse().expect("height"));
        } else if let Some(i) = line.strip_prefix("Interval: Discrete ") {
            let fps = i
                .split_once('(')
                .and_then(|(_, f)| f.split_once(' '))
                .map(|(f, _)| f.trim_end_matches(".000").to_string())
                .expect("(N fps)");
            out.insert((fourcc.clone(), size.0, size.1, fps));
        }
    }
    out
}

/// The same, from the caps the element offers in READY.
fn offered_by_element(node: &str) -> BTreeSet<(String, i32, i32, String)> {
    let src = gst::ElementFactory::make("rustv4l2src")
        .property("device", node)
        .build()
        .expect("rustv4l2src");
    src.set_state(gst::State::Ready).expect("READY");
    let caps = src.static_pad("src").expect("src pad").query_caps(None);
    src.set_state(gst::State::Null).expect("NULL");
    let mut out = BTreeSet::new();
    for s in caps.iter() {
        let fourcc = match (s.name().as_str(), s.get::<String>("format").ok().as_deref()) {
            ("video/x-raw", Some("YUY2")) => "YUYV",
            ("image/jpeg", _) => "MJPG",
            (name, format) => panic!("unexpected caps {name} {format:?} in {caps}"),
        };
        let (w, h) = (
            s.get::<i32>("width").expect("fixed width"),
            s.get::<i32>("height").expect("fixed height"),
        );
        let rates: Vec<gst::Fraction> = match s.get::<gst::List>("framerate") {
            Ok(list) => list
                .iter()
                .map(|v| v.get::<gst::Fraction>().expect("fraction"))
                .collect(),
            Err(_) => vec![s.get::<gst::Fraction>("framerate").expect("framerate")],
        };
        for r in rates {
            assert_eq!(r.denom(), 1, "{r} in {caps}");
            out.insert((fourcc.to_string(), w, h, r.numer().to_string()));
        }
    }
    out
}

/// The caps are exactly what uvcvideo enumerates (`v4l2-ctl --list-formats-ext`): both formats,
/// every size, every rate.
#[test]
fn caps_are_what_uvcvideo_enumerates() {
    let _device = setup();
    let camera = Camera::add("CAPS0001", &[]);
    let listed = listed_by_v4l2_ctl(&camera.node);
    assert_eq!(listed.len(), 8, "2 formats x 2 sizes x 2 rates: {listed:?}");
    assert_eq!(offered_by_element(&camera.node), listed);
}

/// `frames` frames through `caps` (and `decode`, for MJPEG): the frame numbers in the pixels
/// rise, with gaps only where `frames-lost` counts them; PTS rise by about a frame period.
fn stream_and_check(camera: &Camera, caps: &str, frames: usize, yuy2: bool) {
    let capture = Capture::with_sink(&camera.node, "buffer-count=8", caps, "max-buffers=2");
    capture.play();
    let (mut numbers, mut stamps, mut copied) = (Vec::new(), Vec::new(), 0);
    for _ in 0..frames {
        let sample = capture.pull();
        let buffer = sample.buffer().expect("a buffer");
        if yuy2 && !in_device_memory(buffer, &camera.node) {
            copied += 1;
        }
        let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("raw");
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).expect("map");
        let stride = frame.plane_stride()[0] as usize;
        let luma = frame.plane_data(0).expect("plane 0");
        numbers.push(frame_number(luma, stride, if yuy2 { 2 } else { 1 }));
        stamps.push(buffer.pts().expect("a PTS"));
    }
    let stats = capture.stats();
    let lost = stats.get::<u64>("frames-lost").expect("frames-lost");
    let mut missing = 0u64;
    for (i, pair) in numbers.windows(2).enumerate() {
        let step = pair[1].wrapping_sub(pair[0]);
        assert!(
            (1..100).contains(&step),
            "frame {i}: number {} after {}: {numbers:?}",
            pair[1],
            pair[0]
        );
        missing += u64::from(step - 1);
    }
    assert!(
        missing <= lost,
        "{missing} frame numbers missing, frames-lost {lost}: {stats}"
    );
    let period = gst::ClockTime::from_nseconds(1_000_000_000 / 30);
    let span = stamps[frames - 1] - stamps[0];
    let periods = (frames as u64 - 1) + missing;
    let mean = span / periods;
    assert!(
        mean > period * 9 / 10 && mean < period * 11 / 10,
        "mean PTS step {mean} over {frames} frames, period {period}"
    );
    for (i, pair) in stamps.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0],
            "frame {i}: PTS {} after {}",
            pair[1],
            pair[0]
        );
    }
    // Raw frames are checked at the sink (inside the camera's mappings); MJPEG ones are
    // decoded by then, so the element's own count says.
    assert_eq!(
        copied, 0,
        "frames outside the mappings in mmap mode: {stats}"
    );
    assert_eq!(
        stats.get::<u64>("frames-copied").expect("frames-copied"),
        0,
        "{stats}"
    );
    assert_no_problems(&capture.bus(), "uvc capture");
}

#[test]
fn yuy2_frames_arrive_in_order_without_a_copy() {
    let _device = setup();
    let camera = Camera::add("YUY20001", &["--formats", "yuy2"]);
    stream_and_check(
        &camera,
        "video/x-raw,format=YUY2,width=160,height=120,framerate=30/1",
        300,
        true,
    );
}

#[test]
fn mjpeg_frames_decode_and_arrive_in_order() {
    let _device = setup();
    let camera = Camera::add("MJPG0001", &["--formats", "mjpeg"]);
    stream_and_check(
        &camera,
        "image/jpeg,width=320,height=180,framerate=30/1 ! jpegdec ! video/x-raw",
        300,
        false,
    );
}

/// The luma of the middle row's darkest sample: the background (the bar is brighter).
fn background(sample: &gst::Sample) -> u8 {
    let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("raw");
    let buffer = sample.buffer().expect("a buffer");
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).expect("map");
    let stride = frame.plane_stride()[0] as usize;
    let row = info.height() as usize / 2 * stride;
    let luma = frame.plane_data(0).expect("plane 0");
    (0..info.width() as usize)
        .map(|x| luma[row + 2 * x])
        .min()
        .expect("a row")
}

/// Pulls frames until `f` holds for one (within 60 frames).
fn pull_until(capture: &Capture, what: &str, f: impl Fn(&gst::Sample) -> bool) {
    for _ in 0..60 {
        if f(&capture.pull()) {
            return;
        }
    }
    panic!("no frame within 60 where {what}");
}

/// Brightness set before start and while PLAYING reaches the camera (its processing unit sees
/// the SET_CUR) and the pixels (the background moves by as much); the colour-balance channel
/// and `extra-controls` by uvcvideo's control name do the same for contrast.
#[test]
fn brightness_and_contrast_reach_the_camera_and_the_picture() {
    let _device = setup();
    let camera = Camera::add("CTRL0001", &["--formats", "yuy2"]);
    let capture = Capture::with_sink(
        &camera.node,
        "brightness=30",
        "video/x-raw,format=YUY2,width=160,height=120",
        "max-buffers=2 drop=true",
    );
    capture.play();
    assert!(
        camera.state()["set-cur"].contains("brightness=30"),
        "{:?}",
        camera.state()
    );
    // Background 96 at default: 126 with brightness 30.
    pull_until(&capture, "the background is 126", |s| background(s) == 126);

    capture.src.set_property("brightness", -30i32);
    assert_eq!(camera.state()["brightness"], "-30");
    pull_until(&capture, "the background is 66", |s| background(s) == 66);

    let balance = capture
        .src
        .dynamic_cast_ref::<gst_video::ColorBalance>()
        .expect("GstColorBalance");
    let contrast = balance
        .list_channels()
        .into_iter()
        .find(|c| c.label() == "contrast")
        .expect("a contrast channel");
    assert_eq!((contrast.min_value(), contrast.max_value()), (0, 200));
    balance.set_value(&contrast, 150);
    assert_eq!(camera.state()["contrast"], "150");
    // 128 + (96 - 128) * 1.5 - 30
    pull_until(&capture, "the background is 50", |s| background(s) == 50);
    assert_no_problems(&capture.bus(), "controls");
    drop(capture);

    let capture = Capture::with_sink(
        &camera.node,
        "extra-controls=c,brightness=10,contrast=100",
        "video/x-raw,format=YUY2,width=160,height=120",
        "max-buffers=2 drop=true",
    );
    capture.play();
    let state = camera.state();
    assert!(
        state["set-cur"].ends_with("brightness=10,contrast=100")
            || state["set-cur"].ends_with("contrast=100,brightness=10"),
        "{state:?}"
    );
    pull_until(&capture, "the background is 106", |s| background(s) == 106);
}

/// Erroneous frames (the UVC header's error bit) and short ones (uvcvideo drops a YUY2 frame of
/// the wrong size) never reach downstream; the element counts them as lost (uvcvideo gives them
/// back itself, so its sequence skips them).
#[test]
fn erroneous_and_short_frames_are_counted_and_never_pushed() {
    let _device = setup();
    let camera = Camera::add("FAULT001", &["--formats", "yuy2"]);
    let capture = Capture::with_sink(
        &camera.node,
        "buffer-count=8",
        "video/x-raw,format=YUY2,width=160,height=120",
        "max-buffers=4",
    );
    capture.play();
    let mut numbers = Vec::new();
    let mut pull = |n: usize| {
        for _ in 0..n {
            let buffer = capture.pull_buffer();
            let map = buffer.map_readable().expect("readable");
            numbers.push(frame_number(&map, 320, 2));
        }
    };
    pull(20);
    camera.fault("error", "3");
    pull(20);
    camera.fault("short", "2");
    pull(20);
    let faulty: Vec<u16> = camera.state()["faulty"]
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().expect("a number") as u16)
        .collect();
    assert_eq!(
        faulty.len(),
        5,
        "the camera sent 3 erroneous and 2 short frames"
    );
    for n in &faulty {
        assert!(
            !numbers.contains(n),
            "faulty frame {n} was pushed: {numbers:?}"
        );
    }
    let stats = capture.stats();
    let lost = stats.get::<u64>("frames-lost").expect("frames-lost");
    let corrupted = stats
        .get::<u64>("frames-corrupted")
        .expect("frames-corrupted");
    assert!(lost + corrupted >= 5, "5 faulty frames, stats {stats}");
    assert_eq!(numbers.len(), 60);
}

/// A camera that stops sending for longer than `timeout`: `timeout-action=eos` ends the stream,
/// the default posts an error naming the device.
#[test]
fn a_stall_longer_than_the_timeout_gives_its_action() {
    let _device = setup();
    let camera = Camera::add("STALL001", &["--formats", "yuy2"]);
    for (action, eos) in [("eos", true), ("error", false)] {
        let capture = Capture::with_sink(
            &camera.node,
            &format!("timeout=1000 timeout-action={action}"),
            "video/x-raw,format=YUY2,width=160,height=120",
            "max-buffers=2 drop=true",
        );
        capture.play();
        capture.pull();
        camera.fault("stall", "4000");
        let stalled = std::time::Instant::now();
        if eos {
            // appsink holds EOS back until what it queued is pulled.
            while capture
                .try_pull(std::time::Duration::from_secs(10))
                .is_some()
            {}
            assert!(capture.sink.is_eos(), "no EOS within 10 s of the stall");
        } else {
            let msg = capture
                .bus()
                .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
                .expect("an error within 10 s of the stall");
            let gst::MessageView::Error(e) = msg.view() else {
                unreachable!()
            };
            assert!(
                e.error().to_string().contains(&camera.node),
                "the error names the device: {}",
                e.error()
            );
        }
        let waited = stalled.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(900)
                && waited < std::time::Duration::from_secs(4),
            "timeout-action={action} after {waited:?} of a 4 s stall, timeout 1 s"
        );
        drop(capture);
        // Let the stall end before the next round.
        std::thread::sleep(std::time::Duration::from_secs(4));
    }
}

/// Two cameras in one pipeline, each frame from its own camera in order.
#[test]
fn two_cameras_in_one_pipeline() {
    let _device = setup();
    let a = Camera::add("TWO0000A", &["--formats", "yuy2"]);
    let b = Camera::add("TWO0000B", &["--formats", "yuy2"]);
    let description = format!(
        "rustv4l2src device={} ! video/x-raw,format=YUY2,width=160,height=120 ! appsink name=a sync=false \
         rustv4l2src device={} ! video/x-raw,format=YUY2,width=320,height=180 ! appsink name=b sync=false",
        a.node, b.node
    );
    let pipeline = gst::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let _null = common::NullOnDrop(pipeline.clone().upcast());
    common::change_state(pipeline.upcast_ref(), gst::State::Playing, common::TIMEOUT);
    for (name, width) in [("a", 320), ("b", 640)] {
        let sink = pipeline
            .by_name(name)
            .and_downcast::<gst_app::AppSink>()
            .expect("appsink");
        let mut last = None;
        for _ in 0..30 {
            let sample = sink
                .try_pull_sample(gst::ClockTime::from_seconds(20))
                .expect("a frame");
            let buffer = sample.buffer().expect("a buffer");
            let map = buffer.map_readable().expect("readable");
            let n = frame_number(&map, width, 2);
            if let Some(last) = last {
                assert!(n > last, "camera {name}: frame {n} after {last}");
            }
            last = Some(n);
        }
    }
    assert!(a.state()["frames-sent"].parse::<u64>().unwrap() >= 30);
    assert!(b.state()["frames-sent"].parse::<u64>().unwrap() >= 30);
}

/// `gst-device-monitor-1.0`'s view: both cameras, with their USB serial, vendor and product
/// ids and the bus path.
#[test]
fn the_device_monitor_lists_the_cameras_by_serial() {
    let _device = setup();
    let a = Camera::add("MON0000A", &["--formats", "yuy2"]);
    let b = Camera::add("MON0000B", &["--formats", "yuy2", "--pid", "0x0103"]);
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    let devices = monitor.devices();
    for (camera, product) in [(&a, "0102"), (&b, "0103")] {
        let props = devices
            .iter()
            .filter(|d| d.type_().name() == "GstRustV4l2Device")
            .filter_map(|d| d.properties())
            .find(|p| p.get::<String>("device.path").ok().as_deref() == Some(camera.node.as_str()))
            .unwrap_or_else(|| panic!("{} not listed", camera.node));
        assert_eq!(
            props.get::<String>("device.serial").ok().as_deref(),
            Some(camera.serial.as_str()),
            "{props}"
        );
        assert_eq!(
            props.get::<String>("device.vendor.id").ok().as_deref(),
            Some("1d6b"),
            "{props}"
        );
        assert_eq!(
            props.get::<String>("device.product.id").ok().as_deref(),
            Some(product),
            "{props}"
        );
        assert_eq!(
            props.get::<String>("device.bus").ok().as_deref(),
            Some("usb"),
            "{props}"
        );
        assert!(
            props
                .get::<String>("device.bus_path")
                .is_ok_and(|p| p.starts_with("usb-vhci_hcd.0-")),
            "{props}"
        );
    }
}

/// Unplugged while streaming, with `reconnect=false`: an error naming the device within a frame
/// period.
#[test]
fn an_unplug_is_an_error_naming_the_device() {
    let _device = setup();
    let camera = Camera::add("UNPLUG01", &["--formats", "yuy2"]);
    let capture = Capture::with_sink(
        &camera.node,
        "",
        "video/x-raw,format=YUY2,width=160,height=120",
        "max-buffers=2 drop=true",
    );
    capture.play();
    capture.pull();
    let bus = capture.bus();
    let before = std::time::Instant::now();
    camera.unplug();
    let unplugged = before.elapsed();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error within 5 s of the unplug");
    let after = before.elapsed();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains(&camera.node) && text.contains("disconnected"),
        "{text}"
    );
    eprintln!("unplug took {unplugged:?}, the error came {after:?} after it started");
    // The detach returns once the kernel has disconnected the device (74 ms under TCG); the
    // error comes within a frame period of that (seen: 4 ms).
    assert!(
        after < unplugged + std::time::Duration::from_nanos(1_000_000_000 / 30),
        "the error came {after:?} after the unplug began, which took {unplugged:?}"
    );
}

/// With `reconnect=true` the same camera plugged back (same serial, another port and node)
/// resumes capture, and a camera of the same vendor and product but another serial, there all
/// along, is never taken instead.
#[test]
fn the_same_camera_comes_back_and_its_twin_is_never_taken() {
    let _device = setup();
    let mut camera = Camera::add("RECON001", &["--formats", "yuy2"]);
    let twin = Camera::add("RECON002", &["--formats", "yuy2"]);
    let capture = Capture::with_sink(
        &camera.node,
        "reconnect=true",
        "video/x-raw,format=YUY2,width=160,height=120",
        "max-buffers=2 drop=true",
    );
    capture.play();
    capture.pull();
    let port = camera.state()["port"].clone();
    camera.unplug();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(twin.state()["streaming"], "false", "the twin was taken");
    let node = camera.plug();
    assert_ne!(
        camera.state()["port"],
        port,
        "plugged back into another port"
    );
    let sent = camera.state()["frames-sent"].parse::<u64>().unwrap();
    // The appsink may still hold the 2 frames (max-buffers) it had before the unplug.
    for _ in 0..12 {
        capture.pull();
    }
    let now = camera.state()["frames-sent"].parse::<u64>().unwrap();
    assert!(
        now >= sent + 10,
        "the camera back on {node} sent {} frames for the 12 pulled",
        now - sent
    );
    assert_eq!(twin.state()["streaming"], "false", "the twin was taken");
    assert_eq!(twin.state()["frames-sent"], "0");
    let stats = capture.stats();
    assert_eq!(stats.get::<u64>("disconnects").unwrap(), 1, "{stats}");
    let errors: Vec<_> = common::pop_problems(&capture.bus())
        .into_iter()
        .filter(|m| matches!(m.view(), gst::MessageView::Error(_)))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
