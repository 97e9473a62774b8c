//! A stream the driver declares failed (vb2's queue error, vivid's
//! `inject_fatal_streaming_error`: poll says POLLERR and `VIDIOC_DQBUF` answers EIO while the
//! device is still there), with `reconnect=true`: restarted, with one warning and the element
//! message `rustv4l2src-stream-restarted`, GAP events for the time without frames, PTS that
//! keep increasing; past the restart budget (5 within 60 s), the error; frames held downstream
//! across a restart keep their picture. (Without `reconnect`: the error, tests/faults.rs.)
//!
//! Needs vivid (see `common`): run through `scripts/vm-run`.

mod common;

use common::watch::{Seen, Watch};
use common::{
    Capture, TIMEOUT, change_state, device_mappings, fds_on, hash_of, in_device_memory, setup,
    v4l2_ctl_ok,
};
use gst::prelude::*;
use std::time::{Duration, Instant};

const CAPS: &str = "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1";
const PERIOD: gst::ClockTime = gst::ClockTime::from_nseconds(1_000_000_000 / 30);
/// The element's restart budget (src/rustv4l2src/alive/restart.rs).
const BUDGET: usize = 5;

fn break_the_stream(device: &str) {
    v4l2_ctl_ok(&["-d", device, "-c", "inject_fatal_streaming_error=1"]);
}

/// A capture with `reconnect=true` (and `src_props`) whose sink keeps at most 2 frames, and a
/// watch on it, PLAYING with 10 frames through.
fn restartable(device: &str, src_props: &str) -> (Capture, Watch) {
    let capture = Capture::with_sink(
        device,
        &format!("reconnect=true {src_props}"),
        CAPS,
        "max-buffers=2 drop=true",
    );
    let watch = Watch::new(capture.sink.upcast_ref(), &capture.bus());
    let started = Instant::now();
    capture.play();
    watch.wait_buffers(started, 10);
    (capture, watch)
}

/// The last buffer PTS the sink saw before `at`, the GAP events and the first buffer PTS after.
fn around(watch: &Watch, at: Instant) -> (gst::ClockTime, usize, gst::ClockTime) {
    let seen = watch.seen();
    let before = seen
        .iter()
        .filter(|(t, _)| *t < at)
        .filter_map(|(_, s)| match s {
            Seen::Buffer(pts) => *pts,
            _ => None,
        })
        .next_back()
        .expect("frames before the failure");
    let after: Vec<&Seen> = seen
        .iter()
        .filter(|(t, _)| *t >= at)
        .map(|(_, s)| s)
        .collect();
    let gaps = after
        .iter()
        .take_while(|s| !matches!(s, Seen::Buffer(_)))
        .filter(|s| matches!(s, Seen::Gap(..)))
        .count();
    let first = after
        .iter()
        .find_map(|s| match s {
            Seen::Buffer(pts) => *pts,
            _ => None,
        })
        .expect("frames after the restart");
    (before, gaps, first)
}

#[test]
fn a_failed_stream_is_restarted_with_gap_events_and_increasing_pts() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, watch) = restartable(&device, "");
    let injected = Instant::now();
    break_the_stream(&device);
    let (restarted_at, restarted) =
        watch.wait_element("rustv4l2src-stream-restarted", 1, Duration::from_secs(5));
    eprintln!(
        "restarted {:?} after the injection: {restarted}",
        restarted_at - injected
    );
    assert_eq!(restarted.get::<String>("device").unwrap(), device);
    let reason = restarted.get::<String>("reason").unwrap();
    assert!(
        reason.contains(&device) && reason.to_lowercase().contains("error"),
        "{reason}"
    );
    assert_eq!(restarted.get::<u64>("restarts").unwrap(), 1);
    watch.wait_buffers(restarted_at, 30);

    let warnings = watch.warnings();
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    assert!(
        warnings[0].contains(&device) && warnings[0].contains("failed its stream"),
        "{warnings:?}"
    );
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    watch.assert_monotonic();
    // Every frame period from the last frame before the failure to the first after it is
    // covered by a GAP event, but for the one the first new frame took to come (a period, and
    // vivid's start under emulation).
    let (before, gaps, first) = around(&watch, restarted_at);
    eprintln!("last frame {before}, {gaps} GAP events, first frame after {first}");
    assert!(
        first - before <= PERIOD * (gaps as u64 + 2) + gst::ClockTime::from_mseconds(300),
        "{} without frames, covered by {gaps} GAP events of {PERIOD}",
        first - before
    );
    let stats = capture.stats();
    assert_eq!(stats.get::<u64>("stream-restarts").unwrap(), 1, "{stats}");
    assert_eq!(stats.get::<u64>("disconnects").unwrap(), 0, "{stats}");
}

