//! Capture from vivid through the real element: formats and sizes, multi-planar layouts,
//! zero-copy and the buffers' lifetime. Timestamps, `num-buffers`, unlocking, caps queries and
//! the plugin as `gst-launch-1.0` loads it are in tests/capture_flow.rs.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded, so a
//! broken element fails a test instead of hanging the run.

mod common;

use common::{
    Capture, TIMEOUT, bus_problems, change_state, hash_of, highest_rate, lies_in, memory_spans,
    setup, shut_down,
};

use std::collections::HashSet;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoInfo, VideoMeta};

/// A harness around `launch` (a source and what follows it) with a bus on its bin, so the
/// element's errors can be shown when a pull fails.
struct Harnessed {
    h: Harness,
    bus: gst::Bus,
}

impl Harnessed {
    /// `video_meta`: downstream (the harness) says it understands `GstVideoMeta`.
    fn new(launch: &str, video_meta: bool) -> Harnessed {
        let mut h = Harness::new_parse(launch);
        let bus = gst::Bus::new();
        h.element()
            .expect("the harness holds the parsed bin")
            .set_bus(Some(&bus));
        h.use_systemclock();
        if video_meta {
            h.add_propose_allocation_meta(VideoMeta::meta_api(), None);
        }
        h.play();
        Harnessed { h, bus }
    }

    fn pull(&mut self, what: &str) -> gst::Buffer {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(buffer) = self.h.try_pull() {
                return buffer;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: no buffer within {TIMEOUT:?}:{}",
                    bus_problems(&self.bus)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The caps the harness's sink pad received.
    fn caps(&self) -> gst::Caps {
        self.h
            .sinkpad()
            .and_then(|pad| pad.current_caps())
            .expect("caps were negotiated before the first buffer")
    }

    /// The first element made by `factory`.
    fn element(&mut self, factory: &str) -> gst::Element {
        self.h
            .find_element(factory)
            .unwrap_or_else(|| panic!("no {factory} in the harness"))
    }
}

impl Drop for Harnessed {
    fn drop(&mut self) {
        if let Some(bin) = self.h.element() {
            shut_down(&bin);
        }
    }
}

/// The least bytes a row of `plane` holds and the plane's number of rows, from the format's
/// components (for packed formats, the widest component decides).
fn plane_extent(info: &VideoInfo, plane: u32) -> (usize, usize) {
    let finfo = info.format_info();
    let (mut row, mut rows) = (0, 0);
    for c in 0..finfo.n_components() {
        if finfo.plane()[c as usize] != plane {
            continue;
        }
        let width = finfo.scale_width(c as u8, info.width()) as usize;
        row = row.max(width * finfo.pixel_stride()[c as usize] as usize);
        rows = rows.max(finfo.scale_height(c as u8, info.height()) as usize);
    }
    (row, rows)
}

/// Where each memory of `buffer` sits in the buffer's byte range.
fn memory_ranges(buffer: &gst::BufferRef) -> Vec<Range<usize>> {
    let mut start = 0;
    buffer
        .iter_memories()
        .map(|mem| {
            let range = start..start + mem.size();
            start = range.end;
            range
        })
        .collect()
}

/// Asserts that `buffer` holds one frame of `info`: exactly GStreamer's default size when it has
/// no `GstVideoMeta`; else a meta that matches the caps and whose planes fit in the buffer
/// without overlapping, each inside one memory. Returns the plane byte ranges.
fn check_layout(buffer: &gst::BufferRef, info: &VideoInfo, ctx: &str) -> Vec<Range<usize>> {
    let Some(meta) = buffer.meta::<VideoMeta>() else {
        assert_eq!(
            buffer.size(),
            info.size(),
            "{ctx}: without a GstVideoMeta the buffer must have GStreamer's default size"
        );
        return (0..info.n_planes())
            .map(|p| {
                let (row, rows) = plane_extent(info, p);
                let start = info.offset()[p as usize];
                start..start + info.stride()[p as usize] as usize * (rows - 1) + row
            })
            .collect();
    };
    assert_eq!(meta.format(), info.format(), "{ctx}: GstVideoMeta format");
    assert_eq!(
        (meta.width(), meta.height()),
        (info.width(), info.height()),
        "{ctx}: meta size"
    );
    assert_eq!(
        meta.n_planes(),
        info.n_planes(),
        "{ctx}: GstVideoMeta plane count"
    );
    let memories = memory_ranges(buffer);
    let mut planes = Vec::new();
    for p in 0..info.n_planes() {
        let (row, rows) = plane_extent(info, p);
        let stride = meta.stride()[p as usize];
        assert!(
            stride > 0 && stride as usize >= row,
            "{ctx}: plane {p} stride {stride} is shorter than a row ({row} bytes)"
        );
        let start = meta.offset()[p as usize];
        let plane = start..start + stride as usize * (rows - 1) + row;
        assert!(
            plane.end <= buffer.size(),
            "{ctx}: plane {p} ({plane:?}, stride {stride}) ends beyond the buffer ({} bytes)",
            buffer.size()
        );
        assert!(
            memories
                .iter()
                .any(|m| m.start <= plane.start && plane.end <= m.end),
            "{ctx}: plane {p} ({plane:?}) straddles memories {memories:?}"
        );
        planes.push(plane);
    }
    let mut sorted = planes.clone();
    sorted.sort_by_key(|r| r.start);
    for pair in sorted.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "{ctx}: planes overlap: {planes:?}"
        );
    }
    planes
}

