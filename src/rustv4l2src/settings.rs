//! The element's properties: their defaults, ranges and descriptions, and the plain settings
//! they fill in. Copied out under a short lock before use; nothing here touches the device.

use crate::v4l2;
use gst::glib;
use gst::prelude::*;

pub(super) const DEFAULT_DEVICE: &str = "/dev/video0";
/// 0: choose from the driver's minimum and what downstream says it holds.
pub(super) const DEFAULT_BUFFER_COUNT: u32 = 0;
pub(super) const MAX_BUFFER_COUNT: u32 = 32;
pub(super) const DEFAULT_IO_MODE: IoMode = IoMode::Mmap;
pub(super) const DEFAULT_TIMEOUT_MS: u32 = 0;
pub(super) const DEFAULT_LOW_LATENCY: bool = false;
/// Lend frames while at least this many buffers stay with the driver; below it, copy. One is
/// the least that keeps the driver capturing while downstream holds everything else.
pub(super) const DEFAULT_COPY_THRESHOLD: u32 = 1;
pub(super) const DEFAULT_TIMEOUT_ACTION: TimeoutAction = TimeoutAction::Error;
/// Off: an unplug is an error, as with v4l2src.
pub(super) const DEFAULT_RECONNECT: bool = false;
/// 0: wait for the device for ever.
pub(super) const DEFAULT_RECONNECT_TIMEOUT_S: u32 = 0;

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

/// The colour-balance properties and the V4L2 controls behind them, in the order of
/// `Settings::color`.
pub(super) const COLOR_CONTROLS: [(&str, u32); 4] = [
    ("brightness", v4l2::V4L2_CID_BRIGHTNESS),
    ("contrast", v4l2::V4L2_CID_CONTRAST),
    ("saturation", v4l2::V4L2_CID_SATURATION),
    ("hue", v4l2::V4L2_CID_HUE),
];

/// The index in `COLOR_CONTROLS` of the property `name`.
pub(super) fn color_index(name: &str) -> Option<usize> {
    COLOR_CONTROLS.iter().position(|(n, _)| *n == name)
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub device: String,
    pub buffer_count: u32,
    pub io_mode: IoMode,
    pub timeout_ms: u32,
    pub timeout_action: TimeoutAction,
    pub copy_threshold: u32,
    pub low_latency: bool,
    /// brightness, contrast, saturation, hue: applied only once the user sets them, so a
    /// device keeps its own defaults otherwise.
    pub color: [Option<i32>; 4],
    pub extra_controls: Option<gst::Structure>,
    pub reconnect: bool,
    pub reconnect_timeout_s: u32,
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
            reconnect: DEFAULT_RECONNECT,
            reconnect_timeout_s: DEFAULT_RECONNECT_TIMEOUT_S,
        }
    }
}

/// What setting a property asks of the element beyond storing it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Followup {
    Nothing,
    /// A control property: apply it to the open device.
    ApplyControl,
}

impl Settings {
    /// Stores a property's new value.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> Followup {
        if let Some(i) = color_index(name) {
            self.color[i] = Some(value.get().expect("type checked upstream"));
            return Followup::ApplyControl;
        }
        match name {
            "extra-controls" => {
                self.extra_controls = value.get().expect("type checked upstream");
                return Followup::ApplyControl;
            }
            "device" => {
                let device: Option<String> = value.get().expect("type checked upstream");
                self.device = device.unwrap_or_else(|| DEFAULT_DEVICE.into());
            }
            "low-latency" => self.low_latency = value.get().expect("type checked upstream"),
            "copy-threshold" => self.copy_threshold = value.get().expect("type checked upstream"),
            "timeout" => self.timeout_ms = value.get().expect("type checked upstream"),
            "timeout-action" => self.timeout_action = value.get().expect("type checked upstream"),
            "io-mode" => self.io_mode = value.get().expect("type checked upstream"),
            "buffer-count" => self.buffer_count = value.get().expect("type checked upstream"),
            "reconnect" => self.reconnect = value.get().expect("type checked upstream"),
            "reconnect-timeout" => {
                self.reconnect_timeout_s = value.get().expect("type checked upstream")
            }
            _ => unimplemented!("property {name}"),
        }
        Followup::Nothing
    }

    /// A property's stored value; `None` for those that are not settings (`stats`,
    /// `device-name`) or that read the device (the colour controls while it is open).
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        if let Some(i) = color_index(name) {
            return Some(self.color[i].unwrap_or(0).to_value());
        }
        Some(match name {
            "extra-controls" => self.extra_controls.to_value(),
            "device" => self.device.to_value(),
            "buffer-count" => self.buffer_count.to_value(),
            "io-mode" => self.io_mode.to_value(),
            "timeout" => self.timeout_ms.to_value(),
            "copy-threshold" => self.copy_threshold.to_value(),
            "low-latency" => self.low_latency.to_value(),
            "timeout-action" => self.timeout_action.to_value(),
            "reconnect" => self.reconnect.to_value(),
            "reconnect-timeout" => self.reconnect_timeout_s.to_value(),
            _ => return None,
        })
    }
}

