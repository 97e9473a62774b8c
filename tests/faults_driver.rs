//! Faults of the driver and of the user, against vivid: frames the driver flags or drops,
//! sequence numbers and timestamps that wrap, injected ioctl failures (vivid's `inject_*`),
//! bad input (paths, files, nodes, caps, a busy device) and the fewest buffers a driver grants.
//! The stream's own faults are in tests/faults.rs; what both read is tests/faults_rig.
//!
//! Every test that touches one of vivid's controls puts it back on the way out, also when it
//! fails, because the tests share the device. Needs vivid's nodes (see `common`): run through
//! `scripts/vm-run`.

mod common;
mod faults_rig;

#[allow(unused_imports)]
use faults_rig::*;

use common::tools::ToolEnv;
use common::{
    Capture, Control, TIMEOUT, assert_no_problems, change_state, set_control, setup,
    try_change_state,
};

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gst::prelude::*;

// ---------------------------------------------------------------------------------------------
// 6. Flagged, dropped and wrapping frames.

/// Checks a stream that ran to end-of-stream: every gap in the offsets is a frame the element
/// counted as lost, corrupted or dropped; PTS increases and follows the offsets.
fn check_sequence(buffers: &[Frame], stats: Stats, fps: u64, ctx: &str) -> u64 {
    assert_eq!(
        stats.captured,
        buffers.len() as u64,
        "{ctx}: frames-captured {stats:?} vs {} buffers received",
        buffers.len()
    );
    let offsets: Vec<u64> = buffers.iter().map(|b| b.offset).collect();
    let pts: Vec<gst::ClockTime> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            b.pts
                .unwrap_or_else(|| panic!("{ctx}: buffer {i} has no PTS"))
        })
        .collect();
    let gaps: u64 = offsets.windows(2).map(|w| sequence_gap(w[0], w[1])).sum();
    assert_eq!(
        gaps,
        stats.lost + stats.corrupted + stats.dropped,
        "{ctx}: {gaps} frames missing from the offsets, but stats say {stats:?}; offsets \
         {offsets:?}"
    );
    for (i, w) in pts.windows(2).enumerate() {
        assert!(
            w[0] < w[1],
            "{ctx}: PTS not increasing at buffer {}: {} then {} (offsets {} then {})",
            i + 1,
            w[0],
            w[1],
            offsets[i],
            offsets[i + 1]
        );
    }
    // The driver stamps frames one period apart, also across the frames it drops: the PTS
    // steps must follow the offset steps. Under emulation a few may be off.
    let period = frame_period(fps).nseconds();
    let off: Vec<(u64, u64, u64)> = pts
        .windows(2)
        .zip(offsets.windows(2))
        .map(|(p, o)| {
            let steps = sequence_gap(o[0], o[1]) + 1;
            ((p[1] - p[0]).nseconds(), steps, steps * period)
        })
        .filter(|&(delta, _, expected)| delta.abs_diff(expected) > period / 2)
        .collect();
    assert!(
        off.len() * 10 <= pts.len(),
        "{ctx}: {} of {} PTS steps are more than half a frame off the offset steps \
         (step ns, frames, expected ns): {off:?}",
        off.len(),
        pts.len()
    );
    gaps
}

/// A frame the driver flags with V4L2_BUF_FLAG_ERROR is dropped and counted, and capture goes on.
#[test]
fn frames_flagged_as_errors_are_dropped_and_counted() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = Capture::new(
        &device,
        "num-buffers=60",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    capture.play();
    let mut buffers: Vec<Frame> = (0..5).map(|_| capture.pull_frame()).collect();
    set_control(&device, "inject_v4l2_buf_flag_error", 1);
    buffers.extend(capture.pull_until_eos(TIMEOUT));
    let stats = Stats::of(&capture.src);
    eprintln!("stats after inject_v4l2_buf_flag_error: {stats:?}");
    assert!(
        stats.corrupted >= 1,
        "frames-corrupted is {} after inject_v4l2_buf_flag_error: {stats:?}",
        stats.corrupted
    );
    assert_eq!(
        buffers.len(),
        60,
        "capture must go on after a flagged frame until num-buffers=60"
    );
    check_sequence(&buffers, stats, 30, "flagged frame");
    assert_no_problems(&capture.bus(), "flagged frame");
}

