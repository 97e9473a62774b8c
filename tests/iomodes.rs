//! The io-modes `userptr`, `rw` and `dmabuf-import` through the real element: `userptr` streams
//! frames of the asked caps out of memory the element allocated (not the driver's mappings,
//! not a copy), on single- and multi-planar nodes, and its frames held downstream outlive the
//! stream; `rw` streams frames read() into system memory, counted as copies, and refuses a
//! format of several planes clearly; `dmabuf-import` without a pool downstream is a clear error
//! naming the device.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded.

mod common;

use common::{Capture, bus_problems, device_mappings, hash_of, memory_spans, setup};

use std::ops::Range;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

const FRAMES: usize = 8;

/// Address ranges of this process's anonymous mappings (no file behind them), from
/// /proc/self/maps: where `userptr` memory (the element's own `mmap`) lives.
fn anonymous_mappings() -> Vec<Range<usize>> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter(|line| line.split_whitespace().nth(5).is_none())
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            Some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
        })
        .collect()
}

/// Pulls `FRAMES` frames (held: with `copy-threshold=0` the source needs more buffers than
/// that), checking each has `sizes` (bytes per memory, or one total when
/// `sizes` has one entry), a PTS after the one before, and content that is not all zero
/// (vivid's bars). Returns them, held.
fn pull_frames(capture: &Capture, sizes: &[usize], ctx: &str) -> Vec<gst::Buffer> {
    let mut frames: Vec<gst::Buffer> = Vec::new();
    for i in 0..FRAMES {
        let buffer = capture.pull_buffer();
        let got: Vec<usize> = buffer.iter_memories().map(|m| m.size()).collect();
        if sizes.len() == 1 {
            assert_eq!(buffer.size(), sizes[0], "{ctx}: frame {i} size ({got:?})");
        } else {
            assert_eq!(got, sizes, "{ctx}: frame {i} memory sizes");
        }
        let pts = buffer
            .pts()
            .unwrap_or_else(|| panic!("{ctx}: frame {i} has no PTS"));
        if let Some(last) = frames.last().and_then(|b| b.pts()) {
            assert!(pts > last, "{ctx}: frame {i} PTS {pts} not after {last}");
        }
        for mem in buffer.iter_memories() {
            let map = mem.map_readable().expect("memory maps readable");
            assert!(
                map.iter().any(|&b| b != 0),
                "{ctx}: frame {i} has an all-zero memory"
            );
        }
        frames.push(buffer);
    }
    frames
}

/// Asserts each memory of `frames` is page-aligned, inside one of this process's anonymous
/// mappings (the kernel merges neighbouring ones, so not necessarily at its start) and outside
/// the device's mappings: memory the element mapped for the driver to fill, lent as it is. A
/// copy would be in a pool buffer, which GStreamer allocates with malloc, behind a header:
/// never page-aligned.
fn assert_user_memory(frames: &[gst::Buffer], device: &str, ctx: &str) {
    let anonymous = anonymous_mappings();
    let driver = device_mappings(device);
    for (i, frame) in frames.iter().enumerate() {
        for span in memory_spans(frame) {
            assert_eq!(span.start % 4096, 0, "{ctx}: frame {i} not page-aligned");
            assert!(
                anonymous
                    .iter()
                    .any(|m| m.start <= span.start && span.end <= m.end),
                "{ctx}: frame {i} memory {span:x?} is not in an anonymous mapping"
            );
            assert!(
                !driver
                    .iter()
                    .any(|m| m.start <= span.start && span.start < m.end),
                "{ctx}: frame {i} lies in the driver's mappings"
            );
        }
    }
}

fn copies(capture: &Capture) -> u64 {
    capture
        .stats()
        .get::<u64>("frames-copied")
        .expect("stats has frames-copied")
}

/// `io-mode=userptr` on the single-planar node: frames of the asked caps, in the element's own
/// memory, none copied.
#[test]
fn userptr_streams_from_element_memory() {
    let _device = setup();
    let device = common::vivid_sp();
    let ctx = format!("userptr YUY2 320x180 on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=userptr copy-threshold=0 buffer-count=12",
        "video/x-raw,format=YUY2,width=320,height=180",
    );
    capture.play();
    let frames = pull_frames(&capture, &[320 * 2 * 180], &ctx);
    assert_user_memory(&frames, &device, &ctx);
    assert_eq!(copies(&capture), 0, "{ctx}: frames were copied");
    common::assert_no_problems(&capture.bus(), &ctx);
}

/// `io-mode=userptr` on the multi-planar node with Y444 (`YM24`: one buffer per plane): one
/// allocation of ours per plane.
#[test]
fn userptr_multiplanar_has_one_allocation_per_plane() {
    let _device = setup();
    let device = common::vivid_mp();
    let ctx = format!("userptr Y444 320x180 on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=userptr copy-threshold=0 buffer-count=12",
        "video/x-raw,format=Y444,width=320,height=180",
    );
    capture.play();
    let frames = pull_frames(&capture, &[320 * 180; 3], &ctx);
    assert_user_memory(&frames, &device, &ctx);
    assert_eq!(copies(&capture), 0, "{ctx}: frames were copied");
}