/// Asserts that every span lies inside one of `device`'s mappings: the data was not copied.
fn assert_in_device_memory(spans: &[Range<usize>], device: &str, ctx: &str) {
    let mappings = common::device_mappings(device);
    assert!(
        !mappings.is_empty(),
        "{ctx}: {device} is not mapped into this process"
    );
    for span in spans {
        assert!(
            mappings
                .iter()
                .any(|m| m.start <= span.start && span.end <= m.end),
            "{ctx}: memory {:#x}..{:#x} is not in {device}'s buffers {:x?}: it was copied",
            span.start,
            span.end,
            mappings
        );
    }
}

fn all_zero(data: &[u8]) -> bool {
    data.iter().all(|&b| b == 0)
}

fn video_caps(format: VideoFormat, width: u32, height: u32) -> String {
    format!(
        "video/x-raw,format={},width={width},height={height}",
        format.to_str()
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Formats and sizes.

/// Captures a few frames of `format` at `width`x`height` from `device` through a harness that
/// understands GstVideoMeta, and checks caps, layout, content and that nothing was copied.
fn capture_format(device: &str, format: VideoFormat, width: u32, height: u32) {
    let ctx = format!("{} {width}x{height}", format.to_str());
    let caps = video_caps(format, width, height);
    let mut h = Harnessed::new(
        &format!("rustv4l2src device={device} num-buffers=3 ! capsfilter caps=\"{caps}\""),
        true,
    );
    let buffers: Vec<gst::Buffer> = (0..3).map(|_| h.pull(&ctx)).collect();

    let negotiated = h.caps();
    assert!(
        negotiated.is_fixed(),
        "{ctx}: negotiated caps are not fixed: {negotiated}"
    );
    let s = negotiated
        .structure(0)
        .expect("fixed caps have a structure");
    assert_eq!(s.name(), "video/x-raw", "{ctx}: {negotiated}");
    let info = VideoInfo::from_caps(&negotiated)
        .unwrap_or_else(|_| panic!("{ctx}: negotiated caps are not video: {negotiated}"));
    assert_eq!(
        (info.format(), info.width(), info.height()),
        (format, width, height),
        "{ctx}: negotiated {negotiated}"
    );
    // Downstream left the rate open, so fixation must have taken the highest the device offers
    // at this format and size.
    let offered = h
        .element("rustv4l2src")
        .static_pad("src")
        .expect("src pad")
        .query_caps(Some(&gst::Caps::from_str(&caps).expect("valid caps")));
    let best = offered.iter().map(highest_rate).max().unwrap_or_else(|| {
        panic!("{ctx}: the device caps do not offer this format and size: {offered}")
    });
    assert_eq!(
        s.get::<gst::Fraction>("framerate").ok(),
        Some(best),
        "{ctx}: negotiated {negotiated}, but the device offers up to {best} fps"
    );

    for (i, buffer) in buffers.iter().enumerate() {
        let ctx = format!("{ctx} buffer {i}");
        check_layout(buffer, &info, &ctx);
        let map = buffer.map_readable().expect("maps readable");
        assert!(
            !all_zero(&map),
            "{ctx}: all {} bytes are zero: vivid draws a pattern",
            map.size()
        );
        drop(map);
        assert_in_device_memory(&memory_spans(buffer), device, &ctx);
    }
}

#[test]
fn formats_and_sizes() {
    let _device = setup();
    let device = common::vivid_sp();
    const FORMATS: &[VideoFormat] = &[
        VideoFormat::Yuy2,
        VideoFormat::Uyvy,
        VideoFormat::I420,
        VideoFormat::Yv12,
        VideoFormat::Nv12,
        VideoFormat::Nv21,
        VideoFormat::Nv16,
        VideoFormat::Rgb,
        VideoFormat::Bgr,
        VideoFormat::Bgrx,
        VideoFormat::Xrgb,
        VideoFormat::Gray8,
        VideoFormat::Gray16Le,
        VideoFormat::Rgb16,
    ];
    const SIZES: &[(u32, u32)] = &[(320, 180), (640, 360), (1920, 1080)];
    for &format in FORMATS {
        for &(width, height) in SIZES {
            capture_format(&device, format, width, height);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Multi-planar node.

/// Captures `format` at 640x360 from vivid's multi-planar node with downstream accepting
/// GstVideoMeta, and checks that each plane arrives in its own memory, straight from the device.
fn capture_per_plane(format: VideoFormat) {
    let device = common::vivid_mp();
    let ctx = format!("{} 640x360 on {device}", format.to_str());
    let mut h = Harnessed::new(
        &format!(
            "rustv4l2src device={device} num-buffers=2 ! capsfilter caps=\"{}\"",
            video_caps(format, 640, 360)
        ),
        true,
    );
    let buffer = h.pull(&ctx);
    let info = VideoInfo::from_caps(&h.caps()).expect("video caps");
    assert_eq!(info.format(), format, "{ctx}");
    let n_planes = info.n_planes() as usize;

    assert_eq!(
        buffer.n_memory(),
        n_planes,
        "{ctx}: one GstMemory per plane"
    );
    assert!(
        buffer.meta::<VideoMeta>().is_some(),
        "{ctx}: per-plane memory needs a GstVideoMeta"
    );
    let planes = check_layout(&buffer, &info, &ctx);
    let memories = memory_ranges(&buffer);
    for (p, plane) in planes.iter().enumerate() {
        assert!(
            memories[p].start <= plane.start && plane.end <= memories[p].end,
            "{ctx}: plane {p} ({plane:?}) is not in memory {p} ({:?})",
            memories[p]
        );
    }
    let spans = memory_spans(&buffer);
    assert_in_device_memory(&spans, &device, &ctx);

    let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info)
        .unwrap_or_else(|_| panic!("{ctx}: the frame does not map"));
    for p in 0..n_planes {
        let data = frame.plane_data(p as u32).expect("plane maps");
        // Mapping must not merge the memories into a copy: each plane is read where the
        // driver wrote it.
        let expected = spans[p].start + (planes[p].start - memories[p].start);
        assert_eq!(
            data.as_ptr() as usize,
            expected,
            "{ctx}: plane {p} was mapped from a copy"
        );
        assert!(!all_zero(data), "{ctx}: plane {p} is all zeros");
    }
}

/// vivid offers Y444 on this node only as `YM24`, one buffer per plane.
#[test]
fn multiplanar_y444_has_one_memory_per_plane() {
    let _device = setup();
    capture_per_plane(VideoFormat::Y444);
}

/// vivid's multi-planar node lists NV12 both as `NV12` (one buffer) and `NM12` (one per
/// plane). The element prefers the one-buffer form, which every consumer reads without a
/// merge: the frame arrives in one memory, through the multi-planar API, straight from the
/// device.
#[test]
fn multiplanar_nv12_prefers_the_one_buffer_form() {
    let _device = setup();
    let device = common::vivid_mp();
    let ctx = format!("NV12 640x360 on {device}");
    let mut h = Harnessed::new(
        &format!(
            "rustv4l2src device={device} num-buffers=2 ! capsfilter caps=\"{}\"",
            video_caps(VideoFormat::Nv12, 640, 360)
        ),
        true,
    );
    let buffer = h.pull(&ctx);
    let info = VideoInfo::from_caps(&h.caps()).expect("video caps");
    assert_eq!(
        buffer.n_memory(),
        1,
        "{ctx}: one memory for the one-buffer NV12"
    );
    check_layout(&buffer, &info, &ctx);
    assert_in_device_memory(&memory_spans(&buffer), &device, &ctx);
    let map = buffer.map_readable().expect("buffer maps");
    assert!(!all_zero(&map), "{ctx}: frame is all zeros");
}

/// A downstream that does not understand GstVideoMeta reads the frame at GStreamer's default
/// offsets and strides, so that is where the planes must be, also from a format the driver
/// splits into one buffer per plane. A GstVideoMeta may still be attached (it lets a frame map
/// the planes in place instead of merging the memories), but only one describing that layout.
#[test]
fn multiplanar_without_video_meta_gives_default_layout() {
    let _device = setup();
    let device = common::vivid_mp();
    let ctx = format!("Y444 640x360 on {device}, no GstVideoMeta downstream");
    let mut h = Harnessed::new(
        &format!(
            "rustv4l2src device={device} num-buffers=2 ! capsfilter caps=\"{}\"",
            video_caps(VideoFormat::Y444, 640, 360)
        ),
        false,
    );
    let buffer = h.pull(&ctx);
    let info = VideoInfo::from_caps(&h.caps()).expect("video caps");
    assert_eq!(
        buffer.size(),
        info.size(),
        "{ctx}: the buffer must have GStreamer's default size"
    );
    if let Some(meta) = buffer.meta::<VideoMeta>() {
        let n = info.n_planes() as usize;
        assert_eq!(
            (meta.offset(), meta.stride()),
            (&info.offset()[..n], &info.stride()[..n]),
            "{ctx}: a GstVideoMeta downstream ignores must describe the default layout"
        );
    }
    check_layout(&buffer, &info, &ctx);
    // What a GstVideoMeta-unaware element reads: the memories merged, planes at default offsets.
    let merged = buffer.map_readable().expect("readable");
    let frame = gst_video::VideoFrame::from_buffer_readable(buffer.clone(), &info)
        .unwrap_or_else(|_| panic!("{ctx}: the frame does not map"));
    for p in 0..info.n_planes() {
        let data = frame.plane_data(p).expect("plane maps");
        assert!(!all_zero(data), "{ctx}: plane {p} is zeros");
        let (row, rows) = plane_extent(&info, p);
        let (offset, stride) = (
            info.offset()[p as usize],
            info.stride()[p as usize] as usize,
        );
        let frame_stride = frame.plane_stride()[p as usize] as usize;
        for r in 0..rows {
            assert_eq!(
                &merged[offset + r * stride..][..row],
                &data[r * frame_stride..][..row],
                "{ctx}: plane {p} row {r} differs between the default layout and the frame"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Zero-copy and buffer lifetime.

#[test]
fn buffers_point_into_the_device_mappings() {
    let _device = setup();
    let device = common::vivid_sp();
    let before = common::device_mappings(&device);
    // The element copies instead of lending when downstream holds all but `copy-threshold`
    // (default 1) of the driver's buffers. Here downstream holds the frame held below, the last
    // sample appsink keeps and whatever waits in appsink's queue; at 15 fps this loop keeps
    // that queue short even under emulation, and six buffers stay clear of the threshold.
    let capture = Capture::new(
        &device,
        "buffer-count=6",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=15/1",
    );
    capture.play();

    // Held to the end: if the element handed its V4L2 buffer back to the driver while this
    // frame is still referenced, the driver would draw a later frame over it.
    let held = capture.pull_buffer();
    let held_hash = hash_of(&held.map_readable().expect("readable"));

    let mut spans = Vec::new();
    let mut hashes = HashSet::new();
    for _ in 0..30 {
        let buffer = capture.pull_buffer();
        assert_eq!(buffer.n_memory(), 1, "YUY2 is one plane, one memory");
        let map = buffer.map_readable().expect("readable");
        // vivid's text (time, frame count) is in the top rows: enough to tell frames apart,
        // and cheap, so this loop keeps up with the capture.
        hashes.insert(hash_of(&map[..map.size().min(640 * 2 * 32)]));
        let start = map.as_ptr() as usize;
        spans.push(start..start + map.size());
        drop(map);
        spans.extend(memory_spans(&buffer));
    }
    let mappings = common::device_mappings(&device);
    assert_in_device_memory(&spans, &device, "YUY2 640x360");
    let distinct: HashSet<usize> = spans.iter().map(|s| s.start).collect();
    let new_mappings = mappings.len() - before.len().min(mappings.len());
    eprintln!(
        "{} distinct buffers, {new_mappings} mappings",
        distinct.len()
    );
    assert!(
        distinct.len() >= 2 && distinct.len() <= new_mappings,
        "{} distinct buffer addresses for {new_mappings} mapped V4L2 buffers: the driver's \
         buffers must be reused, and more than one must be in flight",
        distinct.len()
    );
    // vivid draws the time and frame count into each frame, so frames differ and an
    // overwritten held frame would show.
    assert!(
        hashes.len() > 1,
        "30 frames were identical; cannot check the held frame"
    );
    assert_eq!(
        hash_of(&held.map_readable().expect("readable")),
        held_hash,
        "a frame held downstream changed: its V4L2 buffer was re-queued while still in use"
    );

    drop(held);
    drop(capture);
    assert_eq!(
        common::device_mappings(&device),
        before,
        "after the pipeline stopped and every buffer was released, the device mappings remain"
    );
}

/// A buffer may outlive the pipeline that captured it: its memory stays mapped and unchanged
/// until the last reference goes, and is unmapped then.
#[test]
fn a_buffer_outlives_its_pipeline() {
    let _device = setup();
    let device = common::vivid_sp();
    let before = common::device_mappings(&device);
    let capture = Capture::new(&device, "", &video_caps(VideoFormat::Yuy2, 320, 180));
    capture.play();
    let buffer = capture.pull_buffer();
    let hash = hash_of(&buffer.map_readable().expect("readable"));
    let spans = memory_spans(&buffer);
    drop(capture);

    assert_in_device_memory(&spans, &device, "after the pipeline stopped");
    assert_eq!(
        hash_of(&buffer.map_readable().expect("readable")),
        hash,
        "the frame changed after the pipeline stopped"
    );
    drop(buffer);
    assert_eq!(
        common::device_mappings(&device),
        before,
        "the device buffers stay mapped after the last captured buffer was released"
    );
}

/// `buffer-count` is how many V4L2 buffers the element asks for; vivid grants any count from 2.
#[test]
fn buffer_count_sets_the_number_of_device_buffers() {
    let _device = setup();
    let device = common::vivid_sp();
    let before = common::device_mappings(&device).len();
    let capture = Capture::new(
        &device,
        "buffer-count=6",
        &video_caps(VideoFormat::Yuy2, 320, 180),
    );
    capture.play();
    let buffer = capture.pull_buffer();
    assert_in_device_memory(&memory_spans(&buffer), &device, "buffer-count=6");
    let mapped = common::device_mappings(&device).len() - before;
    assert_eq!(
        mapped, 6,
        "buffer-count=6, but {mapped} V4L2 buffers are mapped"
    );
}

/// When downstream holds all the driver's buffers but `copy-threshold`, frames come as copies
/// rather than stalling the driver; once downstream lets go, they are lent again.
#[test]
fn holding_every_buffer_falls_back_to_copies() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = Capture::new(
        &device,
        "buffer-count=4 copy-threshold=1",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=60/1",
    );
    capture.play();
    let info = VideoInfo::from_caps(
        &gst::Caps::from_str("video/x-raw,format=YUY2,width=320,height=180,framerate=60/1")
            .expect("caps"),
    )
    .expect("info");
    let held: Vec<gst::Buffer> = (0..8).map(|_| capture.pull_buffer()).collect();
    let mappings = common::device_mappings(&device);
    let in_device = |buffer: &gst::Buffer| lies_in(buffer, &mappings);
    let lent = held.iter().filter(|b| in_device(b)).count();
    assert!(
        lent <= 3,
        "{lent} of 8 held frames are driver buffers, but 1 of 4 must stay with the driver"
    );
    for (i, buffer) in held.iter().enumerate() {
        check_layout(buffer, &info, &format!("held frame {i}"));
        let map = buffer.map_readable().expect("readable");
        assert!(!all_zero(&map), "held frame {i} is all zeros");
    }
    let offsets: Vec<(u64, bool, Option<gst::ClockTime>)> = held
        .iter()
        .map(|b| (b.offset(), in_device(b), b.pts()))
        .collect();
    for pair in offsets.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "copies broke the frame order (offset, lent, pts): {offsets:?}"
        );
    }
    drop(held);
    // Released buffers go back to the driver: lending resumes. The first few pulled may still
    // be copies made while we held everything.
    let mut last = capture.pull_buffer();
    for _ in 0..10 {
        last = capture.pull_buffer();
    }
    assert_in_device_memory(
        &memory_spans(&last),
        &device,
        "after releasing the held frames",
    );
}

/// Back to READY (device still open) and PLAYING again with other caps: the element must set the
/// new format and buffers, not reuse the old stream's.
#[test]
fn restarting_with_other_caps_captures_the_new_format() {
    let _device = setup();
    let device = common::vivid_sp();
    let first = video_caps(VideoFormat::Yuy2, 320, 180);
    let capture = Capture::new(
        &device,
        "",
        &format!("capsfilter name=filter caps=\"{first}\""),
    );
    let filter = capture
        .pipeline
        .by_name("filter")
        .expect("named capsfilter");
    for caps in [
        first.clone(),
        video_caps(VideoFormat::Nv12, 640, 360),
        first,
    ] {
        let wanted =
            VideoInfo::from_caps(&gst::Caps::from_str(&caps).expect("caps")).expect("video caps");
        filter.set_property("caps", gst::Caps::from_str(&caps).expect("valid caps"));
        capture.play();
        // appsink (1.22) keeps the samples it queued before READY and hands them out first;
        // they are from the previous run, so skip them. The element's own must follow.
        let mut stale = Vec::new();
        let (negotiated, buffer) = loop {
            let sample = capture.pull();
            let negotiated = sample.caps().expect("samples carry caps").to_owned();
            let info = VideoInfo::from_caps(&negotiated).expect("video caps");
            if (info.format(), info.width(), info.height())
                == (wanted.format(), wanted.width(), wanted.height())
            {
                break (info, sample.buffer_owned().expect("buffer"));
            }
            stale.push(negotiated);
            assert!(
                stale.len() <= 30,
                "asked for {caps}, but the samples still have other caps: {stale:?}"
            );
        };
        check_layout(&buffer, &negotiated, &caps);
        assert_in_device_memory(&memory_spans(&buffer), &device, &caps);
        drop(buffer);
        change_state(capture.element(), gst::State::Ready, TIMEOUT);
    }
}
