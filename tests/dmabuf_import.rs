//! `io-mode=dmabuf-import` through the real element: vivid captures into the DMABUFs of
//! downstream's buffer pool, here C `v4l2sink io-mode=dmabuf` on vivid's output node (as an
//! encoder or a display would offer them), on the single- and the multi-planar capture node;
//! the frames reach the sink in the sink's own buffers, with the picture the driver captured,
//! and nothing is copied. A pool of system memory is refused with a clear error.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded.

mod common;

use common::{TIMEOUT, bus_problems, hash_of, setup, v4l2_ctl_ok, vivid_mp, vivid_out, vivid_sp};

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

const FRAMES: usize = 30;
const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const CAPS: &str = "video/x-raw,format=YUY2,width=640,height=360";

/// vivid's output on its HDMI output and the capture node sending Rec. 709, so that both sides
/// agree on 640x360 progressive BT.709 (`v4l2sink` refuses other colorimetry there); put back
/// as vivid starts (S-Video output, sRGB) when dropped.
struct Rec709 {
    capture: String,
}

impl Rec709 {
    fn select(capture: &str) -> Rec709 {
        v4l2_ctl_ok(&["-d", &vivid_out(), "-o", "1"]);
        v4l2_ctl_ok(&["-d", capture, "-c", "colorspace=1"]);
        Rec709 {
            capture: capture.to_string(),
        }
    }
}

impl Drop for Rec709 {
    fn drop(&mut self) {
        let _ = common::v4l2_ctl(&["-d", &vivid_out(), "-o", "0"]);
        let _ = common::v4l2_ctl(&["-d", &self.capture, "-c", "colorspace=2"]);
    }
}

/// The middle row of a YUY2 frame (vivid's bars run top to bottom, and its text sits at the
/// top): what the driver drew, to compare frames by.
fn middle_row(bytes: &[u8]) -> Vec<u8> {
    let stride = WIDTH * 2;
    bytes[HEIGHT / 2 * stride..][..stride].to_vec()
}

/// The middle row of a frame of `device` captured the usual way (mmap, into an appsink).
fn reference_row(device: &str) -> Vec<u8> {
    let capture = common::Capture::new(device, "io-mode=mmap", CAPS);
    capture.play();
    let buffer = capture.pull_buffer();
    let map = buffer.map_readable().expect("frame maps");
    let row = middle_row(&map);
    drop(map);
    common::shut_down(capture.element());
    row
}

/// A pipeline set to NULL when the test ends, passed or failed, so that a failure leaves the
/// devices free for the next test.
struct Stopped(gst::Pipeline);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// What the sink's pad saw of one frame.
struct Arrived {
    dmabuf: bool,
    memories: usize,
    fd: i32,
    size: usize,
    pts: Option<gst::ClockTime>,
    row: Vec<u8>,
    /// The whole frame's hash (vivid's text and counter differ from frame to frame).
    hash: u64,
    /// The buffer itself, kept from going back to the sink's pool.
    held: Option<gst::Buffer>,
}

/// `rustv4l2src io-mode=dmabuf-import ! CAPS ! v4l2sink io-mode=dmabuf` from `device`, with
/// what the sink's pad sees recorded (and, with `hold`, each buffer kept).
fn into_v4l2sink(
    device: &str,
    frames: Option<usize>,
    hold: bool,
) -> (gst::Pipeline, gst::Element, Arc<Mutex<Vec<Arrived>>>) {
    let count = frames.map_or(String::new(), |n| format!("num-buffers={n}"));
    let line = format!(
        "rustv4l2src name=src device={device} io-mode=dmabuf-import {count} \
         ! {CAPS} ! v4l2sink name=sink device={} io-mode=dmabuf sync=false",
        vivid_out()
    );
    let pipeline = gst::parse::launch(&line)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let src = pipeline.by_name("src").expect("src");
    let sink = pipeline.by_name("sink").expect("sink");
    let arrived: Arc<Mutex<Vec<Arrived>>> = Arc::default();
    let seen = Arc::clone(&arrived);
    sink.static_pad("sink").expect("sink pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            if let Some(buffer) = info.buffer() {
                let memory = buffer.peek_memory(0);
                let dmabuf = memory.downcast_memory_ref::<gst_allocators::DmaBufMemory>();
                let (row, hash) = buffer
                    .map_readable()
                    .map(|map| (middle_row(&map), hash_of(&map)))
                    .unwrap_or_default();
                seen.lock().unwrap().push(Arrived {
                    dmabuf: dmabuf.is_some(),
                    memories: buffer.n_memory(),
                    fd: dmabuf.map_or(-1, |m| m.fd()),
                    size: buffer.size(),
                    pts: buffer.pts(),
                    row,
                    hash,
                    held: hold.then(|| buffer.clone()),
                });
            }
            gst::PadProbeReturn::Ok
        },
    );
    (pipeline, src, arrived)
}