/// With vivid dropping half its frames, `frames-lost` counts exactly the gaps in the offsets,
/// and the PTS follow the driver's timestamps across the gaps.
#[test]
fn dropped_frames_are_counted_and_keep_timestamps_straight() {
    let _device = setup();
    let device = common::vivid_sp();
    let _dropping = Control::set(&device, "percentage_of_dropped_buffers", 50, 0);
    let capture = Capture::new(
        &device,
        "num-buffers=40",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    capture.play();
    let buffers = capture.pull_until_eos(TIMEOUT);
    let stats = Stats::of(&capture.src);
    eprintln!("50% dropped: {stats:?}");
    let gaps = check_sequence(&buffers, stats, 30, "50% dropped");
    assert!(
        gaps >= 10,
        "with 50% of frames dropped, only {gaps} gaps in 40 frames: {:?}",
        buffers.iter().map(|b| b.offset).collect::<Vec<_>>()
    );
    assert_eq!(stats.corrupted + stats.dropped, 0, "{stats:?}");
}

/// vivid's `wrap_sequence_number` starts the sequence 128 frames before 2^32: crossing the wrap
/// loses nothing and keeps the PTS increasing.
#[test]
fn sequence_wrap_loses_nothing() {
    let _device = setup();
    let device = common::vivid_sp();
    let _wrap = Control::set(&device, "wrap_sequence_number", 1, 0);
    let capture = Capture::new(
        &device,
        "num-buffers=200",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=60/1",
    );
    capture.play();
    let buffers = capture.pull_until_eos(TIMEOUT * 2);
    let stats = Stats::of(&capture.src);
    let offsets: Vec<u64> = buffers.iter().map(|b| b.offset).collect();
    eprintln!(
        "sequence wrap: {stats:?}, offsets {:?} .. {:?}",
        offsets.first(),
        offsets.last()
    );
    // OFFSET counts the driver's wraps, so it keeps growing past 2^32.
    assert!(
        offsets.first().is_some_and(|&o| o < 1 << 32)
            && offsets.last().is_some_and(|&o| o >= 1 << 32),
        "the sequence did not wrap within 200 frames: {offsets:?}"
    );
    assert!(
        offsets.windows(2).all(|w| w[1] > w[0]),
        "OFFSET went backwards across the wrap: {offsets:?}"
    );
    let gaps = check_sequence(&buffers, stats, 60, "sequence wrap");
    // Under emulation the driver may really run out of buffers now and then; those gaps are
    // real losses. A wrap miscounted as a loss would be about 2^32.
    assert!(
        stats.lost == gaps && stats.lost < 50,
        "frames-lost {} across the wrap; the offsets show {gaps} missing",
        stats.lost
    );
}

/// vivid's `wrap_timestamp=1` starts the driver's timestamps 16 s before the 64-bit nanosecond
/// count wraps (and `struct timeval` goes negative). PTS must stay increasing and close to the
/// running time across it.
#[test]
fn timestamp_wrap_keeps_pts_increasing() {
    const FPS: u64 = 30;
    // The wrap comes 16 s into the stream; go 2 s past it.
    const PAST_WRAP: u64 = 18 * FPS;
    let _device = setup();
    let device = common::vivid_sp();
    let _wrap = Control::set(&device, "wrap_timestamp", 1, 0);
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    capture.play();
    let mut last: Option<(u64, gst::ClockTime)> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_offset = None;
    loop {
        let buffer = capture.pull_buffer();
        let now = capture
            .pipeline
            .current_running_time()
            .expect("PLAYING has a running time");
        let offset = buffer.offset();
        let pts = buffer
            .pts()
            .unwrap_or_else(|| panic!("frame {offset} has no PTS"));
        assert!(
            pts <= now && now - pts < gst::ClockTime::from_seconds(2),
            "frame {offset}: PTS {pts} is not shortly before the running time {now} it \
             arrived at"
        );
        if let Some((prev_offset, prev_pts)) = last {
            assert!(
                pts > prev_pts,
                "PTS went from {prev_pts} (frame {prev_offset}) to {pts} (frame {offset})"
            );
        }
        last = Some((offset, pts));
        let first = *first_offset.get_or_insert(offset);
        if offset - first >= PAST_WRAP {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only reached frame {offset} within 60 s"
        );
    }
    assert_no_problems(&capture.bus(), "timestamp wrap");
}

// ---------------------------------------------------------------------------------------------
// 7. Injected ioctl failures.

/// Arms vivid's `control`, starts a capture, and checks that the failure of `call` becomes a
/// clear error, that the pipeline stops at once, and that the device works afterwards.
fn injected_failure(control: &str, call: &str) {
    let device = common::vivid_sp();
    let _reset = InjectionReset {
        device: device.clone(),
    };
    {
        let capture = Capture::new(&device, "", "video/x-raw,format=YUY2,width=320,height=180");
        set_control(&device, control, 1);
        let started = Instant::now();
        // The failure may come during the state change or in the streaming thread after it.
        let _ = try_change_state(capture.element(), gst::State::Playing, TIMEOUT)
            .unwrap_or_else(|| panic!("{control}: PLAYING did not finish within {TIMEOUT:?}"));
        let error = wait_error(&capture.bus(), TIMEOUT)
            .unwrap_or_else(|| panic!("{control}: no error within {TIMEOUT:?}"));
        eprintln!("{control}: error after {:?}: {error}", started.elapsed());
        assert!(
            error.source_name == "src",
            "{control}: the first error comes from {} rather than the source: {error}",
            error.source
        );
        // The driver refused a call with EINVAL: a device that cannot be set up so.
        error.assert_is(gst::ResourceError::Settings, control);
        error.assert_says(&[&device, call], control);
        change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    }
    assert_fresh_capture_works(&device, &format!("after {control}"));
}

#[test]
fn reqbufs_failure_is_a_clear_error() {
    let _device = setup();
    injected_failure("inject_vidioc_reqbufs_error", "VIDIOC_REQBUFS");
}

#[test]
fn qbuf_failure_is_a_clear_error() {
    let _device = setup();
    injected_failure("inject_vidioc_qbuf_error", "VIDIOC_QBUF");
}

#[test]
fn streamon_failure_is_a_clear_error() {
    let _device = setup();
    injected_failure("inject_vidioc_streamon_error", "VIDIOC_STREAMON");
}

/// vivid's `inject_fatal_streaming_error` breaks the running stream (vb2_queue_error: POLLERR,
/// then EIO): without `reconnect`, an error naming the device and the cause within a second,
/// a prompt stop, and a device that works afterwards (with `reconnect`: tests/restart.rs).
#[test]
fn fatal_streaming_error_is_a_clear_error() {
    let _device = setup();
    let device = common::vivid_sp();
    {
        let capture = Capture::new(
            &device,
            "",
            "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
        );
        capture.play();
        capture.pull();
        set_control(&device, "inject_fatal_streaming_error", 1);
        let injected = Instant::now();
        let error = wait_error(&capture.bus(), TIMEOUT).unwrap_or_else(|| {
            panic!("no error within {TIMEOUT:?} of inject_fatal_streaming_error")
        });
        let took = injected.elapsed();
        eprintln!("inject_fatal_streaming_error: {error} after {took:?}");
        error.assert_is(gst::ResourceError::Read, "fatal streaming error");
        error.assert_says(&[&device, "failed its stream"], "fatal streaming error");
        assert!(
            took < Duration::from_secs(1),
            "the error came {took:?} after the failure"
        );
        change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    }
    assert_fresh_capture_works(&device, "after inject_fatal_streaming_error");
}

// ---------------------------------------------------------------------------------------------
// 8. Bad input.

/// Tools for the `gst-launch-1.0` children of this process (`common::tools`), with the
/// registry built once, so the children below are timed without the scan.
fn launch_env() -> &'static ToolEnv {
    static TOOLS: OnceLock<ToolEnv> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let tools = ToolEnv::new(&["fakesink", "capsfilter"]);
        tools.inspect_rustv4l2src();
        tools
    })
}

