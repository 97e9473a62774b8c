//! What a receiver sees on its input: the digital-video timings of an HDMI/SDI source
//! (`VIDIOC_QUERY_DV_TIMINGS`, `G_`/`S_DV_TIMINGS`), and the events a driver raises when the
//! source changes (`VIDIOC_SUBSCRIBE_EVENT`, `VIDIOC_DQEVENT` on `V4L2_EVENT_SOURCE_CHANGE`),
//! which `poll()` reports as `POLLPRI` beside the frames. One safe function per ioctl, as in
//! `device.rs`; their structs are here because nothing else uses them. Knows nothing of GStreamer.

use super::device::{Device, retry};
use super::error::Result;
use super::format::Fract;
use nix::errno::Errno;
use std::mem::size_of;

/// `struct v4l2_bt_timings`: BT.656/BT.1120 timings (packed in the kernel's header).
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct v4l2_bt_timings {
    width: u32,
    height: u32,
    interlaced: u32,
    polarities: u32,
    pixelclock: u64,
    hfrontporch: u32,
    hsync: u32,
    hbackporch: u32,
    vfrontporch: u32,
    vsync: u32,
    vbackporch: u32,
    il_vfrontporch: u32,
    il_vsync: u32,
    il_vbackporch: u32,
    standards: u32,
    flags: u32,
    picture_aspect_numerator: u32,
    picture_aspect_denominator: u32,
    cea861_vic: u8,
    hdmi_vic: u8,
    reserved: [u8; 46],
}
const _: () = assert!(size_of::<v4l2_bt_timings>() == 124);

/// `struct v4l2_dv_timings` (packed): a type and a union whose only member in use is `bt`;
/// `reserved` gives the union its size.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct v4l2_dv_timings {
    type_: u32,
    bt: v4l2_bt_timings,
    union_rest: [u8; 4],
}
const _: () = assert!(size_of::<v4l2_dv_timings>() == 132);

const V4L2_DV_BT_656_1120: u32 = 0;
const V4L2_DV_FL_REDUCED_FPS: u32 = 1 << 2;

/// `struct v4l2_event_subscription`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct v4l2_event_subscription {
    type_: u32,
    id: u32,
    flags: u32,
    reserved: [u32; 5],
}
const _: () = assert!(size_of::<v4l2_event_subscription>() == 32);

/// `struct v4l2_event` as x86_64 and aarch64 lay it out: the union holds a 64-bit control value,
/// so it starts 8 bytes in; the timestamp is a `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct v4l2_event {
    type_: u32,
    u: [u64; 8],
    pending: u32,
    sequence: u32,
    timestamp: [i64; 2],
    id: u32,
    reserved: [u32; 8],
}
const _: () = assert!(size_of::<v4l2_event>() == 136);

const V4L2_EVENT_SOURCE_CHANGE: u32 = 5;
const V4L2_EVENT_SRC_CH_RESOLUTION: u32 = 1;

nix::ioctl_readwrite!(vidioc_s_dv_timings, b'V', 87, v4l2_dv_timings);
nix::ioctl_readwrite!(vidioc_g_dv_timings, b'V', 88, v4l2_dv_timings);
nix::ioctl_read!(vidioc_dqevent, b'V', 89, v4l2_event);
nix::ioctl_write_ptr!(vidioc_subscribe_event, b'V', 90, v4l2_event_subscription);
nix::ioctl_read!(vidioc_query_dv_timings, b'V', 99, v4l2_dv_timings);

/// Digital-video timings, as a receiver detected them or as set.
#[derive(Clone, Copy)]
pub struct DvTimings {
    raw: v4l2_dv_timings,
}

impl DvTimings {
    pub fn width(&self) -> u32 {
        self.raw.bt.width
    }

    /// Rows of a whole frame (both fields of an interlaced one).
    pub fn height(&self) -> u32 {
        self.raw.bt.height
    }

