//! What the fault tests (tests/faults.rs, tests/faults_driver.rs) share: the frames and stats
//! they read of a capture, bus errors taken apart, counters of this process, and the guards that
//! put vivid's injections back.

#![allow(dead_code, unused_imports)] // each of the two binaries uses a part

use crate::common::tools::ToolEnv;
use crate::common::{
    Capture, Control, TIMEOUT, assert_no_problems, bus_problems, change_state, control_id,
    element_bus_problems, fds_on, hash_of, in_device_memory, memory_spans, open_fds, press_button,
    set_control, setup, try_change_state, v4l2_ctl, wait_for_node,
};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_video::VideoInfo;

/// "Stopping never waits forever for buffers that downstream keeps", and errors leave the
/// pipeline free to stop at once.
pub(crate) const STOP_LIMIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Pipelines, states and the bus: `common`, and what only these tests read of a capture.

pub(crate) trait CaptureExt {
    fn pull_frame(&self) -> Frame;
    fn pull_until_eos(&self, limit: Duration) -> Vec<Frame>;
}

impl CaptureExt for Capture {
    fn pull_frame(&self) -> Frame {
        Frame::of(&self.pull_buffer())
    }

    /// Every frame until end-of-stream (the source has `num-buffers`), failing on an error.
    /// Buffers are let go at once, so the element lends rather than copies.
    fn pull_until_eos(&self, limit: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + limit;
        let mut buffers = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_pull(left.max(Duration::from_millis(1))) {
                Some(sample) => buffers.push(Frame::of(sample.buffer().expect("a buffer"))),
                None if self.sink.is_eos() => return buffers,
                None => panic!(
                    "no end-of-stream within {limit:?} after {} buffers:{}",
                    buffers.len(),
                    element_bus_problems(self.element())
                ),
            }
        }
    }
}

/// The element's `stats` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) captured: u64,
    pub(crate) lost: u64,
    pub(crate) dropped: u64,
    pub(crate) corrupted: u64,
    pub(crate) copied: u64,
}

impl Stats {
    pub(crate) fn of(src: &gst::Element) -> Stats {
        let s = src.property::<gst::Structure>("stats");
        let field = |name: &str| {
            s.get::<u64>(name)
                .unwrap_or_else(|e| panic!("stats has no u64 {name}: {e} in {s}"))
        };
        Stats {
            captured: field("frames-captured"),
            lost: field("frames-lost"),
            dropped: field("frames-dropped"),
            corrupted: field("frames-corrupted"),
            copied: field("frames-copied"),
        }
    }
}

/// What the sequence checks need of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) offset: u64,
    pub(crate) pts: Option<gst::ClockTime>,
}

impl Frame {
    pub(crate) fn of(buffer: &gst::BufferRef) -> Frame {
        Frame {
            offset: buffer.offset(),
            pts: buffer.pts(),
        }
    }
}

/// An error message from the bus, taken apart.
pub(crate) struct BusError {
    /// The path of the element that posted it.
    pub(crate) source: String,
    /// Its name.
    pub(crate) source_name: String,
    pub(crate) error: glib::Error,
    pub(crate) debug: String,
}

impl BusError {
    pub(crate) fn from_message(msg: &gst::Message) -> Option<BusError> {
        let gst::MessageView::Error(e) = msg.view() else {
            return None;
        };
        Some(BusError {
            source: msg
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default(),
            source_name: msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
            error: e.error(),
            debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
        })
    }

    pub(crate) fn message(&self) -> String {
        self.error.message().to_string()
    }

    /// Asserts that the error is `kind`, of the resource errors.
    pub(crate) fn assert_is(&self, kind: gst::ResourceError, ctx: &str) {
        assert!(
            self.error.matches(kind),
            "{ctx}: expected ResourceError::{kind:?}: {self}"
        );
    }

    /// The error's domain and code, as gstreamer-rs names them.
    pub(crate) fn code(&self) -> String {
        let e = &self.error;
        e.kind::<gst::ResourceError>()
            .map(|k| format!("ResourceError::{k:?}"))
            .or_else(|| {
                e.kind::<gst::CoreError>()
                    .map(|k| format!("CoreError::{k:?}"))
            })
            .or_else(|| {
                e.kind::<gst::StreamError>()
                    .map(|k| format!("StreamError::{k:?}"))
            })
            .unwrap_or_else(|| e.domain().as_str().to_string())
    }

