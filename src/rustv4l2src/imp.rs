//! The GObject subclass behind `rustv4l2src`: a live `PushSrc` that negotiates caps from what the
//! device enumerates and pushes each captured V4L2 buffer downstream without copying it.
//!
//! Lock order: `state` before `settings`; `poller` is taken alone and only for a moment, so
//! `unlock()` never waits behind a thread blocked in poll().

use super::colorbalance::{ChannelSpec, Channels};
use crate::caps;
use crate::v4l2::{self, Device, OpenError, Poller, Queue, Wait};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_allocators::prelude::DmaBufAllocatorExtManual as _;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rustv4l2src",
        gst::DebugColorFlags::empty(),
        Some("Zero-copy V4L2 capture source"),
    )
});

const DEFAULT_DEVICE: &str = "/dev/video0";
/// 0: choose from the driver's minimum and what downstream says it holds.
const DEFAULT_BUFFER_COUNT: u32 = 0;
const MAX_BUFFER_COUNT: u32 = 32;
/// Used when neither the driver nor downstream says anything: enough for the driver to keep
/// capturing while downstream holds a frame or two.
const AUTO_MIN_BUFFERS: u32 = 4;

/// What happens when no frame arrives within `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcTimeoutAction")]
pub enum TimeoutAction {
    #[enum_value(name = "Post an error and stop", nick = "error")]
    Error,
    #[enum_value(name = "End the stream (EOS)", nick = "eos")]
    Eos,
}

/// How captured frames reach downstream. The numbers and nicks are v4l2src's for the same
/// modes, so `io-mode=4` or `io-mode=dmabuf` mean the same to both elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcIoMode")]
pub enum IoMode {
    #[enum_value(
        name = "Memory-mapped driver buffers, lent as system memory",
        nick = "mmap"
    )]
    Mmap = 2,
    #[enum_value(
        name = "Driver buffers exported as DMABUF (VIDIOC_EXPBUF), lent as dmabuf memory",
        nick = "dmabuf"
    )]
    Dmabuf = 4,
}

const DEFAULT_IO_MODE: IoMode = IoMode::Mmap;
const DEFAULT_TIMEOUT_MS: u32 = 0;
/// Longer than any frame plausibly waits between capture and dequeue.
const MAX_PLAUSIBLE_AGE: gst::ClockTime = gst::ClockTime::from_seconds(2);
const DEFAULT_LOW_LATENCY: bool = false;
/// Lend frames while at least this many buffers stay with the driver; below it, copy. One is
/// the least that keeps the driver capturing while downstream holds everything else.
const DEFAULT_COPY_THRESHOLD: u32 = 1;
const DEFAULT_TIMEOUT_ACTION: TimeoutAction = TimeoutAction::Error;

#[derive(Debug, Clone)]
struct Settings {
    device: String,
    buffer_count: u32,
    io_mode: IoMode,
    timeout_ms: u32,
    timeout_action: TimeoutAction,
    copy_threshold: u32,
    low_latency: bool,
    /// brightness, contrast, saturation, hue: applied only once the user sets them, so a
    /// device keeps its own defaults otherwise.
    color: [Option<i32>; 4],
    extra_controls: Option<gst::Structure>,
}

/// The colour-balance properties and the V4L2 controls behind them.
const COLOR_CONTROLS: [(&str, u32); 4] = [
    ("brightness", v4l2::V4L2_CID_BRIGHTNESS),
    ("contrast", v4l2::V4L2_CID_CONTRAST),
    ("saturation", v4l2::V4L2_CID_SATURATION),
    ("hue", v4l2::V4L2_CID_HUE),
];

/// Sets one control after checking it exists and takes `value`, and returns the value the
/// driver kept; the error is a warning for the user.
fn set_control(device: &Device, ctrl: &v4l2::ControlInfo, value: i64) -> Result<i32, String> {
    device.set_control(ctrl, value).map_err(|e| e.to_string())
}

/// What applying controls did.
#[derive(Default)]
struct Applied {
    /// To post; a missing control is one, not an error.
    warnings: Vec<String>,
    /// The colour controls that were set, by index in `COLOR_CONTROLS`, with the value the
    /// driver kept: what GstColorBalance's `value-changed` reports.
    colors: Vec<(usize, i32)>,
}

impl Applied {
    fn record(&mut self, cid: u32, result: Result<i32, String>) {
        match result {
            Ok(kept) => {
                if let Some(i) = COLOR_CONTROLS.iter().position(|(_, c)| *c == cid) {
                    self.colors.push((i, kept));
                }
            }
            Err(warning) => self.warnings.push(warning),
        }
    }
}

