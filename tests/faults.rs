//! Faults, misuse and long runs against vivid: frames that outlive their stream, renegotiation
//! while frames are held, state cycling without leaks, unplugging, timeouts, frames the driver
//! flags or drops, injected ioctl failures, bad input, and the fewest buffers a driver grants.
//!
//! vivid's error-injection controls (`disconnect`, `percentage_of_dropped_buffers`,
//! `inject_*`, `wrap_*`) are set with `v4l2-ctl`, and every test that touches one puts it back
//! on the way out, also when it fails, because the tests share the device.
//!
//! Needs vivid's nodes (see `common`): run through `scripts/vm-run`. Every wait is bounded, so a
//! broken element fails a test instead of hanging the run.

mod common;

use common::tools::ToolEnv;
use common::{
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
const STOP_LIMIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Pipelines, states and the bus: `common`, and what only these tests read of a capture.

trait CaptureExt {
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
struct Stats {
    captured: u64,
    lost: u64,
    dropped: u64,
    corrupted: u64,
    copied: u64,
}

impl Stats {
    fn of(src: &gst::Element) -> Stats {
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
struct Frame {
    offset: u64,
    pts: Option<gst::ClockTime>,
}

impl Frame {
    fn of(buffer: &gst::BufferRef) -> Frame {
        Frame {
            offset: buffer.offset(),
            pts: buffer.pts(),
        }
    }
}

/// An error message from the bus, taken apart.
struct BusError {
    /// The path of the element that posted it.
    source: String,
    /// Its name.
    source_name: String,
    error: glib::Error,
    debug: String,
}

impl BusError {
    fn from_message(msg: &gst::Message) -> Option<BusError> {
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

    fn message(&self) -> String {
        self.error.message().to_string()
    }

    /// Asserts that the error is `kind`, of the resource errors.
    fn assert_is(&self, kind: gst::ResourceError, ctx: &str) {
        assert!(
            self.error.matches(kind),
            "{ctx}: expected ResourceError::{kind:?}: {self}"
        );
    }

    /// The error's domain and code, as gstreamer-rs names them.
    fn code(&self) -> String {
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
    fn assert_says(&self, words: &[&str], ctx: &str) {
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
fn wait_error(bus: &gst::Bus, limit: Duration) -> Option<BusError> {
    bus.timed_pop_filtered(
        gst::ClockTime::try_from(limit).expect("fits"),
        &[gst::MessageType::Error],
    )
    .and_then(|msg| BusError::from_message(&msg))
}

// ---------------------------------------------------------------------------------------------
// The process: what only these tests read of it (mappings and file descriptors: `common`).

/// A hash of every byte of `buffer`.
fn buffer_hash(buffer: &gst::BufferRef) -> u64 {
    hash_of(&buffer.map_readable().expect("capture memory maps readable"))
}

/// A field of /proc/self/status in kB (`VmRSS`, ...).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads in /proc/self/status")
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
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
fn sequence_gap(previous: u64, next: u64) -> u64 {
    u64::from((next as u32).wrapping_sub(previous as u32).wrapping_sub(1))
}

fn video_info(caps: &str) -> VideoInfo {
    VideoInfo::from_caps(&gst::Caps::from_str(caps).expect("valid caps")).expect("video caps")
}

fn frame_period(fps: u64) -> gst::ClockTime {
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
struct InjectionReset {
    device: String,
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
struct Reconnect {
    device: String,
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
fn assert_fresh_capture_works(device: &str, ctx: &str) {
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

// ---------------------------------------------------------------------------------------------
// 1. Buffers outlive the stream.

/// Three frames kept by the application stay mapped and unchanged through NULL, the disposal
/// of the pipeline and the element, and a new stream on the device; they are unmapped, and the
/// device closed, once the application lets them go. Going to NULL does not wait for them.
#[test]
fn held_samples_outlive_null_and_dispose() {
    let _device = setup();
    let device = common::vivid_sp();
    let before = common::device_mappings(&device);
    let fds_before = fds_on(&device);

    let capture = Capture::new(
        &device,
        "buffer-count=6",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
    capture.play();
    let mut held: Vec<gst::Sample> = (0..3).map(|_| capture.pull()).collect();
    let mut hashes = Vec::new();
    for (i, sample) in held.iter().enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i} is a copy, not a device buffer: nothing to test"
        );
        hashes.push(buffer_hash(buffer));
    }

    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL with 3 samples held took {took:?}");
    let element = capture.src.downgrade();
    drop(capture);
    assert!(
        element.upgrade().is_none(),
        "rustv4l2src is still alive after its pipeline was dropped"
    );

    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i}: its memory is no longer in the device mappings after dispose"
        );
        assert_eq!(
            buffer_hash(buffer),
            *hash,
            "held sample {i} changed after NULL and dispose"
        );
    }

    // A new stream on the device while the old frames live: freeing one of them must not
    // queue its buffer into the new stream (same format, same buffer indices), and the others
    // must stay as they were.
    {
        let next = Capture::new(
            &device,
            "buffer-count=6",
            "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
        );
        next.play();
        for i in 0..10 {
            if i == 3 {
                drop(held.remove(0));
                hashes.remove(0);
            }
            let buffer = next.pull_buffer();
            // Under memcheck everything runs some 50 times slower, downstream falls behind and
            // the element rightly copies frames to keep the driver fed.
            assert!(
                under_memcheck() || in_device_memory(&buffer, &device),
                "new stream, frame {i}: not a device buffer"
            );
        }
        assert_no_problems(&next.bus(), "a new stream while old frames are held");
    }
    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        assert_eq!(
            buffer_hash(sample.buffer().expect("a buffer")),
            *hash,
            "held sample {} changed while a new stream ran",
            i + 1
        );
    }

    drop(held);
    assert_eq!(
        common::device_mappings(&device),
        before,
        "the device buffers stay mapped after the last held sample was dropped"
    );
    assert_eq!(
        fds_on(&device),
        fds_before,
        "{device} stays open after the element and every sample are gone: {:?}",
        open_fds()
    );
}

/// The test above again, in a child process under valgrind's memcheck: reading held samples
/// after NULL and dispose, and freeing them while a new stream runs, touches no freed or
/// unmapped memory. Memcheck knows the V4L2 ioctls, so bytes the driver wrote count as
/// initialised; leak checking is off (GLib and GStreamer keep global caches to the end).
#[test]
fn held_samples_are_valgrind_clean() {
    let _device = setup();
    let valgrind = which("valgrind")
        .expect("valgrind is not installed: scripts/setup-deps installs it (apt package valgrind)");
    let log = std::env::temp_dir().join(format!("rustv4l2-memcheck-{}.log", std::process::id()));
    let started = Instant::now();
    let output = Command::new(valgrind)
        .args([
            "--tool=memcheck",
            "--error-exitcode=97",
            "--leak-check=no",
            "--track-origins=no",
            "--num-callers=30",
            // vgdb's shared-memory file cannot be mapped from the rig's 9p-shared TMPDIR.
            "--vgdb=no",
        ])
        .arg(format!("--log-file={}", log.display()))
        .arg(std::env::current_exe().expect("own path"))
        .args([
            "--exact",
            "held_samples_outlive_null_and_dispose",
            "--test-threads=1",
        ])
        .env("G_SLICE", "always-malloc")
        .env(UNDER_MEMCHECK, "1")
        .output()
        .expect("run valgrind");
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "memcheck run took {:?}; {}",
        started.elapsed(),
        report
            .lines()
            .find(|l| l.contains("ERROR SUMMARY"))
            .unwrap_or("no summary")
    );
    assert!(
        stdout.contains("1 passed"),
        "the test did not pass under valgrind ({}):\n{stdout}\n{}\n{report}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors ({}):\n{report}",
        output.status
    );
}

const UNDER_MEMCHECK: &str = "RUSTV4L2_TEST_UNDER_MEMCHECK";

fn under_memcheck() -> bool {
    std::env::var_os(UNDER_MEMCHECK).is_some()
}

/// The first `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

// ---------------------------------------------------------------------------------------------
// 2. Renegotiation while PLAYING.

/// A capsfilter change while PLAYING stops, re-allocates and restarts, while two frames of the
/// old format are still held: they stay intact, and the new frames have the new format and come
/// straight from the device.
#[test]
fn caps_change_while_playing_with_held_buffers() {
    let _device = setup();
    let device = common::vivid_sp();
    let old_caps = "video/x-raw,format=YUY2,width=640,height=360";
    let new_caps = "video/x-raw,format=NV12,width=320,height=180";
    let capture = Capture::new(
        &device,
        "buffer-count=6",
        &format!("capsfilter name=f caps=\"{old_caps}\""),
    );
    let filter = capture.pipeline.by_name("f").expect("named capsfilter");
    capture.play();

    let held: Vec<gst::Sample> = (0..2).map(|_| capture.pull()).collect();
    let old_info = video_info(old_caps);
    let mut hashes = Vec::new();
    for (i, sample) in held.iter().enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert_eq!(buffer.size(), old_info.size(), "held sample {i} size");
        assert!(
            in_device_memory(buffer, &device),
            "held sample {i} is a copy, not a device buffer: nothing to test"
        );
        hashes.push(buffer_hash(buffer));
    }

    filter.set_property("caps", gst::Caps::from_str(new_caps).expect("valid caps"));
    let new_info = video_info(new_caps);
    let changed = Instant::now();
    let mut old_format = 0;
    let first_new = loop {
        let sample = capture.pull();
        let caps = sample.caps().expect("samples carry caps").to_owned();
        let info = VideoInfo::from_caps(&caps).expect("video caps");
        if (info.format(), info.width(), info.height())
            == (new_info.format(), new_info.width(), new_info.height())
        {
            break sample;
        }
        old_format += 1;
        assert!(
            changed.elapsed() < TIMEOUT,
            "{TIMEOUT:?} after the capsfilter changed, samples still have {caps}:{}",
            bus_problems(&capture.bus())
        );
    };
    eprintln!(
        "new caps after {:?} and {old_format} samples of the old format",
        changed.elapsed()
    );

    let mut new_buffers = vec![first_new.buffer_owned().expect("a buffer")];
    new_buffers.extend((0..4).map(|_| capture.pull_buffer()));
    for (i, buffer) in new_buffers.iter().enumerate() {
        assert_eq!(
            buffer.size(),
            new_info.size(),
            "new-format buffer {i}: size of NV12 320x180 expected"
        );
        assert!(
            buffer
                .map_readable()
                .expect("readable")
                .iter()
                .any(|&b| b != 0),
            "new-format buffer {i} is all zeros"
        );
    }
    assert!(
        in_device_memory(&new_buffers[0], &device),
        "the first buffer after renegotiation is not in the device mappings: {:x?} vs {:x?}",
        memory_spans(&new_buffers[0]),
        common::device_mappings(&device)
    );

    for (i, (sample, hash)) in held.iter().zip(&hashes).enumerate() {
        let buffer = sample.buffer().expect("a buffer");
        assert_eq!(
            buffer_hash(buffer),
            *hash,
            "held sample {i} of the old format changed after renegotiation"
        );
    }
    assert_no_problems(&capture.bus(), "renegotiation");

    // Once the old frames go, so do the old stream's buffers: only the new ones stay mapped.
    drop(held);
    drop(new_buffers);
    drop(first_new);
    capture.pull();
    let mapped = common::device_mappings(&device).len();
    assert_eq!(
        mapped, 6,
        "after the old frames were dropped, {mapped} buffers are mapped; buffer-count=6"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. State cycling.

/// 200 NULL -> PLAYING -> NULL cycles of one pipeline, each until a buffer arrives, leak no file
/// descriptor, mapping or memory.
#[test]
fn state_cycling_leaks_nothing() {
    const WARM_UP: usize = 10;
    const CYCLES: usize = 200;
    const RSS_GROWTH_LIMIT_KB: u64 = 8 * 1024;
    const FD_SLACK: usize = 2;
    let _device = setup();
    let device = common::vivid_sp();
    let mappings_at_start = common::device_mappings(&device);
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=320,height=180,framerate=60/1",
    );
    // Nothing is pulled: appsink keeps at most the newest buffer and lets it go at NULL. A
    // pulled sample would stay in appsink (GStreamer 1.22) until the next pull, holding its
    // stream's queue and device descriptor across NULL: seen in CI as the device "staying open".
    capture.sink.set_max_buffers(1);
    capture.sink.set_drop(true);
    let pushed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pushed);
    capture.src.static_pad("src").expect("src pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        },
    );

    let cycle = |n: usize| {
        let before = pushed.load(Ordering::SeqCst);
        capture.play();
        let deadline = Instant::now() + TIMEOUT;
        while pushed.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "cycle {n}: no buffer within {TIMEOUT:?}:{}",
                bus_problems(&capture.bus())
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    };

    for n in 0..WARM_UP {
        cycle(n);
    }
    let fds = open_fds();
    let mappings = common::device_mappings(&device);
    let rss = status_kb("VmRSS");
    let anon = status_kb("RssAnon");
    let thread_count = threads();
    let started = Instant::now();
    for n in 0..CYCLES {
        cycle(WARM_UP + n);
    }
    let took = started.elapsed();
    let fds_after = open_fds();
    let mappings_after = common::device_mappings(&device);
    let rss_after = status_kb("VmRSS");
    let anon_after = status_kb("RssAnon");
    let threads_after = threads();
    eprintln!(
        "{CYCLES} cycles took {took:?} ({:?} each); VmRSS {rss} kB -> {rss_after} kB \
         ({:+} kB), RssAnon {anon} kB -> {anon_after} kB; fds {} -> {}; device mappings {} \
         -> {}; threads {thread_count} -> {threads_after}",
        took / CYCLES as u32,
        rss_after as i64 - rss as i64,
        fds.len(),
        fds_after.len(),
        mappings.len(),
        mappings_after.len()
    );
    assert_no_problems(&capture.bus(), "state cycling");
    // A leak in the element costs at least one descriptor per cycle. GLib and GStreamer may
    // open a descriptor lazily, on first use, from their own threads, so a small constant
    // difference is not a leak; the device itself must not stay open at all.
    let opened: Vec<_> = fds_after.iter().filter(|fd| !fds.contains(fd)).collect();
    assert!(
        fds_after.len() <= fds.len() + FD_SLACK,
        "{} more file descriptors after {CYCLES} cycles; new ones: {opened:?}",
        fds_after.len() as i64 - fds.len() as i64
    );
    assert!(
        !opened
            .iter()
            .any(|(_, target)| target == Path::new(&device)),
        "the device stayed open after {CYCLES} cycles: {opened:?}"
    );
    assert_eq!(
        mappings_after.len(),
        mappings.len(),
        "device mappings before {mappings:x?}, after {CYCLES} cycles {mappings_after:x?}"
    );
    assert!(
        rss_after < rss + RSS_GROWTH_LIMIT_KB,
        "VmRSS grew from {rss} kB to {rss_after} kB over {CYCLES} cycles"
    );
    assert!(
        threads_after <= thread_count,
        "threads grew from {thread_count} to {threads_after} over {CYCLES} cycles"
    );
    drop(capture);
    assert_eq!(
        common::device_mappings(&device),
        mappings_at_start,
        "device mappings remain after the cycled pipeline was dropped"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Unplug.

/// vivid's `disconnect` makes the node vanish (ENODEV, POLLERR) while streaming: the element
/// posts an error saying the device was disconnected within about a frame period, does not
/// spin, stops promptly, and lets go of the node so it can come back.
#[test]
fn unplug_posts_an_error_within_a_frame() {
    const LATENCY_LIMIT: Duration = Duration::from_millis(500);
    let _device = setup();
    let device = common::vivid_sp();
    let _reconnect = Reconnect {
        device: device.clone(),
    };
    let capture = Capture::new(
        &device,
        "",
        "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1",
    );
    let posted: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_error = Arc::clone(&posted);
    capture.bus().set_sync_handler(move |_, msg| {
        if msg.type_() == gst::MessageType::Error {
            first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(Instant::now);
        }
        gst::BusSyncReply::Pass
    });
    capture.play();
    for _ in 0..3 {
        capture.pull();
    }

    let disconnect = control_id(&device, "disconnect");
    let pressed = press_button(&device, disconnect);
    let error = wait_error(&capture.bus(), TIMEOUT);
    let at = *posted.lock().unwrap_or_else(|e| e.into_inner());
    let error = error.unwrap_or_else(|| panic!("no error within {TIMEOUT:?} of the disconnect"));
    let latency = at
        .expect("the sync handler saw the error")
        .saturating_duration_since(pressed);
    eprintln!("disconnect -> error posted after {latency:?}: {error}");
    error.assert_is(gst::ResourceError::NotFound, "unplug");
    error.assert_says(&["disconnected", &device], "unplug");
    assert!(
        latency <= LATENCY_LIMIT,
        "the error came {latency:?} after the disconnect, more than {LATENCY_LIMIT:?} (one \
         frame is 33 ms)"
    );

    // Still PLAYING after the error: the element must not spin on the dead device.
    let cpu = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_time().saturating_sub(cpu);
    eprintln!("CPU time in the second after the error: {spent:?}");
    assert!(
        spent < Duration::from_millis(500),
        "the process used {spent:?} of CPU in the second after the unplug error: a busy loop?"
    );

    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL after the unplug took {took:?}");
    drop(capture);
    let back = wait_for_node(&device, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "{device} did not come back within 10 s after the pipeline was dropped: a file \
             handle is still open? {:?}",
            open_fds()
        )
    });
    eprintln!("{device} came back {back:?} after the pipeline was dropped");
    assert_fresh_capture_works(&device, "after the unplug");
}

// ---------------------------------------------------------------------------------------------
// 5. Timeout.

/// A capture where vivid drops every frame, with extra source properties.
fn starved_capture(device: &str, src_props: &str) -> (Capture, Control) {
    let dropping = Control::set(device, "percentage_of_dropped_buffers", 100, 0);
    let capture = Capture::new(
        device,
        src_props,
        "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1",
    );
    (capture, dropping)
}

#[test]
fn timeout_posts_an_error_when_no_frame_comes() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=500");
    let started = Instant::now();
    capture.play();
    let error = wait_error(&capture.bus(), TIMEOUT)
        .unwrap_or_else(|| panic!("no error within {TIMEOUT:?} with timeout=500"));
    let took = started.elapsed();
    eprintln!("timeout=500: error {took:?} after PLAYING was asked for: {error}");
    error.assert_is(gst::ResourceError::Read, "timeout=500");
    error.assert_says(&[&device, "500", "timeout"], "timeout=500");
    assert!(
        took < Duration::from_secs(2),
        "timeout=500 posted its error only after {took:?}"
    );
    assert!(
        capture.sink.try_pull_sample(gst::ClockTime::ZERO).is_none(),
        "a frame arrived although vivid drops them all"
    );
    change_state(capture.element(), gst::State::Null, STOP_LIMIT);
}

#[test]
fn timeout_action_eos_ends_the_stream() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=500 timeout-action=eos");
    let started = Instant::now();
    capture.play();
    let msg = capture.bus().timed_pop_filtered(
        gst::ClockTime::try_from(TIMEOUT).expect("fits"),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let took = started.elapsed();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(_)) => panic!(
            "timeout-action=eos posted an error: {}",
            msg.as_ref()
                .and_then(BusError::from_message)
                .expect("error")
        ),
        _ => panic!("no EOS within {TIMEOUT:?} with timeout=500 timeout-action=eos"),
    }
    eprintln!("timeout-action=eos: EOS {took:?} after PLAYING was asked for");
    assert!(
        took < Duration::from_secs(2),
        "timeout=500 timeout-action=eos ended the stream only after {took:?}"
    );
    assert!(capture.sink.is_eos(), "appsink did not get the EOS");
    change_state(capture.element(), gst::State::Null, STOP_LIMIT);
}

#[test]
fn timeout_zero_waits_forever() {
    let _device = setup();
    let device = common::vivid_sp();
    let (capture, _dropping) = starved_capture(&device, "timeout=0");
    capture.play();
    let msg = capture.bus().timed_pop_filtered(
        gst::ClockTime::from_seconds(2),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        msg.is_none(),
        "timeout=0 must wait for ever, but the bus got {:?}",
        msg.as_ref()
            .and_then(BusError::from_message)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "EOS".into())
    );
    // The wait must still be interruptible.
    let took = change_state(capture.element(), gst::State::Null, STOP_LIMIT);
    eprintln!("PLAYING -> NULL while waiting for ever took {took:?}");
}

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
