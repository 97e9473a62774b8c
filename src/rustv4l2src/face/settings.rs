//! The element's properties: their defaults, ranges and descriptions, and the plain settings
//! they fill in. Copied out under a short lock before use; nothing here touches the device.

use crate::rustv4l2src::shared::CAT;
use crate::v4l2;
use gst::glib;
use gst::prelude::*;

pub(in crate::rustv4l2src) use super::kinds::{
    DeviceTypeFlags, IoMode, NoSignal, TimeoutAction, TvNorm, device_type_flags,
};

pub(super) const DEFAULT_DEVICE: &str = "/dev/video0";
/// 0: choose from the driver's minimum and what downstream says it holds.
pub(super) const DEFAULT_BUFFER_COUNT: u32 = 0;
pub(in crate::rustv4l2src) const MAX_BUFFER_COUNT: u32 = 32;
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
/// GAP events while a capture card's source has no signal: downstream goes on.
pub(super) const DEFAULT_NO_SIGNAL: NoSignal = NoSignal::Gap;
/// As v4l2src: the caps carry the pixel aspect ratio.
pub(super) const DEFAULT_FORCE_ASPECT_RATIO: bool = true;
/// -1: keep the input the device is on.
pub(super) const DEFAULT_INPUT: i32 = -1;
/// What `device-fd` reads while no device is open.
pub(in crate::rustv4l2src) const NO_FD: i32 = -1;

/// The colour-balance properties and the V4L2 controls behind them, in the order of
/// `Settings::color`.
pub(in crate::rustv4l2src) const COLOR_CONTROLS: [(&str, u32); 4] = [
    ("brightness", v4l2::V4L2_CID_BRIGHTNESS),
    ("contrast", v4l2::V4L2_CID_CONTRAST),
    ("saturation", v4l2::V4L2_CID_SATURATION),
    ("hue", v4l2::V4L2_CID_HUE),
];

/// The index in `COLOR_CONTROLS` of the property `name`.
pub(in crate::rustv4l2src) fn color_index(name: &str) -> Option<usize> {
    COLOR_CONTROLS.iter().position(|(n, _)| *n == name)
}

#[derive(Debug, Clone)]
pub(in crate::rustv4l2src) struct Settings {
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
    pub no_signal: NoSignal,
    /// The `pixel-aspect-ratio` property as set (a string, as in v4l2src); `None` leaves the
    /// device's.
    pub pixel_aspect_ratio: Option<String>,
    pub force_aspect_ratio: bool,
    pub crop: Sides,
    /// The input to select at open; negative: the device's current one.
    pub input: i32,
    /// The TV standard to set at open; `None`: the input's current one.
    pub norm: TvNorm,
    /// An application's open descriptor of the node to use instead of `device`; `NO_FD` for
    /// none. The element works on a duplicate and never closes this one.
    pub device_fd: i32,
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
            no_signal: DEFAULT_NO_SIGNAL,
            pixel_aspect_ratio: None,
            force_aspect_ratio: DEFAULT_FORCE_ASPECT_RATIO,
            crop: Sides::default(),
            input: DEFAULT_INPUT,
            norm: TvNorm::None,
            device_fd: NO_FD,
        }
    }
}

/// Pixels to cut at each side of the picture (the `crop-*` properties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::rustv4l2src) struct Sides {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
}

impl Sides {
    pub fn any(&self) -> bool {
        *self != Sides::default()
    }
}

/// What setting a property asks of the element beyond storing it.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::rustv4l2src) enum Followup {
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
            "no-signal" => self.no_signal = value.get().expect("type checked upstream"),
            "reconnect-timeout" => {
                self.reconnect_timeout_s = value.get().expect("type checked upstream")
            }
            "pixel-aspect-ratio" => {
                let text: Option<String> = value.get().expect("type checked upstream");
                if let Some(text) = &text
                    && crate::caps::parse_pixel_aspect_ratio(text).is_none()
                {
                    gst::warning!(
                        CAT,
                        "pixel-aspect-ratio '{}' is not a positive fraction like 59/54; the \
                         device's is used",
                        text
                    );
                }
                self.pixel_aspect_ratio = text;
            }
            "force-aspect-ratio" => {
                self.force_aspect_ratio = value.get().expect("type checked upstream")
            }
            "crop-top" => self.crop.top = value.get().expect("type checked upstream"),
            "crop-left" => self.crop.left = value.get().expect("type checked upstream"),
            "crop-bottom" => self.crop.bottom = value.get().expect("type checked upstream"),
            "crop-right" => self.crop.right = value.get().expect("type checked upstream"),
            "input" => self.input = value.get().expect("type checked upstream"),
            "norm" => self.norm = value.get().expect("type checked upstream"),
            "device-fd" => self.device_fd = value.get().expect("type checked upstream"),
            _ => unimplemented!("property {name}"),
        }
        Followup::Nothing
    }

    /// A property's stored value; `None` for those that are not settings (`stats`,
    /// `device-name`, `flags`, `crop-bounds`). The element reads the device instead for the
    /// colour controls, for `device-fd` while open, and for `pixel-aspect-ratio` when none is
    /// set.
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
            "no-signal" => self.no_signal.to_value(),
            "reconnect-timeout" => self.reconnect_timeout_s.to_value(),
            "pixel-aspect-ratio" => self.pixel_aspect_ratio.to_value(),
            "force-aspect-ratio" => self.force_aspect_ratio.to_value(),
            "crop-top" => self.crop.top.to_value(),
            "crop-left" => self.crop.left.to_value(),
            "crop-bottom" => self.crop.bottom.to_value(),
            "crop-right" => self.crop.right.to_value(),
            "input" => self.input.to_value(),
            "norm" => self.norm.to_value(),
            "device-fd" => self.device_fd.to_value(),
            _ => return None,
        })
    }
}