/// What a bad setting must give in process: an error of `expected` from the source whose
/// message names `path`, and a pipeline that stops at once.
enum Expected {
    Resource(Option<gst::ResourceError>),
    Negotiation,
}

/// Runs `rustv4l2src device=<path> [! caps] ! fakesink` in process and as `gst-launch-1.0`,
/// checking the error on the bus, and that the tool reports it and exits normally.
fn bad_input(path: &str, caps: Option<&str>, expected: Expected) {
    let caps_part = caps.map(|c| format!(" ! {c}")).unwrap_or_default();
    let description = format!("rustv4l2src name=src device={path}{caps_part} ! fakesink");
    let ctx = description.clone();

    let pipeline = gst::parse::launch(&description)
        .unwrap_or_else(|e| panic!("cannot build '{description}': {e}"));
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    let outcome = try_change_state(&pipeline, gst::State::Playing, TIMEOUT);
    let error = wait_error(&bus, TIMEOUT);
    let took = started.elapsed();
    let stopped = try_change_state(&pipeline, gst::State::Null, STOP_LIMIT);
    let outcome = outcome.unwrap_or_else(|| panic!("{ctx}: PLAYING took over {TIMEOUT:?}"));
    let error = error.unwrap_or_else(|| {
        panic!(
            "{ctx}: no error on the bus within {TIMEOUT:?} (state change {:?})",
            outcome.0
        )
    });
    eprintln!(
        "{ctx}: state change {:?}, error after {took:?}: {error}",
        outcome.0
    );
    assert!(
        stopped.is_some_and(|(r, _)| r.is_ok()),
        "{ctx}: the pipeline did not go back to NULL within {STOP_LIMIT:?}"
    );
    assert!(
        error.source_name == "src",
        "{ctx}: the first error comes from {} rather than the source: {error}",
        error.source
    );
    match expected {
        Expected::Resource(None) => assert!(
            error.error.kind::<gst::ResourceError>().is_some(),
            "{ctx}: expected a resource error: {error}"
        ),
        Expected::Resource(Some(kind)) => assert!(
            error.error.matches(kind),
            "{ctx}: expected {kind:?}: {error}"
        ),
        Expected::Negotiation => assert!(
            error.error.matches(gst::CoreError::Negotiation),
            "{ctx}: expected CoreError::Negotiation: {error}"
        ),
    }
    error.assert_says(&[path], &ctx);
    drop(pipeline);

    // gst-launch-1.0 exits with 1 for an error while playing and with 255 (-1) when the
    // pipeline refuses to start; either way normally, not through a signal (a GLib warning or
    // critical would be one: they are fatal in the tool).
    let args: Vec<&str> = description.split_whitespace().collect();
    let limit = Duration::from_secs(10);
    let started = Instant::now();
    let run = launch_env().run("gst-launch-1.0", &args, &[], limit);
    let report = run.report(&format!(
        "gst-launch-1.0 {description} (after {:?})",
        started.elapsed()
    ));
    eprintln!("{report}");
    let status = run
        .status
        .unwrap_or_else(|| panic!("ran over {limit:?}: {report}"));
    assert!(
        matches!(status.code(), Some(1) | Some(255)),
        "expected exit status 1 (or 255 for a refused start), not a crash: {report}"
    );
    let errors = run.launch_errors();
    assert!(
        errors
            .first()
            .is_some_and(|(path, text)| path.ends_with(":src") && *text == error.message()),
        "gst-launch-1.0's first error must be the source's '{}': {errors:?}\n{report}",
        error.message()
    );
}