/// Every property of the element.
pub(super) fn properties() -> Vec<glib::ParamSpec> {
    let mut specs = vec![
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb("Path of the V4L2 capture node to open, e.g. /dev/video0")
            .default_value(Some(DEFAULT_DEVICE))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("device-name")
            .nick("Device name")
            .blurb("Name of the device (the driver's card name) once it is open; NULL before")
            .read_only()
            .build(),
        glib::ParamSpecUInt::builder("buffer-count")
            .nick("Buffer count")
            .blurb(
                "Number of V4L2 buffers to request from the driver (0 = automatic: the \
                 driver's minimum plus what downstream holds plus one, at least 4). The \
                 driver may grant fewer or more.",
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
                 (copy-threshold or unreadable stride), requeue-failures (buffers the \
                 driver refused back), disconnects (times the device went away while \
                 streaming), all counts; last-delay (ns from the start of capture of the \
                 last frame to its push; 18446744073709551615 before the first frame), \
                 time-without-device (ns spent waiting for the device with 'reconnect', \
                 the current wait included)",
            )
            .read_only()
            .build(),
    ];
    for (name, _) in COLOR_CONTROLS {
        let mut nick = name.to_string();
        nick[..1].make_ascii_uppercase();
        let what = if name == "saturation" {
            "colour saturation"
        } else {
            name
        };
        specs.push(
            glib::ParamSpecInt::builder(name)
                .nick(&nick)
                .blurb(&format!(
                    "Picture {what} (V4L2 control), in the driver's own units and range \
                     (v4l2-ctl --list-ctrls shows them); 0 is a value like any other, not \
                     'unset'. Applied only once set. Reads the driver's value while the \
                     device is open, else the value set (0 if none). A device without the \
                     control warns"
                ))
                .mutable_playing()
                .build(),
        );
    }
    specs.extend([
        glib::ParamSpecBoxed::builder::<gst::Structure>("extra-controls")
            .nick("Extra controls")
            .blurb(
                "Any V4L2 controls by normalised name, e.g. \
                 \"c,exposure_time_absolute=100,white_balance_automatic=false\", each \
                 value in that control's own units; checked against the device's ranges, \
                 with a warning for unknown names or out-of-range values",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("copy-threshold")
            .nick("Copy threshold")
            .blurb(
                "Copy a frame into system memory instead of lending the driver's buffer \
                 when fewer than this many buffers (a count) would stay queued to the driver \
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
            .blurb(
                "What to do when no frame arrives within 'timeout': post an error, or end \
                 the stream",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("reconnect")
            .nick("Reconnect")
            .blurb(
                "When the device goes away (unplugged, or absent at start), keep the pipeline \
                 PLAYING, send GAP events at the last frame duration, and go on when the same \
                 device comes back (found by its stable /dev/v4l link, or by driver, card, bus \
                 and USB serial for a /dev/videoN path), posting a warning and the element \
                 messages rustv4l2src-device-lost and rustv4l2src-device-restored. false = an \
                 unplug is an error, as with v4l2src",
            )
            .default_value(DEFAULT_RECONNECT)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("reconnect-timeout")
            .nick("Reconnect timeout")
            .blurb(
                "Seconds to wait for a lost device with 'reconnect' before posting the error \
                 an unplug posts without it (0 = wait forever)",
            )
            .default_value(DEFAULT_RECONNECT_TIMEOUT_S)
            .mutable_playing()
            .build(),
    ]);
    specs
}