/// Every property of the element.
pub(in crate::rustv4l2src) fn properties() -> Vec<glib::ParamSpec> {
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
                "How frames reach downstream, as in v4l2src: 'mmap' (and 'auto') lends the \
                 driver's memory-mapped buffers as system memory; 'dmabuf' exports them \
                 (VIDIOC_EXPBUF) and lends them as dmabuf memory, re-queued when freed; \
                 'userptr' has the driver fill page-aligned memory the element allocates, \
                 lent without a copy; 'rw' read()s each frame into system memory (a copy); \
                 'dmabuf-import' captures into the DMABUFs of downstream's buffer pool \
                 (an error when downstream offers none).",
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
                // As v4l2src's: a GstController may drive them.
                .controllable()
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
                 messages rustv4l2src-device-lost and rustv4l2src-device-restored; and restart \
                 a stream the driver failed while the device stays (EIO), up to 5 times in any \
                 60 s, posting a warning and rustv4l2src-stream-restarted. false = an unplug or \
                 a failed stream is an error, as with v4l2src",
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
        glib::ParamSpecEnum::builder_with_default("no-signal", DEFAULT_NO_SIGNAL)
            .nick("No signal")
            .blurb(
                "What to send while the source of a capture card's input has no signal (no \
                 signal, no lock, out of range): gap = GAP events at the last frame duration, \
                 black = black frames of the last caps, error = post an error as v4l2src. The \
                 loss and the return are posted as warning and the element message \
                 rustv4l2src-signal",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("pixel-aspect-ratio")
            .nick("Pixel Aspect Ratio")
            .blurb(
                "Overwrite the pixel aspect ratio of the device: width over height of one \
                 pixel, as a fraction string (\"59/54\"), put in the caps instead of what the \
                 driver reports (VIDIOC_CROPCAP). NULL = the device's, which this reads once \
                 the device is open. Takes effect at the next negotiation",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("force-aspect-ratio")
            .nick("Force aspect ratio")
            .blurb(
                "When enabled, the pixel aspect ratio (the device's, or pixel-aspect-ratio) \
                 will be enforced: the caps carry it. false = the caps carry none, and \
                 downstream may choose any",
            )
            .default_value(DEFAULT_FORCE_ASPECT_RATIO)
            .mutable_ready()
            .build(),
        glib::ParamSpecFlags::builder::<DeviceTypeFlags>("flags")
            .nick("Flags")
            .blurb(
                "Device type flags: the open device's capabilities (VIDIOC_QUERYCAP), as \
                 v4l2src shows them; none (0) while no device is open",
            )
            .read_only()
            .build(),
        glib::ParamSpecInt::builder("device-fd")
            .nick("File descriptor")
            .blurb(
                "File descriptor of the device. Set (in NULL or READY, for the next open) to \
                 an open /dev/videoN descriptor of the application to capture from it instead \
                 of 'device': the element uses a duplicate and never closes the \
                 application's. Reads the element's own descriptor while the device is open \
                 (READY and up: do not close it), else the value set; -1 = none",
            )
            .minimum(NO_FD)
            .default_value(NO_FD)
            .mutable_ready()
            .build(),
    ]);
    for (name, side) in [
        ("crop-top", "top"),
        ("crop-left", "left"),
        ("crop-bottom", "bottom"),
        ("crop-right", "right"),
    ] {
        let nick = format!("Crop {side}");
        specs.push(
            glib::ParamSpecUInt::builder(name)
                .nick(&nick)
                .blurb(&format!(
                    "Pixels to crop at {side} of video capture input (VIDIOC_S_SELECTION, \
                     applied before each VIDIOC_S_FMT, so the frames are that much smaller), \
                     counted from the edge of crop-bounds. 0 = none; all four 0 = the \
                     driver's default crop. A device that cannot crop gets an error"
                ))
                .default_value(0)
                .mutable_ready()
                .build(),
        );
    }
    specs.push(
        gst::ParamSpecArray::builder("crop-bounds")
            .nick("Crop bounds")
            .blurb(
                "The bounding region for crop rectangles ('<x, y, width, height>'), in \
                 pixels, once the device is open; <0, 0, 0, 0> while closed or for a \
                 device that cannot crop",
            )
            .element_spec(
                &glib::ParamSpecInt::builder("rect-value")
                    .nick("Rectangle Value")
                    .blurb("One of x, y, width or height value.")
                    .default_value(-1)
                    .read_only()
                    .build(),
            )
            .read_only()
            .build(),
    );
    specs.extend([
        glib::ParamSpecInt::builder("input")
            .nick("Input")
            .blurb(
                "Index of the video input to capture from (VIDIOC_S_INPUT, as v4l2-ctl \
                 --list-inputs numbers them), selected when the device opens, before \
                 negotiation; -1 = keep the device's current input. Reads the device's current \
                 input while it is open",
            )
            .minimum(DEFAULT_INPUT)
            .default_value(DEFAULT_INPUT)
            .build(),
        glib::ParamSpecEnum::builder_with_default("norm", TvNorm::None)
            .nick("TV norm")
            .blurb(
                "video standard: the analogue TV standard to set (VIDIOC_S_STD) when the \
                 device opens, after 'input'; none = keep the input's. Takes effect at the next \
                 open, as with v4l2src; reads the device's current standard while it is open. A \
                 norm the input does not support is an error",
            )
            .build(),
    ]);
    specs
}