fn captures_into_v4l2sinks_dmabufs(device: &str) {
    let _device = setup();
    let _rec709 = Rec709::select(device);
    let ctx = format!(
        "dmabuf-import from {device} into v4l2sink on {}",
        vivid_out()
    );
    let reference = reference_row(device);
    assert!(
        reference.iter().any(|&b| b != 0),
        "{ctx}: vivid's reference frame is black"
    );

    let (pipeline, src, arrived) = into_v4l2sink(device, Some(FRAMES), false);
    let _stopped = Stopped(pipeline.clone());
    let bus = pipeline.bus().expect("bus");
    pipeline
        .set_state(gst::State::Playing)
        .unwrap_or_else(|e| panic!("{ctx}: PLAYING: {e}{}", bus_problems(&bus)));
    let started = Instant::now();
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let stats = src.property::<gst::Structure>("stats");
    common::shut_down(pipeline.upcast_ref());
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => panic!("{ctx}: {} ({:?})", e.error(), e.debug()),
        _ => panic!("{ctx}: no EOS within {TIMEOUT:?}"),
    }

    let arrived = arrived.lock().unwrap();
    assert_eq!(arrived.len(), FRAMES, "{ctx}: frames at the sink");
    let mut fds = BTreeSet::new();
    let mut last_pts = None;
    for (i, frame) in arrived.iter().enumerate() {
        assert!(frame.dmabuf, "{ctx}: frame {i} is not DMABUF memory");
        assert_eq!(frame.memories, 1, "{ctx}: frame {i} memories");
        assert_eq!(frame.size, WIDTH * HEIGHT * 2, "{ctx}: frame {i} size");
        assert!(
            frame.row == reference,
            "{ctx}: frame {i} does not hold vivid's picture (middle row starts {:?}, \
             captured with mmap {:?})",
            &frame.row[..16.min(frame.row.len())],
            &reference[..16]
        );
        let pts = frame
            .pts
            .unwrap_or_else(|| panic!("{ctx}: frame {i} has no PTS"));
        assert!(
            last_pts.is_none_or(|last| pts > last),
            "{ctx}: frame {i} PTS {pts} not after {last_pts:?}"
        );
        last_pts = Some(pts);
        fds.insert(frame.fd);
    }
    // The sink's pool has a handful of buffers, and each came back to be captured into again.
    assert!(
        (2..=8).contains(&fds.len()),
        "{ctx}: {} distinct DMABUFs over {FRAMES} frames: {fds:?}",
        fds.len()
    );
    // vivid writes its frame counter into each picture: frames captured anew, not repeats.
    let pictures: BTreeSet<u64> = arrived.iter().map(|f| f.hash).collect();
    assert!(
        pictures.len() > FRAMES / 2,
        "{ctx}: only {} different pictures in {FRAMES} frames",
        pictures.len()
    );
    let copied = stats.get::<u64>("frames-copied").expect("frames-copied");
    let captured = stats
        .get::<u64>("frames-captured")
        .expect("frames-captured");
    assert_eq!(copied, 0, "{ctx}: frames copied ({stats})");
    assert_eq!(captured, FRAMES as u64, "{ctx}: frames captured ({stats})");
    eprintln!(
        "{ctx}: {FRAMES} frames in {:?} through {} DMABUFs of the sink",
        started.elapsed(),
        fds.len()
    );
}

#[test]
fn single_planar_node_captures_into_downstreams_dmabufs() {
    captures_into_v4l2sinks_dmabufs(&vivid_sp());
}

#[test]
fn multi_planar_node_captures_into_downstreams_dmabufs() {
    captures_into_v4l2sinks_dmabufs(&vivid_mp());
}