    pub fn interlaced(&self) -> bool {
        self.raw.bt.interlaced != 0
    }

    /// The time per frame: the total frame size over the pixel clock, with the 1001/1000 of
    /// the "reduced fps" (59.94 Hz) variants; `None` for timings with no clock.
    pub fn frame_interval(&self) -> Option<Fract> {
        let bt = self.raw.bt;
        let (width, height, pixelclock, flags) = (bt.width, bt.height, bt.pixelclock, bt.flags);
        let htotal = u64::from(width)
            + u64::from(bt.hfrontporch)
            + u64::from(bt.hsync)
            + u64::from(bt.hbackporch);
        let mut vtotal = u64::from(height)
            + u64::from(bt.vfrontporch)
            + u64::from(bt.vsync)
            + u64::from(bt.vbackporch);
        if bt.interlaced != 0 {
            // `height` counts both fields; the porches are the first field's, the il_ ones
            // the second's.
            vtotal +=
                u64::from(bt.il_vfrontporch) + u64::from(bt.il_vsync) + u64::from(bt.il_vbackporch);
        }
        frame_interval(
            pixelclock,
            htotal * vtotal,
            flags & V4L2_DV_FL_REDUCED_FPS != 0,
        )
    }

    /// The same timings: every field a receiver compares (the reserved bytes aside).
    pub fn same_as(&self, other: &DvTimings) -> bool {
        let (a, b) = (self.raw.bt, other.raw.bt);
        let key = |t: v4l2_bt_timings| {
            (
                t.width,
                t.height,
                t.interlaced,
                t.polarities,
                t.pixelclock,
                [t.hfrontporch, t.hsync, t.hbackporch],
                [t.vfrontporch, t.vsync, t.vbackporch],
                [t.il_vfrontporch, t.il_vsync, t.il_vbackporch],
                t.flags,
            )
        };
        key(a) == key(b)
    }
}

impl std::fmt::Debug for DvTimings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (w, h) = (self.width(), self.height());
        let rate = self.frame_interval();
        let pixelclock = self.raw.bt.pixelclock;
        write!(
            f,
            "{}x{}{} @ {} ({} Hz pixel clock)",
            w,
            h,
            if self.interlaced() { "i" } else { "p" },
            rate.map_or("?".to_string(), |r| format!(
                "{}/{}",
                r.denominator, r.numerator
            )),
            pixelclock
        )
    }
}

/// Seconds per frame from a pixel clock and the pixels per frame, exact where the numbers allow
/// (1650x750 at 74.25 MHz is 1/60).
fn frame_interval(pixelclock: u64, pixels_per_frame: u64, reduced: bool) -> Option<Fract> {
    if pixelclock == 0 || pixels_per_frame == 0 {
        return None;
    }
    let (mut num, mut den) = (pixelclock, pixels_per_frame);
    if reduced {
        num = num.checked_mul(1000)?;
        den = den.checked_mul(1001)?;
    }
    let g = gcd(num, den);
    let (num, den) = (num / g, den / g);
    Some(Fract::new(
        u32::try_from(den).ok()?,
        u32::try_from(num).ok()?,
    ))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What `VIDIOC_QUERY_DV_TIMINGS` found on the input.
#[derive(Clone, Copy, Debug)]
pub enum Detected {
    /// A source with these timings.
    Timings(DvTimings),
    /// No usable source: why, as the kernel says it.
    NoSignal(SignalLoss),
    /// The input does not work with DV timings (a webcam, an analog input).
    NotDv,
}

/// Why a receiver has no picture to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalLoss {
    /// Nothing is connected or it sends nothing (`ENOLINK`).
    NoSignal,
    /// Something is there, but the receiver cannot lock to it (`ENOLCK`).
    NoLock,
    /// Its timings are outside what the receiver can take (`ERANGE`).
    OutOfRange,
}