/// Applies the colour properties (all set ones, or just `only`) and, with `extra`, the
/// `extra-controls` structure.
fn apply_controls(
    device: &Device,
    settings: &Settings,
    only: Option<&str>,
    extra: bool,
) -> Applied {
    let mut applied = Applied::default();
    for ((name, cid), value) in COLOR_CONTROLS.iter().zip(settings.color) {
        let Some(value) = value else { continue };
        if only.is_some_and(|o| o != *name) {
            continue;
        }
        match device.queryctrl(*cid) {
            Ok(Some(ctrl)) => applied.record(ctrl.id, set_control(device, &ctrl, value.into())),
            Ok(None) => applied.warnings.push(format!(
                "Device '{}' has no {} control; '{}' is ignored",
                device.path().display(),
                name,
                name
            )),
            Err(e) => applied
                .warnings
                .push(format!("Could not query control '{name}': {e}")),
        }
    }
    let Some(structure) = settings.extra_controls.as_ref().filter(|_| extra) else {
        return applied;
    };
    let controls = match device.controls() {
        Ok(controls) => controls,
        Err(e) => {
            applied.warnings.push(e.to_string());
            return applied;
        }
    };
    for (field, value) in structure.iter() {
        let value = if let Ok(v) = value.get::<i32>() {
            v as i64
        } else if let Ok(v) = value.get::<u32>() {
            v as i64
        } else if let Ok(v) = value.get::<i64>() {
            v
        } else if let Ok(v) = value.get::<bool>() {
            v as i64
        } else {
            applied.warnings.push(format!(
                "extra-controls: '{}' has a {} value; controls take integers or booleans",
                field,
                value.type_()
            ));
            continue;
        };
        match controls
            .iter()
            .find(|c| v4l2::controls::normalise_control_name(&c.name) == field.as_str())
        {
            Some(ctrl) => applied.record(ctrl.id, set_control(device, ctrl, value)),
            None => applied.warnings.push(format!(
                "extra-controls: device '{}' has no control named '{}' (it has: {})",
                device.path().display(),
                field,
                controls
                    .iter()
                    .map(|c| v4l2::controls::normalise_control_name(&c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    applied
}

/// GstColorBalance's channels for `device`: those of the colour controls above that it has as
/// enabled integer controls, in that order, as `v4l2src` lists them: labelled with the control's
/// normalised name (as in `v4l2-ctl --list-ctrls`), ranged as `VIDIOC_QUERYCTRL` says.
fn color_channels(device: &Device) -> Result<Vec<ChannelSpec>, v4l2::Error> {
    let mut specs = Vec::new();
    for (key, (_, cid)) in COLOR_CONTROLS.iter().enumerate() {
        let Some(ctrl) = device.queryctrl(*cid)? else {
            continue;
        };
        if ctrl.type_ == v4l2::controls::CTRL_TYPE_INTEGER
            && ctrl.flags & v4l2::V4L2_CTRL_FLAG_DISABLED == 0
        {
            specs.push(ChannelSpec {
                key,
                label: v4l2::controls::normalise_control_name(&ctrl.name),
                min: ctrl.minimum,
                max: ctrl.maximum,
            });
        }
    }
    Ok(specs)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            device: DEFAULT_DEVICE.into(),
            buffer_count: DEFAULT_BUFFER_COUNT,
            io_mode: DEFAULT_IO_MODE,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            timeout_action: DEFAULT_TIMEOUT_ACTION,
            copy_threshold: DEFAULT_COPY_THRESHOLD,
            low_latency: DEFAULT_LOW_LATENCY,
            color: [None; 4],
            extra_controls: None,
        }
    }
}

/// The negotiated format and, once allocation has run, the buffers.
struct Stream {
    /// The caps downstream got: the negotiated ones, completed with what the driver settled on
    /// (interlacing, colorimetry).
    caps: gst::Caps,
    /// The fixed caps negotiation asked for, before the driver's answer completed them.
    asked: gst::Caps,
    /// `caps` as a `VideoInfo`; of format `Encoded` for Bayer and compressed formats.
    info: gst_video::VideoInfo,
    framing: caps::Framing,
    frame_duration: Option<gst::ClockTime>,
    queue: Option<Arc<Queue>>,
    streaming: bool,
    /// Downstream understands GstVideoMeta, so strides that differ from GStreamer's default can
    /// be described instead of copied away.
    video_meta: bool,
    /// Downstream can read the driver's buffers as they are (`Framing::readable_as_is`), and
    /// raw video's buffers need a GstVideoMeta to say how: both fixed for the stream, so
    /// worked out once rather than per frame.
    readable_as_is: bool,
    needs_video_meta: bool,
    last_sequence: Option<u32>,
    /// The PTS of the frame pushed last, since the stream began or the last flush.
    last_pts: Option<gst::ClockTime>,
    /// 2^32 times the number of times the driver's sequence wrapped: OFFSET keeps growing.
    sequence_epoch: u64,
    /// System-memory buffers for those copies, made on first need.
    copy_pool: Option<gst::BufferPool>,
    /// Set when the queue's buffers were exported (`io-mode=dmabuf`): wraps their fds.
    dmabuf_allocator: Option<gst_allocators::DmaBufAllocator>,
    /// The pipeline clock seen last, and whether it reads CLOCK_MONOTONIC.
    clock_kind: Option<(gst::Clock, bool)>,
}

// One `State` per element, never moved around: boxing the open variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum State {
    Closed,
    Open {
        device: Arc<Device>,
        /// Formats and sizes as listed at open; frame intervals are filled in as they are
        /// probed (`probed_intervals` says which), because enumerating every interval of every
        /// size costs thousands of ioctls and negotiation needs only a few.
        probed: Vec<v4l2::ProbedFormat>,
        probed_intervals: HashSet<(usize, usize)>,
        /// Everything the device offers, built on the first caps query.
        caps: Option<gst::Caps>,
        /// The pixel aspect ratio the device reports for its current input (`VIDIOC_CROPCAP`).
        par: gst::Fraction,
        stream: Option<Stream>,
        /// GstColorBalance's channels for this device: made on first use (most users never ask,
        /// and finding them costs a `VIDIOC_QUERYCTRL` per colour control), then kept unchanged
        /// until it closes, because `list_channels` lends them out without a reference.
        channels: OnceCell<Channels>,
    },
}

/// Fills in the frame intervals of one listed size, once.
fn probe_intervals(
    device: &Device,
    probed: &mut [v4l2::ProbedFormat],
    done: &mut HashSet<(usize, usize)>,
    format: usize,
    size: usize,
) -> Result<(), v4l2::Error> {
    if !done.insert((format, size)) {
        return Ok(());
    }
    let fourcc = probed[format].fourcc;
    device.fill_intervals(fourcc, &mut probed[format].sizes[size])
}

/// The formats and sizes worth trying, in the order the caps list them: the driver's format
/// order, larger sizes first.
fn candidates(probed: &[v4l2::ProbedFormat]) -> Vec<(usize, usize)> {
    let area = |size: &v4l2::ProbedSize| match size {
        v4l2::ProbedSize::Discrete { width, height, .. } => *width as u64 * *height as u64,
        v4l2::ProbedSize::Range { range, .. } => range.max_width as u64 * range.max_height as u64,
    };
    let mut out = Vec::new();
    for (f, format) in probed.iter().enumerate() {
        if caps::entry(format.fourcc).is_none() {
            continue;
        }
        let mut sizes: Vec<usize> = (0..format.sizes.len()).collect();
        sizes.sort_by_key(|&i| std::cmp::Reverse(area(&format.sizes[i])));
        out.extend(sizes.into_iter().map(|i| (f, i)));
    }
    out
}

/// One listed size of one format as caps.
fn size_caps(format: &v4l2::ProbedFormat, size: usize, par: gst::Fraction) -> gst::Caps {
    caps::probed_to_caps_with_par(
        &[v4l2::ProbedFormat {
            sizes: vec![format.sizes[size].clone()],
            ..format.clone()
        }],
        par,
    )
}

pub struct RustV4l2Src {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Reached by `unlock()` from another thread; cloned out before any wait.
    poller: Mutex<Option<Arc<Poller>>>,
    /// Taken alone, or after `state`.
    stats: Mutex<Stats>,
}

impl Default for RustV4l2Src {
    fn default() -> Self {
        RustV4l2Src {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::Closed),
            poller: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the element has done since it started, for the `stats` property.
#[derive(Debug, Clone, Default)]
struct Stats {
    /// Frames pushed downstream.
    captured: u64,
    /// Frames the driver skipped (gaps in its sequence numbers).
    lost: u64,
    /// Older ready frames skipped in favour of the newest (`low-latency`).
    dropped: u64,
    /// Frames the driver flagged as corrupt (`V4L2_BUF_FLAG_ERROR`), not pushed.
    corrupted: u64,
    /// Frames copied into system memory instead of lent (see `copy-threshold`).
    copied: u64,
    /// From the driver's capture time to the push of the last frame.
    last_delay: Option<gst::ClockTime>,
}

impl Stats {
    fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder("application/x-rustv4l2src-stats")
            .field("frames-captured", self.captured)
            .field("frames-lost", self.lost)
            .field("frames-dropped", self.dropped)
            .field("frames-corrupted", self.corrupted)
            .field("frames-copied", self.copied)
            .field(
                "last-delay",
                self.last_delay.map_or(u64::MAX, |d| d.nseconds()),
            )
            .build()
    }
}

/// Frames missing between two driver sequence numbers, across the u32 wrap. A jump backwards
/// (a driver restarting its count) is not a loss.
fn sequence_gap(last: u32, sequence: u32) -> u32 {
    let gap = sequence.wrapping_sub(last).wrapping_sub(1);
    if gap < u32::MAX / 2 { gap } else { 0 }
}

/// The video flags of one dequeued buffer, from the field order the driver gives it and, for
/// plain INTERLACED, the one the stream's TV standard implies (`order`).
fn field_flags(field: u32, order: gst_video::VideoFieldOrder) -> gst::BufferFlags {
    use gst_video::VideoBufferFlags as F;
    let flags = match field {
        v4l2::V4L2_FIELD_INTERLACED_TB => F::INTERLACED | F::TFF,
        v4l2::V4L2_FIELD_INTERLACED if order == gst_video::VideoFieldOrder::TopFieldFirst => {
            F::INTERLACED | F::TFF
        }
        v4l2::V4L2_FIELD_INTERLACED_BT | v4l2::V4L2_FIELD_INTERLACED => F::INTERLACED,
        // `alternate`: each buffer is one field.
        v4l2::V4L2_FIELD_TOP => F::TOP_FIELD,
        v4l2::V4L2_FIELD_BOTTOM => F::BOTTOM_FIELD,
        _ => F::empty(),
    };
    // `from_bits_retain`: the video flags are bits gst::BufferFlags does not name.
    gst::BufferFlags::from_bits_retain(flags.bits())
}

/// Plane offsets for GstVideoMeta. With one memory per plane they count from the start of the
/// buffer across the memories, so they follow the sizes the driver actually filled.
fn meta_offsets(layout: &caps::Layout, buffer: &gst::BufferRef) -> [usize; 4] {
    if layout.n_memories <= 1 {
        return layout.offsets;
    }
    let mut starts = [0usize; 8];
    let mut at = 0;
    for (i, mem) in buffer.iter_memories().enumerate().take(starts.len()) {
        starts[i] = at;
        at += mem.size();
    }
    let mut offsets = [0usize; 4];
    for (p, offset) in offsets.iter_mut().enumerate().take(layout.n_planes) {
        let mem = layout.memory_plane_of[p];
        let first_in_mem = (0..p)
            .find(|&q| layout.memory_plane_of[q] == mem)
            .unwrap_or(p);
        *offset = starts[mem] + layout.offsets[p] - layout.offsets[first_in_mem];
    }
    offsets
}

/// Wraps each plane of a lent frame as dmabuf memory (the frame's bytes of it, from
/// `data_offset`), and ties the frame to `buffer` so the driver buffer is re-queued when
/// `buffer` is freed.
///
/// The frame's `Plane` guards ride in a small holder buffer attached with a `GstParentBufferMeta`:
/// they drop, re-queuing, when the outgoing buffer and every copy of it (copies take the meta
/// along) are gone, the moment C v4l2src re-queues (the buffer back in its pool). A memory taken
/// out of the buffer alone does not hold the V4L2 buffer, as with v4l2src: the driver may fill it
/// again while such a memory is still read. That is a stale picture, never a dangling one: each
/// memory owns its own duplicate of the dmabuf fd, which keeps the exported buffer allocated.
fn lend_as_dmabuf(
    buffer: &mut gst::BufferRef,
    allocator: &gst_allocators::DmaBufAllocator,
    planes: impl Iterator<Item = v4l2::Plane>,
) -> Result<(), String> {
    let planes: Vec<_> = planes.collect();
    for plane in &planes {
        let dmabuf = plane
            .dmabuf()
            .map_err(|e| e.to_string())?
            .ok_or("the buffers were not exported")?;
        let mut memory = dmabuf_memory(allocator, dmabuf.fd, dmabuf.size)
            .map_err(|e| format!("the dmabuf allocator refused the fd: {e}"))?;
        memory
            .get_mut()
            .ok_or("a new memory is not writable")?
            .resize(dmabuf.offset..dmabuf.offset + dmabuf.len);
        buffer.append_memory(memory);
    }
    let holder = gst::Buffer::from_slice(LentFrame { _guards: planes });
    gst::ParentBufferMeta::add(buffer, &holder);
    Ok(())
}

/// Unsafe outside `v4l2/` (as is `colorbalance.rs`): it needs GStreamer, which that layer must not
/// know.
fn dmabuf_memory(
    allocator: &gst_allocators::DmaBufAllocator,
    fd: v4l2::DmaBufFd,
    size: usize,
) -> Result<gst::Memory, glib::BoolError> {
    // SAFETY: `alloc_dmabuf` needs a dmabuf fd that the new memory may own and close, of at least
    // `size` bytes (it maps that many). Only VIDIOC_EXPBUF makes a `DmaBufFd`, or a dup of one,
    // so `fd` is a dmabuf; it is moved in, so the memory is its sole owner; `size` is the plane's
    // length from VIDIOC_QUERYBUF, and vb2 exports the whole (page-rounded) plane.
    unsafe { allocator.alloc_dmabuf(OwnedFd::from(fd), size) }
}

/// The `Plane` guards of a frame lent as dmabuf memory, as the (empty) content of its holder
/// buffer: held only to be dropped with it.
struct LentFrame {
    _guards: Vec<v4l2::Plane>,
}

impl AsRef<[u8]> for LentFrame {
    fn as_ref(&self) -> &[u8] {
        &[]
    }
}

/// The user-facing sentence for each way opening can fail.
fn open_error(path: &str, err: OpenError) -> gst::ErrorMessage {
    match err {
        OpenError::NotFound => gst::error_msg!(
            gst::ResourceError::NotFound,
            (
                "Device '{}' does not exist. Check the 'device' property (v4l2-ctl --list-devices lists capture devices).",
                path
            )
        ),
        OpenError::NotADevice => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "'{}' is not a device file, so it cannot be a V4L2 capture device. Point 'device' at a /dev/videoN node.",
                path
            )
        ),
        OpenError::NotV4l2 => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "'{}' is a device but not a V4L2 device (it does not answer VIDIOC_QUERYCAP). Point 'device' at a /dev/videoN node.",
                path
            )
        ),
        OpenError::NotCapture { card, device_caps } => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "Device '{}' ({}) cannot capture video with streaming I/O (device caps {:#010x}); it may be an output or metadata node. Pick another /dev/videoN.",
                path,
                card,
                device_caps
            )
        ),
        OpenError::Io(e) if e.errno == nix::errno::Errno::EACCES => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "No permission to open '{}': {}. Add your user to the 'video' group.",
                path,
                e
            )
        ),
        OpenError::Io(e) if e.is_busy() => gst::error_msg!(
            gst::ResourceError::Busy,
            ("Device '{}' is busy: {}", path, e)
        ),
        OpenError::Io(e) => gst::error_msg!(
            gst::ResourceError::OpenRead,
            ("Could not open device '{}': {}", path, e)
        ),
    }
}