    /// Asserts that the sentence a user reads (the GError message, not only the debug string)
    /// contains each of `words`.
    pub(crate) fn assert_says(&self, words: &[&str], ctx: &str) {
        for word in words {
            assert!(
                self.message().contains(word),
                "{ctx}: the error message does not mention '{word}': {self}"
            );
        }
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{} from {}] {} (debug: {})",
            self.code(),
            self.source,
            self.message(),
            self.debug
        )
    }
}

/// The first error on `bus` within `limit`.
pub(crate) fn wait_error(bus: &gst::Bus, limit: Duration) -> Option<BusError> {
    bus.timed_pop_filtered(
        gst::ClockTime::try_from(limit).expect("fits"),
        &[gst::MessageType::Error],
    )
    .and_then(|msg| BusError::from_message(&msg))
}

// ---------------------------------------------------------------------------------------------
// The process: what only these tests read of it (mappings and file descriptors: `common`).

/// A hash of every byte of `buffer`.
pub(crate) fn buffer_hash(buffer: &gst::BufferRef) -> u64 {
    hash_of(&buffer.map_readable().expect("capture memory maps readable"))
}

/// A field of /proc/self/status in kB (`VmRSS`, ...).
pub(crate) fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

pub(crate) fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads in /proc/self/status")
}

/// CPU time (user + system) this process has used.
pub(crate) fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name (which may hold spaces), starting at field 3 (state):
    // utime and stime are fields 14 and 15, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("comm in /proc/self/stat") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// Frames the driver skipped between two consecutive offsets (its sequence numbers, which are
/// 32-bit and wrap).
pub(crate) fn sequence_gap(previous: u64, next: u64) -> u64 {
    u64::from((next as u32).wrapping_sub(previous as u32).wrapping_sub(1))
}

pub(crate) fn video_info(caps: &str) -> VideoInfo {
    VideoInfo::from_caps(&gst::Caps::from_str(caps).expect("valid caps")).expect("video caps")
}

pub(crate) fn frame_period(fps: u64) -> gst::ClockTime {
    gst::ClockTime::SECOND
        .mul_div_floor(1, fps)
        .expect("no overflow")
}

// ---------------------------------------------------------------------------------------------
// vivid's controls, and putting them back.

/// vivid's `inject_*` buttons arm a one-shot failure that the next REQBUFS, QBUF or STREAMON
/// consumes. If the test failed before the element hit it, it would break the next test:
/// dropping this streams a frame with `v4l2-ctl` until that works, which uses up any failure
/// still armed.
pub(crate) struct InjectionReset {
    pub(crate) device: String,
}

impl Drop for InjectionReset {
    fn drop(&mut self) {
        for _ in 0..4 {
            let out = v4l2_ctl(&["-d", &self.device, "--stream-mmap=2", "--stream-count=1"]);
            if out.status.success() {
                return;
            }
        }
        eprintln!(
            "{}: streaming one frame with v4l2-ctl keeps failing",
            self.device
        );
    }
}

/// After a disconnect, waits (bounded) for the node to come back when dropped, so that the
/// tests after this one find it even if this one failed. Declare it before the pipelines, so
/// it is dropped after them: their file handles keep the node away.
pub(crate) struct Reconnect {
    pub(crate) device: String,
}

impl Drop for Reconnect {
    fn drop(&mut self) {
        if wait_for_node(&self.device, TIMEOUT).is_none() {
            eprintln!(
                "{} did not come back within {TIMEOUT:?} of the disconnect: is a file handle \
                 still open? fds now: {:?}",
                self.device,
                open_fds()
            );
        }
    }
}

/// Captures a few frames from `device` in a fresh pipeline: the device works.
pub(crate) fn assert_fresh_capture_works(device: &str, ctx: &str) {
    let capture = Capture::new(device, "", "video/x-raw,format=YUY2,width=320,height=180");
    capture.play();
    for i in 0..3 {
        let buffer = capture.try_pull(TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{ctx}: a fresh capture got no buffer {i}:{}",
                element_bus_problems(capture.element())
            )
        });
        let buffer = buffer.buffer().expect("a buffer");
        assert_eq!(buffer.size(), 320 * 180 * 2, "{ctx}: fresh capture size");
    }
    assert_no_problems(&capture.bus(), &format!("{ctx}: a fresh capture"));
}