impl SignalLoss {
    /// As a user reads it; also the `reason` field of `rustv4l2src-signal`.
    pub fn describe(self) -> &'static str {
        match self {
            SignalLoss::NoSignal => "no signal",
            SignalLoss::NoLock => "no lock",
            SignalLoss::OutOfRange => "out of range",
        }
    }
}

/// What `VIDIOC_DQEVENT` gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// No event was pending.
    NonePending,
    /// The source changed.
    SourceChange(SourceChange),
    /// An event of another type (one subscribed to elsewhere), read and passed over.
    Other,
}

/// A change of the source, as `VIDIOC_DQEVENT` told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceChange {
    /// The input it happened on.
    pub input: u32,
    /// The resolution (or the signal) changed, as opposed to another property of the source.
    pub resolution: bool,
}

impl Device {
    /// `VIDIOC_QUERY_DV_TIMINGS`: what the receiver sees on the current input now.
    pub fn query_dv_timings(&self) -> Result<Detected> {
        let mut raw = zeroed_timings();
        // SAFETY: `raw` is a valid v4l2_dv_timings the kernel fills in.
        match retry(|| unsafe { vidioc_query_dv_timings(self.raw(), &mut raw) }) {
            Ok(_) => Ok(Detected::Timings(DvTimings { raw })),
            Err(Errno::ENOLINK) => Ok(Detected::NoSignal(SignalLoss::NoSignal)),
            Err(Errno::ENOLCK) => Ok(Detected::NoSignal(SignalLoss::NoLock)),
            Err(Errno::ERANGE) => Ok(Detected::NoSignal(SignalLoss::OutOfRange)),
            // The input has no DV timings (vivid answers ENODATA), or the driver none at all.
            Err(Errno::ENODATA | Errno::ENOTTY | Errno::EINVAL) => Ok(Detected::NotDv),
            Err(errno) => Err(self.err("VIDIOC_QUERY_DV_TIMINGS", errno)),
        }
    }