/// `prepare-format (fd: gint, caps: GstCaps)`, as in `v4l2src`; emitted by `prepare_format.rs`.
pub(in crate::rustv4l2src) const PREPARE_FORMAT: &str = "prepare-format";

pub(in crate::rustv4l2src) fn signals() -> &'static [glib::subclass::Signal] {
    static SIGNALS: std::sync::LazyLock<Vec<glib::subclass::Signal>> =
        std::sync::LazyLock::new(|| {
            vec![
                glib::subclass::Signal::builder(PREPARE_FORMAT)
                    .param_types([i32::static_type(), gst::Caps::static_type()])
                    .run_last()
                    .build(),
            ]
        });
    SIGNALS.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_are_v4l2src_s_and_read_back_from_a_driver_s_standard() {
        gst::init().unwrap();
        let class = glib::EnumClass::with_type(TvNorm::static_type()).unwrap();
        assert_eq!(class.values().len(), 31);
        for value in class.values() {
            // v4l2src's names and nicks are the same strings.
            assert_eq!(value.name(), value.nick());
        }
        assert_eq!(class.value_by_nick("PAL").unwrap().value(), 0xff);
        assert_eq!(class.value_by_nick("NTSC").unwrap().value(), 0xb000);
        assert_eq!(class.value_by_nick("SECAM-Lc").unwrap().value(), 0x80_0000);
        assert_eq!(class.value_by_nick("none").unwrap().value(), 0);
        assert_eq!(TvNorm::Pal.nick(), "PAL");
        assert_eq!(TvNorm::of_std(0xff), TvNorm::Pal);
        assert_eq!(TvNorm::of_std(0x1000), TvNorm::NtscM);
        // Two PAL variants: the group that holds both.
        assert_eq!(TvNorm::of_std(0x5), TvNorm::PalBg);
        // Bits of two families: the first that shares any.
        assert_eq!(TvNorm::of_std(0x1001), TvNorm::Ntsc);
        assert_eq!(TvNorm::of_std(0), TvNorm::None);
        assert_eq!(TvNorm::ALL.len(), class.values().len());
    }

    #[test]
    fn flags_are_v4l2src_s_of_the_device_caps() {
        use crate::v4l2::*;
        gst::init().unwrap();
        // vivid's capture node: capture, tuner, audio, plus bits flags does not show.
        let vivid = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_TUNER | V4L2_CAP_AUDIO | 0x0500_0000;
        assert_eq!(
            device_type_flags(vivid),
            DeviceTypeFlags::CAPTURE | DeviceTypeFlags::TUNER | DeviceTypeFlags::AUDIO
        );
        assert_eq!(
            device_type_flags(V4L2_CAP_VIDEO_CAPTURE_MPLANE | V4L2_CAP_VIDEO_OUTPUT_MPLANE),
            DeviceTypeFlags::CAPTURE | DeviceTypeFlags::OUTPUT
        );
        assert_eq!(device_type_flags(0), DeviceTypeFlags::empty());
        // The nicks launch lines and gst-inspect use.
        let class = glib::FlagsClass::with_type(DeviceTypeFlags::static_type()).unwrap();
        let nicks: Vec<_> = class.values().iter().map(|v| v.nick()).collect();
        assert_eq!(
            nicks,
            [
                "capture",
                "output",
                "overlay",
                "vbi-capture",
                "vbi-output",
                "tuner",
                "audio"
            ]
        );
    }
}