/// The user-facing sentence for a failed ioctl while configuring or streaming.
fn device_error(what: &str, e: &v4l2::Error) -> gst::ErrorMessage {
    let path = e.device.display();
    if e.is_busy() {
        gst::error_msg!(
            gst::ResourceError::Busy,
            (
                "Device '{}' is busy ({} failed: another application is probably capturing from it). Close it and try again.",
                path,
                e.call
            )
        )
    } else if e.is_disconnect() {
        gst::error_msg!(
            gst::ResourceError::Read,
            ("Device '{}' was disconnected while {}: {}", path, what, e)
        )
    } else {
        gst::error_msg!(
            gst::ResourceError::Settings,
            ("Failed {} on '{}': {}", what, path, e)
        )
    }
}

impl RustV4l2Src {
    /// Opens the device and probes what it can capture, unless already open.
    fn open(&self) -> Result<(), gst::ErrorMessage> {
        let mut state = lock(&self.state);
        if matches!(*state, State::Open { .. }) {
            return Ok(());
        }
        let settings = lock(&self.settings).clone();
        let path = settings.device.clone();
        let device = Device::open(&PathBuf::from(&path)).map_err(|e| open_error(&path, e))?;
        let warnings = apply_controls(&device, &settings, None, true).warnings;
        let probed = device
            .list_formats(|fourcc| caps::entry(fourcc).is_some())
            .map_err(|e| device_error("listing formats", &e))?;
        gst::info!(
            CAT,
            imp = self,
            "Opened {} ('{}', driver {}): {} formats",
            path,
            device.capability().card,
            device.capability().driver,
            probed.len()
        );
        if !probed.iter().any(|f| caps::entry(f.fourcc).is_some()) {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Device '{}' offers no format this element can capture (it lists: {}).",
                    path,
                    probed
                        .iter()
                        .map(|f| f.fourcc.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ));
        }
        let par = match device.cropcap() {
            Ok(aspect) => caps::pixel_aspect_ratio(aspect),
            Err(e) => {
                gst::debug!(CAT, imp = self, "No pixel aspect ratio: {}", e);
                gst::Fraction::new(1, 1)
            }
        };
        *state = State::Open {
            device: Arc::new(device),
            probed,
            probed_intervals: HashSet::new(),
            caps: None,
            par,
            stream: None,
            channels: OnceCell::new(),
        };
        drop(state);
        self.post_warnings(warnings);
        Ok(())
    }

    fn post_warnings(&self, warnings: Vec<String>) {
        for warning in warnings {
            gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{}", warning));
        }
    }

    /// Applies a control property that just changed, if the device is open, and tells
    /// GstColorBalance listeners about each colour control it set.
    fn control_changed(&self, name: &str) {
        let settings = lock(&self.settings).clone();
        let (warnings, changed) = match &*lock(&self.state) {
            State::Open {
                device, channels, ..
            } => {
                let applied =
                    apply_controls(device, &settings, Some(name), name == "extra-controls");
                let changed: Vec<_> = applied
                    .colors
                    .iter()
                    .filter_map(|&(i, value)| {
                        let channels = self.channels_of(device, channels);
                        Some((channels.channel(i)?.clone(), value))
                    })
                    .collect();
                (applied.warnings, changed)
            }
            State::Closed => return,
        };
        self.post_warnings(warnings);
        // Outside the locks: a handler may well read the value back.
        let obj = self.obj();
        for (channel, value) in changed {
            obj.value_changed(&channel, value);
        }
    }

    /// GstColorBalance's `list_channels`: the open device's channels, or NULL (the empty list)
    /// while closed. See `Channels` for how long the list stays valid.
    pub(super) fn color_channel_list(&self) -> *const glib::ffi::GList {
        match &*lock(&self.state) {
            State::Open {
                device, channels, ..
            } => self.channels_of(device, channels).as_ptr(),
            State::Closed => std::ptr::null(),
        }
    }

    /// Which colour control `channel` stands for, if it is one of the open device's channels.
    fn channel_control(&self, channel: &gst_video::ColorBalanceChannel) -> Option<usize> {
        match &*lock(&self.state) {
            State::Open {
                device, channels, ..
            } => self.channels_of(device, channels).key_of(channel),
            State::Closed => None,
        }
    }

    /// The open device's colour balance channels, found on first use.
    fn channels_of<'a>(&self, device: &Device, channels: &'a OnceCell<Channels>) -> &'a Channels {
        channels.get_or_init(|| {
            let specs = color_channels(device).unwrap_or_else(|e| {
                gst::warning!(CAT, imp = self, "No colour balance channels: {}", e);
                Vec::new()
            });
            gst::debug!(
                CAT,
                imp = self,
                "Colour balance channels: {:?}",
                specs.iter().map(|c| &c.label).collect::<Vec<_>>()
            );
            Channels::new(specs)
        })
    }

    /// GstColorBalance's `set_value`: the same as setting the property, so the value is kept
    /// for the next open too, the property reads it, and `value-changed` follows once the
    /// driver has it. A channel from an earlier open, or from nowhere, changes nothing.
    pub(super) fn set_channel_value(
        &self,
        channel: Option<&gst_video::ColorBalanceChannel>,
        value: i32,
    ) {
        let Some((channel, i)) = channel.and_then(|c| Some((c, self.channel_control(c)?))) else {
            gst::warning!(
                CAT,
                imp = self,
                "Colour balance channel {:?} is not a channel of the open device (it is closed, \
                 or was reopened since the channel was listed); {} not set",
                channel.map(|c| c.label()),
                value
            );
            return;
        };
        let (name, _) = COLOR_CONTROLS[i];
        // Within the range the channel advertises, which is the driver's, so the driver never
        // sees a value it would refuse.
        let clamped = value.clamp(channel.min_value(), channel.max_value());
        if clamped != value {
            gst::warning!(
                CAT,
                imp = self,
                "{} {} is outside the device's range {}..{}; setting {}",
                name,
                value,
                channel.min_value(),
                channel.max_value(),
                clamped
            );
        }
        self.obj().set_property(name, clamped);
    }

    /// GstColorBalance's `get_value`: what the property reads (the driver's value).
    pub(super) fn channel_value(&self, channel: Option<&gst_video::ColorBalanceChannel>) -> i32 {
        match channel.and_then(|c| self.channel_control(c)) {
            Some(i) => self.obj().property(COLOR_CONTROLS[i].0),
            None => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Colour balance channel {:?} is not a channel of the open device; reads 0",
                    channel.map(|c| c.label())
                );
                0
            }
        }
    }

    /// Everything the open device offers, probing whatever intervals are not known yet.
    fn device_caps(&self, state: &mut State) -> Option<gst::Caps> {
        let State::Open {
            device,
            probed,
            probed_intervals,
            caps,
            par,
            ..
        } = state
        else {
            return None;
        };
        if caps.is_none() {
            for (f, size) in candidates(probed) {
                if let Err(e) = probe_intervals(device, probed, probed_intervals, f, size) {
                    gst::warning!(CAT, imp = self, "Probing frame intervals: {}", e);
                }
            }
            let all = caps::probed_to_caps_with_par(probed, *par);
            gst::debug!(CAT, imp = self, "Device caps: {}", all);
            *caps = Some(all);
        }
        caps.clone()
    }

    /// The first listed format and size downstream accepts, with its real frame rates, probing
    /// intervals only for the sizes it has to look at.
    fn first_acceptable(&self, peer: &gst::Caps) -> Option<gst::Caps> {
        let mut state = lock(&self.state);
        let State::Open {
            device,
            probed,
            probed_intervals,
            par,
            ..
        } = &mut *state
        else {
            return None;
        };
        let par = *par;
        for (f, size) in candidates(probed) {
            if probed_intervals.contains(&(f, size))
                || size_caps(&probed[f], size, par).can_intersect(peer)
            {
                if let Err(e) = probe_intervals(device, probed, probed_intervals, f, size) {
                    gst::warning!(CAT, imp = self, "Probing frame intervals: {}", e);
                    continue;
                }
                let common = size_caps(&probed[f], size, par)
                    .intersect_with_mode(peer, gst::CapsIntersectMode::First);
                if !common.is_empty() {
                    return Some(common);
                }
            }
        }
        None
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        if let State::Open {
            stream: Some(stream),
            ..
        } = &mut *state
        {
            self.stop_stream(stream);
        }
        *state = State::Closed;
        gst::info!(CAT, imp = self, "Closed device");
    }

    /// Ends a stream's capture. Frames still held downstream stay valid and are not re-queued.
    fn stop_stream(&self, stream: &mut Stream) {
        if let Some(queue) = stream.queue.take() {
            if let Err(e) = queue.stop() {
                gst::warning!(CAT, imp = self, "Stopping the stream: {}", e);
            }
            let stats = lock(&self.stats).clone();
            gst::debug!(CAT, imp = self, "Stream stopped: {:?}", stats);
        }
        stream.streaming = false;
        if let Some(pool) = stream.copy_pool.take() {
            let _ = pool.set_active(false);
        }
    }

    fn buffer_count(&self, device: &Device, downstream_min: u32) -> u32 {
        let wanted = lock(&self.settings).buffer_count;
        if wanted > 0 {
            return wanted;
        }
        let driver_min = device.min_buffers_for_capture().unwrap_or(1);
        (driver_min + downstream_min + 1).clamp(AUTO_MIN_BUFFERS, MAX_BUFFER_COUNT)
    }

    /// `REQBUFS` + `QUERYBUF` + `mmap` for the negotiated format.
    fn allocate(&self, downstream_min: u32, video_meta: bool) -> Result<(), gst::ErrorMessage> {
        let mut state = lock(&self.state);
        let State::Open {
            device,
            stream: Some(stream),
            ..
        } = &mut *state
        else {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Allocation was asked for before caps were negotiated")
            ));
        };
        let count = self.buffer_count(device, downstream_min);
        let dmabuf = lock(&self.settings).io_mode == IoMode::Dmabuf;
        if let Some(queue) = &stream.queue
            && stream.video_meta == video_meta
            && queue.is_exported() == dmabuf
            && (queue.len() as u32 >= count || stream.streaming)
        {
            // A reconfigure that changed nothing: keep capturing into the same buffers rather
            // than stopping the driver and dropping frames.
            gst::debug!(
                CAT,
                imp = self,
                "Keeping the {} buffers already mapped",
                queue.len()
            );
            return Ok(());
        }
        self.stop_stream(stream);
        let queue = Queue::allocate(Arc::clone(device), count, dmabuf).map_err(|e| {
            if e.call == "VIDIOC_EXPBUF" {
                gst::error_msg!(
                    gst::ResourceError::Settings,
                    (
                        "Device '{}' cannot export its buffers as DMABUF for io-mode=dmabuf: {}. Use io-mode=mmap.",
                        e.device.display(),
                        e
                    )
                )
            } else {
                device_error("allocating capture buffers", &e)
            }
        })?;
        gst::debug!(
            CAT,
            imp = self,
            "Asked for {} buffers, driver granted {} (downstream holds up to {}){}",
            count,
            queue.len(),
            downstream_min,
            if dmabuf { ", exported as DMABUF" } else { "" }
        );
        stream.queue = Some(queue);
        stream.video_meta = video_meta;
        stream.readable_as_is = stream.framing.readable_as_is(&stream.info, video_meta);
        stream.dmabuf_allocator = dmabuf.then(gst_allocators::DmaBufAllocator::new);
        Ok(())
    }

    /// The frame's PTS (running time of its capture) and its age now, from one clock reading
    /// where the pipeline clock is itself CLOCK_MONOTONIC (the usual system clock), two
    /// otherwise: clock reads are system calls on some machines.
    fn frame_timestamp(
        &self,
        frame: &v4l2::Dequeued,
        stream: &mut Stream,
    ) -> (Option<gst::ClockTime>, Option<gst::ClockTime>) {
        let duration = stream.frame_duration;
        let obj = self.obj();
        let (Some(clock), Some(base_time)) = (obj.clock(), obj.base_time()) else {
            return (None, None);
        };
        let now = clock.time();
        let ns = |d: Duration| gst::ClockTime::from_nseconds(d.as_nanos() as u64);
        // The driver's timestamp is CLOCK_MONOTONIC; how long ago it was is the same on any
        // clock, so subtract that age from the pipeline clock's now.
        let age = if frame.has_monotonic_timestamp() {
            // Asked once per clock: a property read by name takes GLib's global pspec lock.
            let monotonic_clock = match &stream.clock_kind {
                Some((known, monotonic)) if *known == clock => *monotonic,
                _ => {
                    let monotonic = clock.downcast_ref::<gst::SystemClock>().is_some_and(|c| {
                        c.property::<gst::ClockType>("clock-type") == gst::ClockType::Monotonic
                    });
                    stream.clock_kind = Some((clock.clone(), monotonic));
                    monotonic
                }
            };
            let mono_now = if monotonic_clock {
                now
            } else {
                ns(v4l2::device::monotonic_now())
            };
            // A timestamp from the future, or older than any frame can wait in the queue,
            // is a driver bug or a wrap (vivid's "Wrap Timestamp"): don't trust it.
            // vivid stamps the ideal frame time, which can lie a little ahead of the clock
            // when its thread runs early: a frame from just now.
            let stamp = ns(frame.timestamp);
            if stamp <= mono_now && mono_now - stamp < MAX_PLAUSIBLE_AGE {
                mono_now - stamp
            } else if stamp > mono_now && stamp - mono_now < MAX_PLAUSIBLE_AGE {
                gst::ClockTime::ZERO
            } else {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Ignoring implausible driver timestamp {}",
                    stamp
                );
                duration.unwrap_or_default()
            }
        } else {
            // No usable driver timestamp: the frame ended about now, so it began a frame ago.
            duration.unwrap_or_default()
        };
        let pts = now.saturating_sub(age).saturating_sub(base_time);
        (Some(pts), Some(age))
    }

    /// Notes a frame's sequence number; returns how many frames the driver skipped before it.
    fn note_sequence(&self, stream: &mut Stream, sequence: u32) -> u32 {
        let gap = stream
            .last_sequence
            .map_or(0, |last| sequence_gap(last, sequence));
        if stream
            .last_sequence
            .is_some_and(|last| sequence < last && gap < u32::MAX / 2)
        {
            stream.sequence_epoch += 1 << 32;
        }
        stream.last_sequence = Some(sequence);
        if gap > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "Lost {} frames (driver sequence jumped to {})",
                gap,
                sequence
            );
        }
        gap
    }

    /// A QoS message naming how many frames were lost so far, for the application.
    fn lost_message(
        &self,
        pts: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
        captured: u64,
        lost: u64,
    ) -> gst::Message {
        gst::message::Qos::builder(true)
            .running_time(pts)
            .timestamp(pts)
            .duration(duration)
            .stats(
                gst::format::Buffers::from_u64(captured),
                gst::format::Buffers::from_u64(lost),
            )
            .src(&*self.obj())
            .build()
    }

    /// Poll reported an error on the device: find out which, from the errno of a dequeue.
    fn stream_failure(&self, queue: &Arc<Queue>) -> gst::ErrorMessage {
        let path = queue.device().path().display().to_string();
        match queue.dequeue() {
            Err(e) if e.is_disconnect() => gst::error_msg!(
                gst::ResourceError::NotFound,
                (
                    "Device '{}' was disconnected ({}). Reconnect it and restart the pipeline.",
                    path,
                    e
                )
            ),
            Err(e) => gst::error_msg!(
                gst::ResourceError::Read,
                ("Capture from '{}' failed: {}", path, e)
            ),
            Ok(_) => gst::error_msg!(
                gst::ResourceError::Read,
                (
                    "Device '{}' reported an error on its stream (the driver stopped streaming).",
                    path
                )
            ),
        }
    }

    /// Waits for the next frame and wraps it, without copying, as a GstBuffer.
    fn capture(&self) -> Result<gst::Buffer, gst::FlowError> {
        let poller = lock(&self.poller).clone().ok_or(gst::FlowError::Flushing)?;
        let (queue, device) = {
            let mut state = lock(&self.state);
            let State::Open {
                device,
                stream: Some(stream),
                ..
            } = &mut *state
            else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("No format negotiated")
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            let Some(queue) = stream.queue.clone() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("No buffers allocated")
                );
                return Err(gst::FlowError::Error);
            };
            if !stream.streaming {
                if let Err(e) = queue.start() {
                    self.post_error_message(device_error("starting capture", &e));
                    return Err(gst::FlowError::Error);
                }
                stream.streaming = true;
                gst::debug!(CAT, imp = self, "Streaming with {} buffers", queue.len());
            }
            (queue, Arc::clone(device))
        };

        let (timeout_ms, timeout_action, copy_threshold, low_latency) = {
            let settings = lock(&self.settings);
            (
                settings.timeout_ms,
                settings.timeout_action,
                settings.copy_threshold,
                settings.low_latency,
            )
        };
        let mut corrupted = Vec::new();
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
        let frame = loop {
            match poller.wait(&*device, device.path(), timeout) {
                Ok(Wait::Ready) => {}
                Ok(Wait::Flushing) => return Err(gst::FlowError::Flushing),
                Ok(Wait::TimedOut) if timeout_action == TimeoutAction::Eos => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "No frame for {} ms: ending the stream",
                        timeout_ms
                    );
                    return Err(gst::FlowError::Eos);
                }
                Ok(Wait::TimedOut) => {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Read,
                        (
                            "Device '{}' delivered no frame for {} ms (the 'timeout' property). Is the source connected and producing video?",
                            device.path().display(),
                            timeout_ms
                        )
                    );
                    return Err(gst::FlowError::Error);
                }
                Ok(Wait::DeviceError) => {
                    self.post_error_message(self.stream_failure(&queue));
                    return Err(gst::FlowError::Error);
                }
                Err(e) => {
                    self.post_error_message(device_error("waiting for a frame", &e));
                    return Err(gst::FlowError::Error);
                }
            }
            match queue.dequeue() {
                Ok(Some(frame)) if frame.is_error() => {
                    // The driver says the data is corrupt: give the buffer straight back
                    // rather than show a broken picture.
                    gst::debug!(
                        CAT,
                        imp = self,
                        "Dropping frame {} flagged as error",
                        frame.sequence
                    );
                    corrupted.push(frame.sequence);
                    let _ = queue.requeue(frame);
                }
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    self.post_error_message(device_error("dequeuing a frame", &e));
                    return Err(gst::FlowError::Error);
                }
            }
        };

        // low-latency: newer frames may be ready already; push the newest, give the rest back.
        let mut frame = frame;
        let mut skipped = Vec::new();
        if low_latency {
            while let Ok(Some(newer)) = queue.dequeue() {
                let older = if newer.is_error() {
                    corrupted.push(newer.sequence);
                    newer
                } else {
                    skipped.push(frame.sequence);
                    std::mem::replace(&mut frame, newer)
                };
                let _ = queue.requeue(older);
            }
        }

        let mut state = lock(&self.state);
        let State::Open {
            stream: Some(stream),
            ..
        } = &mut *state
        else {
            let _ = queue.requeue(frame);
            return Err(gst::FlowError::Flushing);
        };
        let duration = stream.frame_duration;
        let (pts, age) = self.frame_timestamp(&frame, stream);
        // Frames that waited in the driver since before PLAYING all map to running time 0
        // (v4l2loopback hands over its writer's latest frames at once): keep the PTS of one
        // stream strictly increasing, as downstream expects.
        let pts = pts.map(|pts| match stream.last_pts {
            Some(last) if pts <= last => last + gst::ClockTime::from_nseconds(1),
            _ => pts,
        });
        if pts.is_some() {
            stream.last_pts = pts;
        }
        let mut lost = 0u64;
        if corrupted.is_empty() && skipped.is_empty() {
            lost = self.note_sequence(stream, frame.sequence).into();
        } else {
            let mut seen: Vec<u32> = corrupted.iter().chain(&skipped).copied().collect();
            seen.push(frame.sequence);
            seen.sort_unstable_by_key(|&seq| {
                seq.wrapping_sub(frame.sequence.wrapping_sub(u32::MAX / 4))
            });
            for seq in seen {
                lost += self.note_sequence(stream, seq) as u64;
            }
        }

        let unreadable_stride = !stream.readable_as_is;
        // Lending this frame would leave the driver too few buffers to fill: downstream holds
        // the rest. Copy it and give the driver its buffer back at once instead of stalling.
        let starved = (queue.queued() as u32) < copy_threshold;
        let keyframe = match stream.framing {
            caps::Framing::Compressed {
                syntax: Some(syntax),
                ..
            } if !frame.has_frame_type() => syntax
                .is_keyframe(queue.frame_plane(&frame, 0))
                .unwrap_or(false),
            _ => frame.is_keyframe(),
        };
        // The token goes to `lend`; its metadata stays readable after.
        let (frame, token) = (*frame, frame);
        let mut buffer = gst::Buffer::new();
        {
            let buffer = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            // Each memory is the driver's `bytesused` of its plane: for compressed formats,
            // the size of this one image or access unit, not the buffer's capacity. A frame
            // about to be copied is read through the mapping, in either io-mode.
            let planes = queue.lend(token);
            match &stream.dmabuf_allocator {
                Some(allocator) if !(unreadable_stride || starved) => {
                    lend_as_dmabuf(buffer, allocator, planes).map_err(|e| {
                        gst::element_imp_error!(
                            self,
                            gst::ResourceError::Read,
                            (
                                "Could not hand a frame of '{}' downstream as DMABUF: {}. Use io-mode=mmap.",
                                device.path().display(),
                                e
                            )
                        );
                        gst::FlowError::Error
                    })?;
                }
                _ => {
                    for plane in planes {
                        buffer.append_memory(gst::Memory::from_mut_slice(plane));
                    }
                }
            }
            match stream.framing {
                caps::Framing::Video(l) => {
                    if stream.needs_video_meta {
                        let offsets = meta_offsets(&l, buffer);
                        gst_video::VideoMeta::add_full(
                            buffer,
                            gst_video::VideoFrameFlags::empty(),
                            stream.info.format(),
                            stream.info.width(),
                            stream.info.field_height(),
                            &offsets[..l.n_planes],
                            &l.strides[..l.n_planes],
                        )
                        .map_err(|_| gst::FlowError::Error)?;
                    }
                    buffer.set_flags(field_flags(frame.field, stream.info.field_order()));
                }
                caps::Framing::Bayer {
                    height,
                    packed_stride,
                    stride,
                } => {
                    // A driver may report more bytes than the rows hold; downstream reads
                    // exactly the rows.
                    let rows = stride.max(packed_stride) * height;
                    if buffer.size() > rows {
                        buffer.set_size(rows);
                    }
                }
                caps::Framing::Compressed { .. } => {
                    if stream.framing.is_delta_unit(keyframe) {
                        buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                }
            }
            buffer.set_pts(pts);
            buffer.set_duration(duration);
            let offset = stream.sequence_epoch + frame.sequence as u64;
            buffer.set_offset(offset);
            buffer.set_offset_end(offset + 1);
        }
        if unreadable_stride || starved {
            gst::debug!(
                gst::CAT_PERFORMANCE,
                imp = self,
                "Copying frame {}: {}",
                frame.sequence,
                if starved {
                    "downstream holds too many driver buffers"
                } else {
                    "device stride differs from what downstream reads (no GstVideoMeta)"
                }
            );
            buffer = self.copy_out(buffer, stream)?;
        }
        let lost_msg = {
            let mut stats = lock(&self.stats);
            stats.captured += 1;
            stats.lost += lost;
            stats.dropped += skipped.len() as u64;
            stats.corrupted += corrupted.len() as u64;
            stats.copied += u64::from(unreadable_stride || starved);
            stats.last_delay = age;
            (lost > 0).then(|| self.lost_message(pts, duration, stats.captured, stats.lost))
        };
        drop(state);
        if let Some(msg) = lost_msg {
            let _ = self.obj().post_message(msg);
        }
        gst::trace!(
            CAT,
            imp = self,
            "Frame {} pts {}",
            frame.sequence,
            pts.display()
        );
        Ok(buffer)
    }

    /// Copies a lent frame into a system-memory buffer of GStreamer's default layout; the
    /// driver buffer goes back to the driver as soon as `lent` is dropped here.
    fn copy_out(
        &self,
        lent: gst::Buffer,
        stream: &mut Stream,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let info = &stream.info;
        let Some(frame_size) = stream.framing.frame_size(info) else {
            // Compressed: the bytes as they are, flags and timestamps with them.
            return lent.copy_deep().map_err(|_| gst::FlowError::Error);
        };
        let pool = match &stream.copy_pool {
            Some(pool) => pool.clone(),
            None => {
                let pool = gst::BufferPool::new();
                let mut config = pool.config();
                config.set_params(Some(&stream.caps), frame_size as u32, 0, 0);
                pool.set_config(config).map_err(|_| gst::FlowError::Error)?;
                pool.set_active(true).map_err(|_| gst::FlowError::Error)?;
                stream.copy_pool = Some(pool.clone());
                pool
            }
        };
        let out = pool.acquire_buffer(None)?;
        let mut out = if let caps::Framing::Bayer {
            height,
            stride,
            packed_stride,
        } = stream.framing
        {
            // Row by row, into rows as long as bayer2rgb expects.
            let mut out = out;
            {
                let src = lent.map_readable().map_err(|_| gst::FlowError::Error)?;
                let out = out.get_mut().ok_or(gst::FlowError::Error)?;
                let mut dst = out.map_writable().map_err(|_| gst::FlowError::Error)?;
                let row = stride.min(packed_stride);
                for (y, dst_row) in dst.chunks_exact_mut(packed_stride).take(height).enumerate() {
                    let from = &src[(y * stride).min(src.len())..];
                    let n = row.min(from.len());
                    dst_row[..n].copy_from_slice(&from[..n]);
                }
            }
            out
        } else {
            let src = gst_video::VideoFrame::from_buffer_readable(lent.clone(), info)
                .map_err(|_| gst::FlowError::Error)?;
            let mut dst = gst_video::VideoFrame::from_buffer_writable(out, info)
                .map_err(|_| gst::FlowError::Error)?;
            src.copy(&mut dst).map_err(|_| gst::FlowError::Error)?;
            dst.into_buffer()
        };
        {
            let out = out.get_mut().ok_or(gst::FlowError::Error)?;
            // Timestamps, offsets and every flag, the video ones (fields) included, which
            // `BufferRef::flags()` would drop.
            lent.copy_into(
                out,
                gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
                ..,
            )
            .map_err(|_| gst::FlowError::Error)?;
        }
        Ok(out)
    }
}