    /// `VIDIOC_G_DV_TIMINGS`: the timings the receiver is set to.
    pub fn g_dv_timings(&self) -> Result<DvTimings> {
        let mut raw = zeroed_timings();
        // SAFETY: `raw` is a valid v4l2_dv_timings the kernel fills in.
        retry(|| unsafe { vidioc_g_dv_timings(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_DV_TIMINGS", e))?;
        Ok(DvTimings { raw })
    }

    /// `VIDIOC_S_DV_TIMINGS`: makes `timings` the receiver's. Fails with `EBUSY` while buffers
    /// are allocated.
    pub fn s_dv_timings(&self, timings: &DvTimings) -> Result<()> {
        let mut raw = timings.raw;
        // SAFETY: `raw` is a valid, initialised v4l2_dv_timings the kernel may update.
        retry(|| unsafe { vidioc_s_dv_timings(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_DV_TIMINGS", e))?;
        Ok(())
    }

    /// `VIDIOC_SUBSCRIBE_EVENT` for source changes on `input`. `Ok(false)`: the driver raises
    /// none (most webcams).
    pub fn subscribe_source_change(&self, input: u32) -> Result<bool> {
        let sub = v4l2_event_subscription {
            type_: V4L2_EVENT_SOURCE_CHANGE,
            id: input,
            ..Default::default()
        };
        // SAFETY: `sub` is a valid v4l2_event_subscription the kernel only reads.
        match retry(|| unsafe { vidioc_subscribe_event(self.raw(), &sub) }) {
            Ok(_) => Ok(true),
            Err(Errno::ENOTTY | Errno::EINVAL) => Ok(false),
            Err(errno) => Err(self.err("VIDIOC_SUBSCRIBE_EVENT", errno)),
        }
    }

    /// `VIDIOC_DQEVENT`: the next pending event, if any.
    pub fn dequeue_event(&self) -> Result<Event> {
        // SAFETY: v4l2_event is plain integers, for which all-zero bytes are valid.
        let mut raw: v4l2_event = unsafe { std::mem::zeroed() };
        // SAFETY: `raw` is a valid v4l2_event the kernel fills in.
        match retry(|| unsafe { vidioc_dqevent(self.raw(), &mut raw) }) {
            Ok(_) => {}
            Err(Errno::ENOENT | Errno::EAGAIN) => return Ok(Event::NonePending),
            Err(errno) => return Err(self.err("VIDIOC_DQEVENT", errno)),
        }
        if raw.type_ != V4L2_EVENT_SOURCE_CHANGE {
            return Ok(Event::Other);
        }
        // `u.src_change.changes` is the union's first u32; little-endian in the u64.
        let changes = (raw.u[0] & 0xffff_ffff) as u32;
        let changes = if cfg!(target_endian = "little") {
            changes
        } else {
            (raw.u[0] >> 32) as u32
        };
        Ok(Event::SourceChange(SourceChange {
            input: raw.id,
            resolution: changes & V4L2_EVENT_SRC_CH_RESOLUTION != 0,
        }))
    }

    /// Reads every pending event (`VIDIOC_DQEVENT` until none is left): the source changes
    /// among them, in order. An error ends the reading; the events read before it are lost
    /// with it (the next look at the source sees what they said).
    pub fn drain_source_changes(&self) -> Result<Vec<SourceChange>> {
        let mut changes = Vec::new();
        loop {
            match self.dequeue_event()? {
                Event::NonePending => return Ok(changes),
                Event::SourceChange(change) => changes.push(change),
                Event::Other => {}
            }
        }
    }
}

fn zeroed_timings() -> v4l2_dv_timings {
    // SAFETY: v4l2_dv_timings is plain integers, for which all-zero bytes are valid.
    let mut raw: v4l2_dv_timings = unsafe { std::mem::zeroed() };
    raw.type_ = V4L2_DV_BT_656_1120;
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_intervals_come_out_exact() {
        // CEA-861 1280x720p60: 74.25 MHz over 1650 x 750.
        assert_eq!(
            frame_interval(74_250_000, 1650 * 750, false),
            Some(Fract::new(1, 60))
        );
        // The same at 59.94 Hz.
        assert_eq!(
            frame_interval(74_250_000, 1650 * 750, true),
            Some(Fract::new(1001, 60000))
        );
        // 720x576p50: 27 MHz over 864 x 625.
        assert_eq!(
            frame_interval(27_000_000, 864 * 625, false),
            Some(Fract::new(1, 50))
        );
        // 640x480p59.94 (25.175 MHz over 800 x 525).
        assert_eq!(
            frame_interval(25_175_000, 800 * 525, false),
            Some(Fract::new(84, 5035))
        );
        assert_eq!(frame_interval(0, 100, false), None);
        assert_eq!(frame_interval(100, 0, false), None);
    }

    #[test]
    fn interlaced_frames_count_both_fields_blanking() {
        // 1920x1080i60: 74.25 MHz, 2200 wide, 1125 lines per frame (540 + 22.5 per field).
        let mut raw = zeroed_timings();
        raw.bt.width = 1920;
        raw.bt.height = 1080;
        raw.bt.interlaced = 1;
        raw.bt.pixelclock = 74_250_000;
        raw.bt.hfrontporch = 88;
        raw.bt.hsync = 44;
        raw.bt.hbackporch = 148;
        raw.bt.vfrontporch = 2;
        raw.bt.vsync = 5;
        raw.bt.vbackporch = 15;
        raw.bt.il_vfrontporch = 2;
        raw.bt.il_vsync = 5;
        raw.bt.il_vbackporch = 16;
        let t = DvTimings { raw };
        assert_eq!(t.frame_interval(), Some(Fract::new(1, 30)));
        assert!(t.interlaced());
        assert!(t.same_as(&t));
        let mut other = t;
        other.raw.bt.width = 1280;
        assert!(!t.same_as(&other));
    }
}