/// Frames held downstream stay valid and unchanged after the pipeline stops and the driver's
/// buffers are freed: the memory is the element's, kept until the last frame of it is gone.
#[test]
fn held_userptr_frames_outlive_the_stream() {
    let _device = setup();
    let device = common::vivid_sp();
    let ctx = format!("userptr held across stop on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=userptr copy-threshold=0 buffer-count=12",
        "video/x-raw,format=YUY2,width=320,height=180",
    );
    capture.play();
    let held: Vec<gst::Buffer> = (0..3).map(|_| capture.pull_buffer()).collect();
    let hashes: Vec<u64> = held
        .iter()
        .map(|b| hash_of(&b.map_readable().expect("maps")))
        .collect();
    common::change_state(capture.element(), gst::State::Null, common::TIMEOUT);
    // Let a driver that still wrote into them have its chance.
    std::thread::sleep(Duration::from_millis(300));
    for (i, (frame, hash)) in held.iter().zip(&hashes).enumerate() {
        let map = frame.map_readable().expect("held frame maps after stop");
        assert_eq!(hash_of(&map), *hash, "{ctx}: held frame {i} changed");
    }
    assert_user_memory(&held, &device, &ctx);
    // And the device streams again afterwards.
    capture.play();
    pull_frames(&capture, &[320 * 2 * 180], &format!("{ctx}, restarted"));
}

/// `io-mode=rw`: frames read() into system memory, of the asked caps, each counted as a copy.
#[test]
fn rw_streams_frames_read_into_system_memory() {
    let _device = setup();
    let device = common::vivid_sp();
    let ctx = format!("rw YUY2 320x180 on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=rw",
        "video/x-raw,format=YUY2,width=320,height=180",
    );
    capture.play();
    let frames = pull_frames(&capture, &[320 * 2 * 180], &ctx);
    let driver = device_mappings(&device);
    for frame in &frames {
        for span in memory_spans(frame) {
            assert!(
                !driver
                    .iter()
                    .any(|m| m.start <= span.start && span.start < m.end),
                "{ctx}: a frame lies in a driver mapping"
            );
        }
    }
    assert!(
        copies(&capture) >= FRAMES as u64,
        "{ctx}: rw frames not counted as copies: {}",
        capture.stats()
    );
    common::assert_no_problems(&capture.bus(), &ctx);
    // A stop and a start: the reader's file was closed, so the device takes its format again.
    common::change_state(capture.element(), gst::State::Null, common::TIMEOUT);
    capture.play();
    pull_frames(&capture, &[320 * 2 * 180], &format!("{ctx}, restarted"));
}

/// Waits for an error on `capture`'s bus and returns its text and debug string.
fn wait_error(capture: &Capture, ctx: &str) -> String {
    let bus = capture.bus();
    let deadline = Instant::now() + common::TIMEOUT;
    while Instant::now() < deadline {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(200),
            &[gst::MessageType::Error],
        ) && let gst::MessageView::Error(e) = msg.view()
        {
            return format!("{} ({:?})", e.error(), e.debug());
        }
    }
    panic!("{ctx}: no error within {:?}", common::TIMEOUT);
}

/// vb2 reads single-plane formats only: `io-mode=rw` with a format of three buffers is an
/// error naming the device and what to use instead, not a hang or a crash.
#[test]
fn rw_refuses_a_format_of_several_planes() {
    let _device = setup();
    let device = common::vivid_mp();
    let ctx = format!("rw Y444 (YM24) on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=rw",
        "video/x-raw,format=Y444,width=320,height=180",
    );
    let _ = capture.element().set_state(gst::State::Playing);
    let text = wait_error(&capture, &ctx);
    for expected in [
        device.as_str(),
        "io-mode=rw",
        "io-mode=mmap",
        "3 memory planes",
    ] {
        assert!(
            text.contains(expected),
            "{ctx}: '{expected}' missing from: {text}"
        );
    }
}

/// `io-mode=dmabuf-import` with an appsink downstream, which offers no buffer pool: a clear
/// error naming the device and the io-modes to use (the import itself: `tests/dmabuf_import.rs`).
#[test]
fn dmabuf_import_without_a_pool_downstream_is_a_clear_error() {
    let _device = setup();
    let device = common::vivid_sp();
    let ctx = format!("dmabuf-import into appsink on {device}");
    let capture = Capture::new(
        &device,
        "io-mode=dmabuf-import",
        "video/x-raw,format=YUY2,width=320,height=180",
    );
    let _ = capture.element().set_state(gst::State::Playing);
    let text = wait_error(&capture, &ctx);
    for expected in [
        device.as_str(),
        "downstream offers no buffer pool to import DMABUFs from",
        "io-mode=dmabuf or mmap",
    ] {
        assert!(
            text.contains(expected),
            "{ctx}: '{expected}' missing from: {text}"
        );
    }
    assert!(
        capture.try_pull(Duration::from_millis(500)).is_none(),
        "{ctx}: a frame came anyway:{}",
        bus_problems(&capture.bus())
    );
}

/// The enum has v4l2src's six values, numbers and nicks; `auto` captures as `mmap` does.
#[test]
fn io_mode_values_are_v4l2srcs() {
    common::init();
    let src = gst::ElementFactory::make("rustv4l2src")
        .build()
        .expect("element");
    let pspec = src.find_property("io-mode").expect("io-mode exists");
    let modes = glib::EnumClass::with_type(pspec.value_type()).expect("an enum");
    let values: Vec<(i32, &str)> = modes
        .values()
        .iter()
        .map(|v| (v.value(), v.nick()))
        .collect();
    assert_eq!(
        values,
        [
            (0, "auto"),
            (1, "rw"),
            (2, "mmap"),
            (3, "userptr"),
            (4, "dmabuf"),
            (5, "dmabuf-import")
        ]
    );
    for (number, nick) in [("3", "userptr"), ("1", "rw"), ("5", "dmabuf-import")] {
        src.set_property_from_str("io-mode", number);
        let got = glib::EnumValue::from_value(&src.property_value("io-mode"))
            .expect("enum")
            .1
            .nick()
            .to_string();
        assert_eq!(got, nick, "io-mode={number}");
    }
}
