//! Capture from vivid through the real element, the stream's course: timestamps,
//! `num-buffers`, unlocking a blocked wait, caps and latency queries, a flushing seek, and the
//! plugin as `gst-launch-1.0` loads it. Formats, layouts and zero-copy are in tests/capture.rs.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded, so a
//! broken element fails a test instead of hanging the run.

mod common;

use common::display::Xvfb;
use common::tools::ToolEnv;
use common::{Capture, TIMEOUT, change_state, highest_rate, setup, shut_down};

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

// ---------------------------------------------------------------------------------------------
// 4. Timestamps.

#[test]
fn timestamps_follow_the_frame_rate() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
    capture.play();
    let frame = gst::ClockTime::SECOND
        .mul_div_floor(1, 30)
        .expect("no overflow");

    let mut pts = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..60 {
        let buffer = capture.pull_buffer();
        let now = capture
            .pipeline
            .current_running_time()
            .expect("PLAYING has a running time");
        let t = buffer
            .pts()
            .unwrap_or_else(|| panic!("buffer {i} has no PTS"));
        // Captured before it was handed over, and not long before: a PTS is the running time
        // at which the frame was captured.
        assert!(
            t <= now,
            "buffer {i}: PTS {t} is after the running time {now} it arrived at"
        );
        assert!(
            now - t < gst::ClockTime::from_seconds(2),
            "buffer {i}: PTS {t} is far behind the running time {now}"
        );
        let duration = buffer
            .duration()
            .unwrap_or_else(|| panic!("buffer {i} has no duration"));
        assert!(
            duration.nseconds().abs_diff(frame.nseconds()) <= 1,
            "buffer {i}: duration {duration}, expected 1/30 s"
        );
        assert_ne!(
            buffer.offset(),
            gst::ffi::GST_BUFFER_OFFSET_NONE,
            "buffer {i} has no offset"
        );
        pts.push(t);
        offsets.push(buffer.offset());
    }

    // OFFSET is the driver's sequence number. vivid derives it from jiffies when its thread
    // wakes, and a late wake-up under load can stamp two frames with the same number (seen in
    // CI: 0, 0, 1, 2, ...): the sequence never goes back, and it moves on with the frames.
    for (i, pair) in offsets.windows(2).enumerate() {
        assert!(
            pair[0] <= pair[1],
            "offsets going back at buffer {}: {offsets:?}",
            i + 1
        );
    }
    let repeats = offsets.windows(2).filter(|p| p[0] == p[1]).count();
    assert!(
        repeats <= 2,
        "{repeats} repeated offsets in 60 frames: {offsets:?}"
    );
    for (i, pair) in pts.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "PTS not increasing at buffer {}: {pts:?}",
            i + 1
        );
    }
    let mut intervals: Vec<u64> = pts.windows(2).map(|p| (p[1] - p[0]).nseconds()).collect();
    let f = frame.nseconds();
    // Under emulation the driver's thread is sometimes late (or drops a frame), so allow a few
    // intervals far off, but the bulk must match the rate.
    let outliers = intervals.iter().filter(|&&d| d.abs_diff(f) > f / 2).count();
    intervals.sort_unstable();
    let median = intervals[intervals.len() / 2];
    eprintln!("PTS intervals: median {median} ns, {outliers} outliers: {intervals:?}");
    assert!(
        outliers * 10 <= intervals.len(),
        "{outliers} of {} PTS intervals are more than 50% off 33.3 ms: {intervals:?}",
        intervals.len()
    );
    assert!(
        median.abs_diff(f) * 100 <= f * 15,
        "median PTS interval {median} ns is more than 15% off 33.3 ms: {intervals:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. num-buffers.

#[test]
fn num_buffers_then_eos() {
    let _device = setup();
    let device = common::vivid_sp();
    let pipeline = gst::parse::launch(&format!(
        "rustv4l2src device={device} num-buffers=7 ! video/x-raw,width=320,height=180 ! \
         fakesink name=sink signal-handoffs=true sync=false"
    ))
    .expect("pipeline builds");
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .expect("bin")
        .by_name("sink")
        .expect("sink");
    sink.connect("handoff", false, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        None
    });
    let bus = pipeline.bus().expect("pipeline bus");
    change_state(&pipeline, gst::State::Playing, TIMEOUT);
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::try_from(TIMEOUT).expect("fits"),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let outcome = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => None,
        Some(gst::MessageView::Error(e)) => Some(format!("error: {} ({:?})", e.error(), e.debug())),
        _ => Some(format!("no EOS within {TIMEOUT:?}")),
    };
    shut_down(&pipeline);
    if let Some(problem) = outcome {
        panic!(
            "num-buffers=7: {problem}; {} buffers arrived",
            received.load(Ordering::SeqCst)
        );
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        7,
        "num-buffers=7 must give exactly 7 buffers"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Unlock.

const ONE_FPS: &str = "video/x-raw,width=320,height=180,framerate=1/1";

/// A capture at 1 fps, checked in READY to be one the device offers.
fn one_fps_capture(device: &str) -> Capture {
    let capture = Capture::new(device, "", ONE_FPS);
    change_state(capture.element(), gst::State::Ready, TIMEOUT);
    let offered = capture
        .src
        .static_pad("src")
        .expect("src pad")
        .query_caps(Some(&gst::Caps::from_str(ONE_FPS).expect("valid caps")));
    assert!(!offered.is_empty(), "vivid does not offer {ONE_FPS}");
    capture.play();
    capture
}

/// After a frame, the element waits about a second for the next one; stopping must not wait
/// that out.
#[test]
fn stopping_interrupts_a_blocked_wait() {
    let _device = setup();
    let capture = one_fps_capture(&common::vivid_sp());
    capture.pull();
    let took = change_state(capture.element(), gst::State::Null, TIMEOUT);
    eprintln!("PLAYING -> NULL took {took:?}");
    assert!(
        took < Duration::from_millis(500),
        "PLAYING -> NULL took {took:?} while the source waited for a frame at 1 fps"
    );
}

/// Pausing a live source unlocks it too, and playing again must clear that: capture resumes.
#[test]
fn pausing_interrupts_a_blocked_wait_and_playing_resumes() {
    let _device = setup();
    let capture = one_fps_capture(&common::vivid_sp());
    let first = capture.pull_buffer();
    let took = change_state(capture.element(), gst::State::Paused, TIMEOUT);
    eprintln!("PLAYING -> PAUSED took {took:?}");
    assert!(
        took < Duration::from_millis(500),
        "PLAYING -> PAUSED took {took:?} while the source waited for a frame at 1 fps"
    );
    capture.play();
    let next = capture.pull_buffer();
    assert!(
        next.offset() > first.offset(),
        "after resuming, frame {} follows frame {}",
        next.offset(),
        first.offset()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Caps queries.

#[test]
fn caps_query_shows_the_device_from_ready() {
    let _device = setup();
    let device = common::vivid_sp();
    let element = gst::ElementFactory::make("rustv4l2src")
        .property("device", &device)
        .build()
        .expect("rustv4l2src is registered");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let pad = element.static_pad("src").expect("src pad");
    let template = pad.pad_template_caps();

    let closed = pad.query_caps(None);
    assert_eq!(closed, template, "in NULL the caps are the template's");
    assert!(
        template.size() >= 10,
        "the template lists every raw format: {template}"
    );
    assert!(
        template
            .iter()
            .any(|s| s.get::<gst::IntRange<i32>>("width").is_ok()),
        "the template allows any width: {template}"
    );
    assert_eq!(
        element
            .property::<Option<String>>("device-name")
            .filter(|n| !n.is_empty()),
        None,
        "device-name before the device was opened"
    );

    change_state(&element, gst::State::Ready, TIMEOUT);
    let open = pad.query_caps(None);
    let name = element.property::<Option<String>>("device-name");
    change_state(&element, gst::State::Null, TIMEOUT);

    assert!(
        open.is_subset(&template) && !template.is_subset(&open),
        "in READY the caps must be a strict subset of the template: {open}"
    );
    let yuy2_1080p = gst::Caps::builder("video/x-raw")
        .field("format", "YUY2")
        .field("width", 1920)
        .field("height", 1080)
        .build();
    assert!(
        open.can_intersect(&yuy2_1080p),
        "vivid offers YUY2 1920x1080: {open}"
    );
    let p010 = gst::Caps::builder("video/x-raw")
        .field("format", "P010_10LE")
        .build();
    assert!(
        !open.can_intersect(&p010),
        "vivid does not offer P010: {open}"
    );
    for s in open.iter() {
        assert!(
            s.get::<i32>("width").is_ok() && s.get::<i32>("height").is_ok(),
            "vivid enumerates discrete sizes, but the caps have {s}"
        );
        highest_rate(s);
    }
    let name = name.unwrap_or_default();
    assert!(
        name.contains("vivid"),
        "device-name in READY is '{name}', expected vivid's card"
    );
    assert_eq!(
        pad.query_caps(None),
        template,
        "back in NULL the caps are the template's again"
    );
    common::assert_no_problems(&bus, "caps queries from NULL to READY and back");
}

/// The size with the most pixels among those that reach 30 fps (where none does, among all),
/// then the highest rate at it, among the fixed-size structures of `caps`: the element's rule for
/// default caps (`src/caps/candidates.rs`).
fn largest_smooth_then_fastest(caps: &gst::CapsRef) -> (i32, i32, gst::Fraction) {
    caps.iter()
        .filter_map(|s| Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?, s)))
        .map(|(w, h, s)| (w, h, highest_rate(s)))
        .max_by_key(|&(w, h, rate)| {
            (
                rate >= gst::Fraction::new(30000, 1001),
                w as i64 * h as i64,
                rate,
            )
        })
        .unwrap_or_else(|| panic!("no fixed-size structure in {caps}"))
}

/// With downstream leaving everything open, fixation picks the largest size that reaches 30 fps,
/// at the highest rate the device offers for it (vivid: not 3840x2160 at 2 fps); a downstream
/// limit on the size is respected the same way. `tests/fixation.rs` checks the rule against
/// what `v4l2-ctl` lists.
#[test]
fn fixation_picks_the_largest_size_that_reaches_30_fps() {
    let _device = setup();
    let device = common::vivid_sp();
    for filter in ["video/x-raw", "video/x-raw,width=[1,700],height=[1,400]"] {
        let capture = Capture::new(&device, "", filter);
        change_state(capture.element(), gst::State::Ready, TIMEOUT);
        let offered = capture
            .src
            .static_pad("src")
            .expect("src pad")
            .query_caps(Some(&gst::Caps::from_str(filter).expect("valid caps")));
        let expected = largest_smooth_then_fastest(&offered);
        capture.play();
        let sample = capture.pull();
        let caps = sample.caps().expect("samples carry caps");
        let s = caps.structure(0).expect("a structure");
        let got = (
            s.get::<i32>("width").unwrap_or_default(),
            s.get::<i32>("height").unwrap_or_default(),
            s.get::<gst::Fraction>("framerate")
                .unwrap_or_else(|_| panic!("{filter}: no fixed framerate in {caps}")),
        );
        assert_eq!(got, expected, "{filter}: negotiated {caps}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. The plugin as gst-launch-1.0 finds it.

/// `gst-launch-1.0 -m <description>` with the plugin as a user installs it (see
/// `common::tools`), `envs` added. It must end with EOS, and with neither an error nor a warning
/// on the bus nor a GLib warning or critical (fatal in the tool, so the exit status shows it).
fn assert_launch_succeeds(description: &str, elements: &[&str], envs: &[(&str, &str)]) {
    let elements: Vec<&str> = elements.iter().copied().chain(["capsfilter"]).collect();
    let tools = ToolEnv::new(&elements);
    let args: Vec<&str> = ["-m"]
        .into_iter()
        .chain(description.split_whitespace())
        .collect();
    let limit = Duration::from_secs(90);
    let run = tools.run("gst-launch-1.0", &args, envs, limit);
    let report = run.report(&format!("gst-launch-1.0 -m {description}"));
    let status = run
        .status
        .unwrap_or_else(|| panic!("ran over {limit:?}: {report}"));
    assert!(status.success(), "{report}");
    for kind in ["error", "warning"] {
        let posted = run.messages_of(kind);
        assert!(posted.is_empty(), "{kind} messages {posted:?}: {report}");
    }
    assert!(
        !run.messages_of("eos").is_empty(),
        "the pipeline did not end with EOS: {report}"
    );
}

#[test]
fn gst_launch_captures_to_fakesink() {
    let _device = setup();
    let device = common::vivid_sp();
    assert_launch_succeeds(
        &format!("rustv4l2src device={device} num-buffers=20 ! fakesink"),
        &["fakesink"],
        &[],
    );
}

/// On an X server of its own (Xvfb), so that it runs wherever the device tests run and fails,
/// rather than passes, if there is no display to show frames on.
#[test]
fn gst_launch_shows_frames_on_a_display() {
    let _device = setup();
    let device = common::vivid_sp();
    let sink = ["ximagesink", "xvimagesink", "glimagesink"]
        .into_iter()
        .find(|name| gst::ElementFactory::find(name).is_some())
        .expect("an X video sink is installed (gstreamer1.0-x or gstreamer1.0-gl)");
    let xvfb = Xvfb::start();
    assert_launch_succeeds(
        &format!(
            "rustv4l2src device={device} num-buffers=20 ! video/x-raw,width=640,height=360 ! \
             videoconvert ! {sink}"
        ),
        &["videoconvert", sink],
        // llvmpipe's GL crashes glimagesink under QEMU's TCG; softpipe does not.
        &[("DISPLAY", xvfb.display()), ("GALLIUM_DRIVER", "softpipe")],
    );
}

/// The LATENCY query: live, minimum one frame period, maximum one period per driver buffer.
#[test]
fn latency_query_reports_one_frame_and_the_buffers_held() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = Capture::new(
        &device,
        "buffer-count=5",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    capture.play();
    capture.pull_buffer();
    let mut query = gst::query::Latency::new();
    assert!(capture.src.query(&mut query), "the source answers LATENCY");
    let (live, min, max) = query.result();
    let period = gst::ClockTime::SECOND.mul_div_floor(1, 30).unwrap();
    assert!(live, "a V4L2 capture is live");
    assert_eq!(min, period, "minimum latency is one frame period");
    assert_eq!(
        max,
        Some(period * 5),
        "maximum is one period per driver buffer"
    );
}

/// A flushing seek on a live source flushes the wait and capture goes on, as with other live
/// sources: buffers keep coming, with increasing offsets.
#[test]
fn a_flushing_seek_interrupts_and_capture_resumes() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=1/1",
    );
    capture.play();
    let before = capture.pull_buffer().offset();
    // The pipeline may still be on its way to PLAYING after the first frame. A flush in the
    // middle of that leaves appsink paused for good, or deadlocks the flush against the state
    // change (GStreamer 1.22's bin, with any source; seen under load). An application seeks
    // once the pipeline is there; so does this test.
    common::assert_settles_in(capture.element(), gst::State::Playing);
    let started = Instant::now();
    // Not seekable, but the flush still has to reach the source and wake its wait.
    capture.src.send_event(gst::event::FlushStart::new());
    capture.src.send_event(gst::event::FlushStop::new(true));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "flushing took {:?}; a 1 fps wait was not interrupted",
        started.elapsed()
    );
    let after = capture.pull_buffer().offset();
    assert!(
        after > before,
        "capture did not resume after the flush: {before} then {after}"
    );
}