#[test]
fn bad_input_nonexistent_path() {
    let _device = setup();
    bad_input(
        "/nonexistent",
        None,
        Expected::Resource(Some(gst::ResourceError::NotFound)),
    );
}

#[test]
fn bad_input_regular_file() {
    let _device = setup();
    bad_input("/etc/hostname", None, Expected::Resource(None));
}

#[test]
fn bad_input_device_that_is_not_v4l2() {
    let _device = setup();
    bad_input("/dev/null", None, Expected::Resource(None));
}

#[test]
fn bad_input_node_that_cannot_capture() {
    let _device = setup();
    bad_input(&common::vivid_out(), None, Expected::Resource(None));
}

#[test]
fn bad_input_caps_the_device_cannot_produce() {
    let _device = setup();
    bad_input(
        &common::vivid_sp(),
        Some("video/x-raw,width=333"),
        Expected::Negotiation,
    );
}

/// Another process streaming from the node: `v4l2-ctl --stream-mmap`, counting the frames it
/// reports ('<' on its output).
struct OtherCapture {
    child: Child,
    frames: Arc<AtomicUsize>,
}

impl OtherCapture {
    fn start(device: &str) -> OtherCapture {
        let mut child = Command::new("v4l2-ctl")
            .args(["-d", device, "--stream-mmap=4"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("v4l2-ctl starts");
        let frames = Arc::new(AtomicUsize::new(0));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let frames = Arc::clone(&frames);
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut chunk = [0u8; 256];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let got = chunk[..n].iter().filter(|&&b| b == b'<').count();
                    frames.fetch_add(got, Ordering::SeqCst);
                }
            });
        }
        let other = OtherCapture { child, frames };
        other.wait_for_frames(5, "v4l2-ctl --stream-mmap to start streaming");
        other
    }

    fn wait_for_frames(&self, more: usize, what: &str) {
        let target = self.frames.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + TIMEOUT;
        while self.frames.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "{what}: {} frames within {TIMEOUT:?}",
                self.frames.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_still_streaming(&mut self, ctx: &str) {
        assert!(
            self.child.try_wait().expect("wait for v4l2-ctl").is_none(),
            "{ctx}: the other capture (v4l2-ctl) ended"
        );
        self.wait_for_frames(5, &format!("{ctx}: the other capture goes on"));
    }
}