/// Downstream holds every buffer of its pool (a probe keeps each frame): the element waits for
/// one to come back, captures nothing meanwhile, posts nothing, and still stops at once; the
/// held frames stay whole and readable after the stop, each as it arrived (the element queues
/// no buffer it does not hold, so the driver writes none of them).
#[test]
fn downstream_holding_every_buffer_stalls_capture_and_stop_still_returns() {
    let _device = setup();
    let device = vivid_sp();
    let _rec709 = Rec709::select(&device);
    let ctx = format!("dmabuf-import from {device}, every buffer held downstream");
    let (pipeline, _src, arrived) = into_v4l2sink(&device, None, true);
    let _stopped = Stopped(pipeline.clone());
    let bus = pipeline.bus().expect("bus");
    pipeline
        .set_state(gst::State::Playing)
        .unwrap_or_else(|e| panic!("{ctx}: PLAYING: {e}{}", bus_problems(&bus)));
    // Frames come until the pool is dry, then none for a second and a half.
    let deadline = Instant::now() + TIMEOUT;
    let mut count = 0;
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = arrived.lock().unwrap().len();
        if now != count {
            count = now;
            since = Instant::now();
        } else if count > 0 && since.elapsed() > Duration::from_millis(1500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ctx}: frames never stopped ({count}) or never came{}",
            bus_problems(&bus)
        );
    }
    // v4l2sink's pool grows as buffers stay out, up to V4L2's 32.
    assert!(
        (2..=32).contains(&count),
        "{ctx}: {count} frames before the pool ran dry"
    );
    common::assert_no_problems(&bus, &ctx);
    let took = common::change_state(pipeline.upcast_ref(), gst::State::Null, TIMEOUT);
    assert!(took < Duration::from_secs(5), "{ctx}: NULL took {took:?}");
    let held = std::mem::take(&mut *arrived.lock().unwrap());
    for (i, frame) in held.iter().enumerate() {
        let buffer = frame.held.as_ref().expect("held");
        let map = buffer
            .map_readable()
            .expect("a held frame maps after the stop");
        assert_eq!(map.len(), WIDTH * HEIGHT * 2, "{ctx}: held frame {i} size");
        assert!(
            hash_of(&map) == frame.hash,
            "{ctx}: held frame {i} changed after it arrived"
        );
    }
    eprintln!("{ctx}: {count} frames held, stop took {took:?}");
}

/// Downstream offers a pool of system memory (a fakesink answering the allocation query with a
/// plain GstBufferPool): an error naming the device, the memory and what to use instead.
#[test]
fn a_pool_of_system_memory_is_refused_clearly() {
    let _device = setup();
    let device = vivid_sp();
    let ctx = format!("dmabuf-import from {device} into a system-memory pool");
    let line = format!(
        "rustv4l2src device={device} io-mode=dmabuf-import num-buffers=5 ! {CAPS} \
         ! fakesink name=sink"
    );
    let pipeline = gst::parse::launch(&line).expect("pipeline parses");
    let pipeline = pipeline.downcast::<gst::Pipeline>().expect("a pipeline");
    let sink = pipeline.by_name("sink").expect("sink");
    sink.static_pad("sink").expect("sink pad").add_probe(
        gst::PadProbeType::QUERY_DOWNSTREAM,
        |_, info| {
            let Some(query) = info.query_mut() else {
                return gst::PadProbeReturn::Ok;
            };
            if let gst::QueryViewMut::Allocation(q) = query.view_mut() {
                q.add_allocation_pool(Some(&gst::BufferPool::new()), 0, 2, 0);
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        },
    );
    let bus = pipeline.bus().expect("bus");
    let _ = pipeline.set_state(gst::State::Playing);
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    common::shut_down(pipeline.upcast_ref());
    let text = match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(e)) => e.error().to_string(),
        Some(gst::MessageView::Eos(_)) => panic!("{ctx}: frames flowed into system memory"),
        _ => panic!("{ctx}: no error within {TIMEOUT:?}"),
    };
    for expected in [
        device.as_str(),
        "io-mode=dmabuf-import",
        "memory, not DMABUF",
        "io-mode=dmabuf or mmap",
    ] {
        assert!(
            text.contains(expected),
            "{ctx}: '{expected}' missing from: {text}"
        );
    }
}