impl RustV4l2Src {
    /// Configures the device for fixed caps, unless it already is, and returns the caps of the
    /// stream: `new_caps` completed with what the driver settled on (see `caps::settle`).
    fn apply_caps(&self, new_caps: &gst::Caps) -> Result<gst::Caps, gst::LoggableError> {
        let mut state = lock(&self.state);
        let State::Open {
            device,
            probed,
            stream,
            ..
        } = &mut *state
        else {
            return Err(gst::loggable_error!(
                CAT,
                "Caps set while the device is closed"
            ));
        };
        if let Some(s) = stream
            && (s.caps == *new_caps || s.asked == *new_caps)
        {
            return Ok(s.caps.clone());
        }
        if let Some(s) = stream.as_mut() {
            gst::debug!(
                CAT,
                imp = self,
                "Renegotiating from {} to {}",
                s.caps,
                new_caps
            );
            self.stop_stream(s);
        }
        *stream = None;
        let configured = self.configure(device, probed, new_caps);
        let result = match configured {
            Ok(s) => {
                let caps = s.caps.clone();
                *stream = Some(s);
                Ok(caps)
            }
            Err(msg) => Err(msg),
        };
        // Post outside the state lock: a bus sync handler may call back into the element.
        drop(state);
        result.map_err(|msg| {
            self.post_error_message(msg);
            gst::loggable_error!(CAT, "Could not configure the device for {}", new_caps)
        })
    }