impl Drop for OtherCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bad_input_device_busy_in_another_process() {
    let _device = setup();
    let device = common::vivid_sp();
    let mut other = OtherCapture::start(&device);
    bad_input(
        &device,
        None,
        Expected::Resource(Some(gst::ResourceError::Busy)),
    );
    other.assert_still_streaming("after our element met the busy device");
}

// ---------------------------------------------------------------------------------------------
// 9. Few buffers.

/// vivid grants as few as 2 buffers; capture must work with them, lending or copying.
#[test]
fn two_buffers_are_enough() {
    let _device = setup();
    let device = common::vivid_sp();
    for copy_threshold in [1, 0] {
        let ctx = format!("buffer-count=2 copy-threshold={copy_threshold}");
        let before = common::device_mappings(&device).len();
        let capture = Capture::new(
            &device,
            &format!("buffer-count=2 copy-threshold={copy_threshold}"),
            "video/x-raw,format=YUY2,width=320,height=180,framerate=60/1",
        );
        capture.play();
        let mut offsets = Vec::new();
        for i in 0..30 {
            let buffer = capture.pull_buffer();
            assert_eq!(buffer.size(), 320 * 180 * 2, "{ctx}: buffer {i} size");
            assert!(
                buffer
                    .map_readable()
                    .expect("readable")
                    .iter()
                    .any(|&b| b != 0),
                "{ctx}: buffer {i} is all zeros"
            );
            offsets.push(buffer.offset());
        }
        let mapped = common::device_mappings(&device).len() - before;
        let stats = Stats::of(&capture.src);
        eprintln!("{ctx}: {stats:?}");
        assert_eq!(mapped, 2, "{ctx}: {mapped} device buffers are mapped");
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{ctx}: offsets not increasing: {offsets:?}"
        );
        assert!(stats.captured >= 30, "{ctx}: {stats:?}");
        assert_no_problems(&capture.bus(), &ctx);
    }
}