/// A driver that fails at every turn is restarted `BUDGET` times, then the error.
#[test]
fn failures_past_the_budget_end_in_the_error() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, watch) = restartable(&device, "");
    for n in 1..=BUDGET {
        break_the_stream(&device);
        let (at, _) = watch.wait_element("rustv4l2src-stream-restarted", n, Duration::from_secs(5));
        watch.wait_buffers(at, 3);
    }
    let injected = Instant::now();
    break_the_stream(&device);
    let deadline = injected + Duration::from_secs(5);
    while watch.errors().is_empty() {
        assert!(Instant::now() < deadline, "no error after the 6th failure");
        std::thread::sleep(Duration::from_millis(10));
    }
    let errors = watch.errors();
    eprintln!("{:?} after the 6th failure: {errors:?}", injected.elapsed());
    let text = errors[0].to_string();
    assert!(
        text.contains(&device) && text.contains("after 5 restarts"),
        "{text}"
    );
    assert_eq!(
        capture.stats().get::<u64>("stream-restarts").unwrap(),
        BUDGET as u64
    );
    assert_eq!(
        watch.element_messages("rustv4l2src-stream-restarted").len(),
        BUDGET
    );
}

/// Frames downstream holds when the stream fails keep their picture and their memory through
/// the restart, go back to nothing when let go (the new stream's buffers are not theirs), and
/// nothing of either stream is left once the pipeline is gone.
#[test]
fn frames_held_across_a_restart_keep_their_picture() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, watch) = restartable(&device, "buffer-count=8");
    let held: Vec<(gst::Buffer, u64)> = (0..3)
        .map(|_| {
            let buffer = capture.pull_buffer();
            assert!(in_device_memory(&buffer, &device), "lent, not copied");
            let hash = hash_of(&buffer.map_readable().unwrap());
            (buffer, hash)
        })
        .collect();
    break_the_stream(&device);
    let (at, _) = watch.wait_element("rustv4l2src-stream-restarted", 1, Duration::from_secs(5));
    watch.wait_buffers(at, 20);
    for (i, (buffer, hash)) in held.iter().enumerate() {
        assert_eq!(
            hash_of(&buffer.map_readable().unwrap()),
            *hash,
            "held frame {i} changed across the restart"
        );
    }
    drop(held);
    let later = Instant::now();
    watch.wait_buffers(later, 10);
    let stats = capture.stats();
    assert_eq!(stats.get::<u64>("requeue-failures").unwrap(), 0, "{stats}");
    assert_eq!(stats.get::<u64>("stream-restarts").unwrap(), 1, "{stats}");
    assert!(watch.errors().is_empty(), "{:?}", watch.errors());
    change_state(capture.element(), gst::State::Null, TIMEOUT);
    // appsink keeps the samples it queued across a stop (GStreamer 1.22): only once the
    // pipeline is gone is nothing left to hold a frame.
    drop(watch);
    drop(capture);
    assert_eq!(fds_on(&device), 0, "descriptors left on {device}");
    assert!(
        device_mappings(&device).is_empty(),
        "mappings of {device} left: {:?}",
        device_mappings(&device)
    );
}