    /// `VIDIOC_S_FMT` (and `S_PARM` for the rate) for negotiated caps.
    fn configure(
        &self,
        device: &Device,
        probed: &[v4l2::ProbedFormat],
        new_caps: &gst::Caps,
    ) -> Result<Stream, gst::ErrorMessage> {
        let path = device.path().display().to_string();
        let request = caps::caps_to_request(new_caps, probed).map_err(|reason| {
            gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Device '{}' cannot capture {}: {}", path, new_caps, reason)
            )
        })?;
        let asked = request.format_request();
        let fmt = device
            .s_fmt(&asked)
            .map_err(|e| device_error("setting the format", &e))?;
        // A driver that chose one field per buffer by itself counts a field's rows.
        let rows = if fmt.field == v4l2::V4L2_FIELD_ALTERNATE && asked.field != fmt.field {
            fmt.height * 2
        } else {
            fmt.height
        };
        if fmt.fourcc != request.fourcc || fmt.width != request.width || rows != asked.height {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                (
                    "Device '{}' was asked for {} {}x{} but chose {} {}x{}.",
                    path,
                    request.fourcc,
                    request.width,
                    request.height,
                    fmt.fourcc,
                    fmt.width,
                    fmt.height
                )
            ));
        }
        if let Some(interval) = request.interval {
            match device.s_parm(interval) {
                Ok(got) => gst::debug!(
                    CAT,
                    imp = self,
                    "Frame interval {}/{} (asked {}/{})",
                    got.numerator,
                    got.denominator,
                    interval.numerator,
                    interval.denominator
                ),
                // Many drivers fix the rate themselves; the caps still tell the truth about it.
                Err(e) => gst::debug!(CAT, imp = self, "Could not set the frame rate: {}", e),
            }
        }
        // Only plain INTERLACED leaves the field order to the TV standard.
        let std = if fmt.field == v4l2::V4L2_FIELD_INTERLACED {
            device.g_std().unwrap_or_else(|e| {
                gst::debug!(CAT, imp = self, "No TV standard: {}", e);
                None
            })
        } else {
            None
        };
        let (settled, info) = caps::settle(new_caps, &request, &fmt, std).map_err(|reason| {
            gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Device '{}' cannot capture {}: {}", path, new_caps, reason)
            )
        })?;
        let framing = caps::Framing::new(&fmt, request.entry, &info).map_err(|reason| {
            gst::error_msg!(
                gst::CoreError::Negotiation,
                (
                    "Device '{}' reported a layout for {} that cannot be described: {}",
                    path,
                    new_caps,
                    reason
                )
            )
        })?;
        let fps = info.fps();
        // With one field per buffer, buffers come twice as often as frames.
        let per_frame = if info.interlace_mode() == gst_video::VideoInterlaceMode::Alternate {
            2
        } else {
            1
        };
        let frame_duration = (fps.numer() > 0).then(|| {
            gst::ClockTime::SECOND
                .mul_div_floor(fps.denom() as u64, fps.numer() as u64 * per_frame)
                .unwrap_or(gst::ClockTime::ZERO)
        });
        gst::debug!(CAT, imp = self, "Format set: {:?}; caps {}", fmt, settled);
        let readable_as_is = framing.readable_as_is(&info, false);
        let needs_video_meta = matches!(
            framing,
            caps::Framing::Video(l) if l.n_memories > 1 || !l.matches_default(&info)
        );
        Ok(Stream {
            caps: settled,
            asked: new_caps.clone(),
            info,
            framing,
            frame_duration,
            queue: None,
            streaming: false,
            video_meta: false,
            readable_as_is,
            needs_video_meta,
            last_sequence: None,
            last_pts: None,
            sequence_epoch: 0,
            copy_pool: None,
            dmabuf_allocator: None,
            clock_kind: None,
        })
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RustV4l2Src {
    const NAME: &'static str = "GstRustV4l2Src";
    type Type = super::RustV4l2Src;
    type ParentType = gst_base::PushSrc;
    type Interfaces = (gst::URIHandler, gst_video::ColorBalance);
}

impl ObjectImpl for RustV4l2Src {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Path of the V4L2 capture node to open, e.g. /dev/video0")
                    .default_value(Some(DEFAULT_DEVICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device-name")
                    .nick("Device name")
                    .blurb("Name of the device (the driver's card name), once it is open")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("buffer-count")
                    .nick("Buffer count")
                    .blurb(
                        "Number of V4L2 buffers to request from the driver (0 = automatic: the \
                         driver's minimum plus what downstream holds, at least 4). The driver \
                         may grant fewer or more.",
                    )
                    .minimum(0)
                    .maximum(MAX_BUFFER_COUNT)
                    .default_value(DEFAULT_BUFFER_COUNT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("io-mode", DEFAULT_IO_MODE)
                    .nick("I/O mode")
                    .blurb(
                        "How frames reach downstream, both without copying: 'mmap' lends the \
                         driver's memory-mapped buffers as system memory; 'dmabuf' exports them \
                         (VIDIOC_EXPBUF) and lends them as dmabuf memory, re-queued when freed. \
                         The caps are the same in both: downstream maps dmabuf memory as any other.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("low-latency")
                    .nick("Low latency")
                    .blurb(
                        "Push the newest frame when several are ready, giving the older ones \
                         back to the driver at once (counted as dropped in 'stats'): latency \
                         stays at one frame when downstream is briefly slow",
                    )
                    .default_value(DEFAULT_LOW_LATENCY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Capture statistics since start: frames-captured, frames-lost (gaps in \
                         the driver's sequence), frames-dropped (by low-latency), \
                         frames-corrupted (flagged by the driver, not pushed), frames-copied \
                         (copy-threshold or unreadable stride), last-delay (ns from capture to \
                         push of the last frame)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecInt::builder("brightness")
                    .nick("Brightness")
                    .blurb("Picture brightness (V4L2 control); the device's range applies, a device without it warns")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("contrast")
                    .nick("Contrast")
                    .blurb("Picture contrast (V4L2 control); the device's range applies, a device without it warns")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("saturation")
                    .nick("Saturation")
                    .blurb("Picture colour saturation (V4L2 control); the device's range applies, a device without it warns")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("hue")
                    .nick("Hue")
                    .blurb("Picture hue (V4L2 control); the device's range applies, a device without it warns")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("extra-controls")
                    .nick("Extra controls")
                    .blurb(
                        "Any V4L2 controls by normalised name, e.g. \
                         \"c,exposure_time_absolute=100,white_balance_automatic=false\"; \
                         checked against the device's ranges, with a warning for unknown names \
                         or out-of-range values",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("copy-threshold")
                    .nick("Copy threshold")
                    .blurb(
                        "Copy a frame into system memory instead of lending the driver's buffer \
                         when fewer than this many buffers would stay queued to the driver \
                         (downstream holds the rest). 0 = never copy: capture then waits until \
                         downstream releases a buffer.",
                    )
                    .maximum(MAX_BUFFER_COUNT)
                    .default_value(DEFAULT_COPY_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb(
                        "Milliseconds to wait for a frame before 'timeout-action' is taken \
                         (0 = wait forever)",
                    )
                    .default_value(DEFAULT_TIMEOUT_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("timeout-action", DEFAULT_TIMEOUT_ACTION)
                    .nick("Timeout action")
                    .blurb("What to do when no frame arrives within 'timeout': post an error, or end the stream")
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        if let Some(i) = COLOR_CONTROLS.iter().position(|(n, _)| *n == name) {
            let v: i32 = value.get().expect("type checked upstream");
            lock(&self.settings).color[i] = Some(v);
            gst::info!(CAT, imp = self, "{} set to {}", name, v);
            self.control_changed(name);
            return;
        }
        if name == "extra-controls" {
            let v: Option<gst::Structure> = value.get().expect("type checked upstream");
            gst::info!(CAT, imp = self, "extra-controls set to {:?}", v);
            lock(&self.settings).extra_controls = v;
            self.control_changed(name);
            return;
        }
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "device" => {
                let device: Option<String> = value.get().expect("type checked upstream");
                settings.device = device.unwrap_or_else(|| DEFAULT_DEVICE.into());
                gst::info!(CAT, imp = self, "device set to {}", settings.device);
            }
            "low-latency" => {
                settings.low_latency = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "low-latency set to {}",
                    settings.low_latency
                );
            }
            "copy-threshold" => {
                settings.copy_threshold = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "copy-threshold set to {}",
                    settings.copy_threshold
                );
            }
            "timeout" => {
                settings.timeout_ms = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "timeout set to {} ms", settings.timeout_ms);
            }
            "timeout-action" => {
                settings.timeout_action = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "timeout-action set to {:?}",
                    settings.timeout_action
                );
            }
            "io-mode" => {
                let io_mode: IoMode = value.get().expect("type checked upstream");
                // The buffers are exported, or not, when they are allocated; a change while
                // they exist would take effect at some later renegotiation, or never.
                if self.obj().current_state() > gst::State::Ready {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "io-mode can only change in NULL or READY; staying at {:?}",
                        settings.io_mode
                    );
                    return;
                }
                settings.io_mode = io_mode;
                gst::info!(CAT, imp = self, "io-mode set to {:?}", settings.io_mode);
            }
            "buffer-count" => {
                settings.buffer_count = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "buffer-count set to {}",
                    settings.buffer_count
                );
            }
            _ => unimplemented!("property {}", pspec.name()),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if let Some(i) = COLOR_CONTROLS.iter().position(|(n, _)| *n == name) {
            // The device's value once open, else what was set (or 0).
            if let State::Open { device, .. } = &*lock(&self.state)
                && let Ok(v) = device.g_ctrl(COLOR_CONTROLS[i].1)
            {
                return v.to_value();
            }
            return lock(&self.settings).color[i].unwrap_or(0).to_value();
        }
        match pspec.name() {
            "extra-controls" => lock(&self.settings).extra_controls.to_value(),
            "device" => lock(&self.settings).device.to_value(),
            "device-name" => match &*lock(&self.state) {
                State::Open { device, .. } => Some(device.capability().card.clone()).to_value(),
                State::Closed => None::<String>.to_value(),
            },
            "buffer-count" => lock(&self.settings).buffer_count.to_value(),
            "io-mode" => lock(&self.settings).io_mode.to_value(),
            "timeout" => lock(&self.settings).timeout_ms.to_value(),
            "copy-threshold" => lock(&self.settings).copy_threshold.to_value(),
            "low-latency" => lock(&self.settings).low_latency.to_value(),
            "stats" => lock(&self.stats).to_structure().to_value(),
            "timeout-action" => lock(&self.settings).timeout_action.to_value(),
            _ => unimplemented!("property {}", pspec.name()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for RustV4l2Src {}

impl ElementImpl for RustV4l2Src {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Video4Linux2 source (Rust, zero-copy)",
                "Source/Video",
                "Captures video from a V4L2 device, handing the driver's buffers downstream without copying",
                "rustv4l2src developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps::template_caps(),
                )
                .expect("static pad template is valid"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // Open on NULL->READY, as v4l2src does, so that caps queries in READY see the device.
        if transition == gst::StateChange::NullToReady
            && let Err(msg) = self.open()
        {
            self.post_error_message(msg);
            return Err(gst::StateChangeError);
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToNull {
            self.close();
        }
        Ok(ret)
    }
}

impl BaseSrcImpl for RustV4l2Src {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        self.open()?;
        let poller = Poller::new().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Could not create a wake-up eventfd: {}", e)
            )
        })?;
        *lock(&self.poller) = Some(Arc::new(poller));
        *lock(&self.stats) = Stats::default();
        gst::info!(CAT, imp = self, "Started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let State::Open { stream, .. } = &mut *lock(&self.state)
            && let Some(mut s) = stream.take()
        {
            self.stop_stream(&mut s);
        }
        *lock(&self.poller) = None;
        gst::info!(CAT, imp = self, "Stopped");
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = match self.device_caps(&mut lock(&self.state)) {
            Some(caps) => caps,
            None => self.obj().src_pad().pad_template_caps(),
        };
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        // Not the base class's way, which starts from everything the device offers: walking
        // the listed formats and sizes in caps order and probing frame rates only for those
        // downstream accepts gives the same choice for a fraction of the ioctls.
        let pad = self.obj().src_pad().clone();
        let peer = pad.peer_query_caps(None);
        let Some(common) = self.first_acceptable(&peer) else {
            let ours = self.caps(None).unwrap_or_else(gst::Caps::new_empty);
            let path = lock(&self.settings).device.clone();
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Device '{}' cannot produce any format downstream accepts. Downstream accepts: {}. The device offers: {}",
                    path,
                    peer,
                    caps::summary(&ours)
                )
            );
            return Err(gst::loggable_error!(CAT, "No common caps with downstream"));
        };
        let fixed = BaseSrcImpl::fixate(self, common);
        if !fixed.is_fixed() {
            return Err(gst::loggable_error!(CAT, "Could not fixate {}", fixed));
        }
        // Configure the device first: its answer completes the caps downstream gets.
        let settled = self.apply_caps(&fixed)?;
        self.obj()
            .set_caps(&settled)
            .map_err(|_| gst::loggable_error!(CAT, "Downstream refused {}", settled))
    }

    fn fixate(&self, caps: gst::Caps) -> gst::Caps {
        let fixed = caps::fixate(caps);
        gst::debug!(CAT, imp = self, "Fixated to {}", fixed);
        fixed
    }

    fn set_caps(&self, new_caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        self.apply_caps(new_caps).map(|_| ())
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        // Buffers come from the device, never from a pool: read what downstream says it holds,
        // then drop its pools so the base class does not allocate one for nothing.
        let downstream_min = query
            .allocation_pools()
            .map(|(_, _, min, _)| min)
            .max()
            .unwrap_or(0);
        while query.allocation_pools().next().is_some() {
            query.remove_nth_allocation_pool(0);
        }
        let video_meta = query
            .find_allocation_meta::<gst_video::VideoMeta>()
            .is_some();
        self.allocate(downstream_min, video_meta).map_err(|msg| {
            self.post_error_message(msg);
            gst::loggable_error!(CAT, "Buffer allocation failed")
        })
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let state = lock(&self.state);
            if let State::Open {
                stream: Some(stream),
                ..
            } = &*state
                && let Some(frame) = stream.frame_duration
            {
                // A frame is complete one frame period after its capture started; the driver
                // can hold as many frames as it has buffers before we must take one.
                let buffers = stream
                    .queue
                    .as_ref()
                    .map_or(AUTO_MIN_BUFFERS as usize, |q| q.len());
                q.set(true, frame, Some(frame * buffers as u64));
                return true;
            }
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(poller) = &*lock(&self.poller) {
            poller.set_flushing(true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        // After a flush the running time may start again from 0 (a flushing seek resets it).
        if let State::Open {
            stream: Some(stream),
            ..
        } = &mut *lock(&self.state)
        {
            stream.last_pts = None;
        }
        if let Some(poller) = &*lock(&self.poller) {
            poller.set_flushing(false);
        }
        Ok(())
    }
}

impl PushSrcImpl for RustV4l2Src {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        self.capture().map(CreateSuccess::NewBuffer)
    }
}

/// `v4l2:///dev/video0`, the scheme v4l2src answers too. The element's rank keeps v4l2src the
/// default for such URIs; `GST_PLUGIN_FEATURE_RANK=rustv4l2src:MAX` makes this one win.
impl URIHandlerImpl for RustV4l2Src {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["v4l2"]
    }

    fn uri(&self) -> Option<String> {
        Some(format!("v4l2://{}", lock(&self.settings).device))
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        let path = uri
            .strip_prefix("v4l2://")
            .filter(|path| path.starts_with('/'))
            .ok_or_else(|| {
                glib::Error::new(
                    gst::URIError::BadUri,
                    &format!("'{uri}' is not a v4l2:///dev/videoN URI"),
                )
            })?;
        if !matches!(*lock(&self.state), State::Closed) {
            return Err(glib::Error::new(
                gst::URIError::BadState,
                "The device can only be changed while the element is in NULL",
            ));
        }
        self.obj().set_property("device", path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::sequence_gap;
    use gst::glib;
    use gst::prelude::*;

    #[test]
    fn v4l2_uris_set_the_device() {
        gst::init().unwrap();
        let element = glib::Object::new::<super::super::RustV4l2Src>();
        let handler = element.dynamic_cast_ref::<gst::URIHandler>().unwrap();
        handler.set_uri("v4l2:///dev/video7").unwrap();
        assert_eq!(element.property::<String>("device"), "/dev/video7");
        assert_eq!(handler.uri().as_deref(), Some("v4l2:///dev/video7"));
        assert!(handler.set_uri("v4l2://video7").is_err());
        assert!(handler.set_uri("file:///dev/video7").is_err());
    }

    #[test]
    fn color_balance_has_no_channels_while_closed_and_ignores_strays() {
        use gst_video::prelude::*;
        gst::init().unwrap();
        let element = glib::Object::new::<super::super::RustV4l2Src>();
        let balance = element
            .dynamic_cast_ref::<gst_video::ColorBalance>()
            .expect("implements GstColorBalance");
        assert_eq!(
            balance.balance_type(),
            gst_video::ColorBalanceType::Hardware
        );
        assert!(balance.list_channels().is_empty());
        // A channel that is not the element's: neither applied nor kept for the next open.
        let stray = super::super::colorbalance::new_channel("brightness", 0, 255);
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fired.clone();
        balance.connect_value_changed(move |_, _, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        balance.set_value(&stray, 10);
        assert_eq!(balance.value(&stray), 0);
        assert_eq!(element.property::<i32>("brightness"), 0);
        assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn sequence_gaps_count_across_the_wrap_and_ignore_restarts() {
        assert_eq!(sequence_gap(5, 6), 0);
        assert_eq!(sequence_gap(5, 9), 3);
        assert_eq!(sequence_gap(u32::MAX, 0), 0);
        assert_eq!(sequence_gap(u32::MAX - 1, 1), 2);
        assert_eq!(sequence_gap(100, 3), 0);
        assert_eq!(sequence_gap(7, 7), 0);
    }
}
