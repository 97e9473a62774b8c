//! The capture session: everything that lives from opening the device to closing it (the
//! device, what it can capture, the negotiated format, the buffer queue and its mappings, the
//! per-stream counters), as one state machine the element drives.
//!
//! Every rebuild goes through [`Session::rebuild`]: stop the stream, free its buffers, configure
//! the device again. Buffers come back at the next allocation query and streaming at the next
//! frame request, which is the order GstBaseSrc asks for them in. Renegotiation while PLAYING
//! uses it now; source changes, signal loss and reconnection will too. Frames lent downstream
//! across a rebuild stay valid: the old queue is orphaned (its mappings live as long as a frame
//! of it does) and its frames are not re-queued into the new stream.
//!
//! A device that goes away leaves the session `Lost` with what it takes to find the device
//! again and go on where it left off (`Gone`): the capture loop waits for it (`reconnect.rs`),
//! opens it again and renegotiates, which configures a new stream through `rebuild`.
//!
//! The session knows the device and GStreamer's caps, but not the element: it returns errors
//! for the element to post once it has let go of the session's lock.

use super::reading::Reading;
use super::timeline::{Increasing, Sequence};
use crate::caps;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::{self, DeviceTypeFlags, Settings};
use crate::rustv4l2src::interfaces::colorbalance::Channels;
use crate::rustv4l2src::interfaces::tuner_lists::Lists;
use crate::rustv4l2src::knobs::crop;
use crate::rustv4l2src::knobs::inputs;
use crate::rustv4l2src::knobs::source::Source;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, Device, Identity, Queue};
use gst::glib;
use gst::prelude::*;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The device as opened: what stays the same from open to close.
pub(in crate::rustv4l2src) struct Opened {
    pub device: Arc<Device>,
    /// Formats as listed at open. A format's sizes are listed the first time negotiation or a
    /// caps query needs them (`sizes_listed` says which formats have been), and a size's frame
    /// intervals the first time it is looked at (`probed_intervals`): listing every size of
    /// every format costs hundreds of ioctls and every interval thousands, while negotiating
    /// one format needs a few.
    pub probed: Vec<v4l2::ProbedFormat>,
    pub sizes_listed: HashSet<usize>,
    pub probed_intervals: HashSet<(usize, usize)>,
    /// Everything the device offers, built on the first caps query (for `geometry`).
    pub caps: Option<gst::Caps>,
    /// The pixel aspect ratio the device reports for its current input (`VIDIOC_CROPCAP`).
    pub device_par: gst::Fraction,
    /// Where its current input can be cropped; `None` when it cannot.
    pub crop_bounds: Option<v4l2::Rect>,
    /// What the properties make of the picture's shape.
    pub geometry: Geometry,
    /// Who the device is, to know it again should it go away and come back.
    pub identity: Identity,
    /// GstColorBalance's channels for this device: made on first use (most users never ask,
    /// and finding them costs a `VIDIOC_QUERYCTRL` per colour control), then kept unchanged
    /// until it closes, because `list_channels` lends them out without a reference.
    pub channels: OnceCell<Channels>,
    /// The caps to try first at the next negotiation: the stream's before the device went
    /// away, so that it comes back as it was when it still can.
    pub caps_before: Option<gst::Caps>,
    /// The source on the current input: its timings and signal (capture cards), and so the
    /// picture negotiation prefers over the driver's other sizes (`Source::native`).
    pub source: Source,
    /// GstTuner's channels and norms for this device (see `tuning.rs`).
    pub tuner: Lists,
}

/// The shape of the picture as the properties ask for it: set at open and before each
/// negotiation, from `pixel-aspect-ratio`, `force-aspect-ratio` and `crop-*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(in crate::rustv4l2src) struct Geometry {
    /// The pixel aspect ratio the caps carry; `None`: no such field.
    pub par: Option<gst::Fraction>,
    /// The crop rectangle to set before each format; `None`: the driver's default, and caps
    /// of any size.
    pub crop: Option<v4l2::Rect>,
}

/// One negotiated format and, once allocation has run, its buffers; the counters of its stream.
pub(in crate::rustv4l2src) struct Stream {
    /// The caps downstream got: the negotiated ones, completed with what the driver settled on
    /// (interlacing, colorimetry).
    pub caps: gst::Caps,
    /// The fixed caps negotiation asked for, before the driver's answer completed them.
    pub asked: gst::Caps,
    /// `caps` as a `VideoInfo`; of format `Encoded` for Bayer and compressed formats.
    pub info: gst_video::VideoInfo,
    pub framing: caps::Framing,
    pub frame_duration: Option<gst::ClockTime>,
    pub queue: Option<Arc<Queue>>,
    /// Downstream understands GstVideoMeta, so strides that differ from GStreamer's default can
    /// be described instead of copied away.
    pub video_meta: bool,
    /// Downstream can read the driver's buffers as they are (`Framing::readable_as_is`), and
    /// raw video's buffers need a GstVideoMeta to say how: both fixed for the stream, so
    /// worked out once rather than per frame.
    pub readable_as_is: bool,
    pub needs_video_meta: bool,
    pub sequence: Sequence,
    pub pts: Increasing,
    /// System-memory buffers for copies, made on first need.
    pub copy_pool: Option<gst::BufferPool>,
    /// The queue's buffers as GstBuffers, made once each and recycled (dmabuf memory when
    /// the queue was exported, `io-mode=dmabuf`). Lives on while downstream holds its buffers.
    pub pool: Option<super::pool::FramePool>,
    /// The pipeline clock seen last, and whether it reads CLOCK_MONOTONIC.
    pub clock_kind: Option<(gst::Clock, bool)>,
    /// The queue's count of buffers the driver refused back, as last reported in `stats`.
    pub refusals_seen: u64,
    /// The driver has handed over a buffer downstream still held (a reread: v4l2loopback).
    /// Such a driver writes the buffers it hands out whoever holds them, so from then on
    /// every frame is copied the moment it is dequeued: a frame downstream holds must not
    /// turn into a later one, or into half of one, under it.
    pub driver_overwrites: bool,
    /// Frames by `read()` instead of a queue (`io-mode=rw`).
    pub reading: Option<Reading>,
    pub import: Option<super::slots::Import>,
}

impl Stream {
    /// Ends this stream's capture and frees its buffers. Frames still held downstream stay
    /// valid and are not re-queued.
    fn stop(&mut self) {
        if let Some(queue) = self.queue.take()
            && let Err(e) = queue.stop()
        {
            gst::warning!(CAT, "Stopping the stream: {}", e);
        }
        // Frames of this pool held downstream keep it; they come back to it and are not
        // re-queued.
        self.pool = None;
        if let Some(pool) = self.copy_pool.take() {
            let _ = pool.set_active(false);
        }
        if let Some(reading) = self.reading.take() {
            reading.end();
        }
        if let Some(mut import) = self.import.take() {
            import.stop();
        }
    }
}

/// The session's states. "Not open" holds nothing; a stream exists only with its device.
// One `Session` per element, never moved around: boxing the open variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(in crate::rustv4l2src) enum Session {
    Closed,
    /// The device is open and probed; no format yet.
    Open(Opened),
    /// A format is set and, once allocation ran, buffers are mapped; not streaming.
    Configured(Opened, Stream),
    /// The buffers are queued to the driver and it streams.
    Streaming(Opened, Stream),
    /// The device went away while streaming, or was not there at start (`reconnect`).
    /// Everything of it is released (buffers held downstream stay valid); the element has said
    /// so on the bus.
    Lost(Gone),
}

/// What the session keeps of a device it lost.
#[derive(Debug, Clone)]
pub(in crate::rustv4l2src) struct Gone {
    /// The node it was at (or, never opened, the `device` property).
    pub path: String,
    pub since: Instant,
    /// Who it was; `None` for a device never opened.
    pub identity: Option<Identity>,
    /// The fixed caps negotiation last asked for, to ask for them again.
    pub asked: Option<gst::Caps>,
    pub frame_duration: Option<gst::ClockTime>,
    /// The last PTS of its stream: later ones come after it.
    pub last_pts: Option<gst::ClockTime>,
    /// The error the element posts for this without `reconnect`, or once `reconnect-timeout`
    /// has passed.
    pub error: gst::ErrorMessage,
}

/// Why a device could not be opened: the error to post, and whether the device is simply not
/// there (no node, or one whose device is going away), which `reconnect` waits out.
#[derive(Debug)]
pub(in crate::rustv4l2src) struct Unopened {
    pub error: gst::ErrorMessage,
    pub absent: bool,
}

impl From<Unopened> for gst::ErrorMessage {
    fn from(unopened: Unopened) -> Self {
        unopened.error
    }
}

/// What a rebuild changed.
pub(in crate::rustv4l2src) struct Rebuilt {
    /// The caps of the stream, to send downstream.
    pub caps: gst::Caps,
    /// The frame duration changed, so the latency did.
    pub latency_changed: bool,
}

impl Session {
    /// Opens the device the settings name: the application's descriptor (a duplicate of it)
    /// when `device-fd` is set, else the node at `device`; selects the input and norm they ask
    /// for, and lists what it can capture.
    pub fn open_as_set(settings: &Settings) -> Result<Opened, Unopened> {
        if settings.device_fd == settings::NO_FD {
            return Session::open(&settings.device, settings);
        }
        let fd = settings.device_fd;
        let device = Device::from_fd(fd).map_err(|e| Unopened {
            absent: false,
            error: errors::fd_open_error(fd, e),
        })?;
        Session::probe(device, settings)
    }

    /// Opens the device at `path` as `settings` ask, and lists what it can capture.
    pub fn open(path: &str, settings: &Settings) -> Result<Opened, Unopened> {
        let device = Device::open(Path::new(path)).map_err(|e| Unopened {
            absent: match &e {
                v4l2::OpenError::NotFound => true,
                v4l2::OpenError::Io(e) => e.is_disconnect(),
                _ => false,
            },
            error: errors::open_error(path, e),
        })?;
        Session::probe(device, settings)
    }

    /// Selects the input and norm, asks what the source sends, lists what an open device can
    /// capture, and reads its geometry.
    fn probe(device: Device, settings: &Settings) -> Result<Opened, Unopened> {
        let path = device.path().to_string_lossy().into_owned();
        let path = path.as_str();
        let unopened = |error| Unopened {
            error,
            absent: false,
        };
        // Before listing formats, which depend on them: the input and norm asked for, then
        // the receiver's timings.
        let (input, norm_native) = inputs::select(&device, settings).map_err(unopened)?;
        let source = Source::at_open(&device, input, norm_native)
            .map_err(|e| unopened(errors::device_error("asking what the source sends", &e)))?;
        let probed = list_formats(&device).map_err(unopened)?;
        gst::info!(
            CAT,
            "{}: Opened ('{}', driver {}): {} formats",
            path,
            device.capability().card,
            device.capability().driver,
            probed.len()
        );
        if !probed.iter().any(|f| caps::entry(f.fourcc).is_some()) {
            return Err(unopened(errors::no_format(path, &probed)));
        }
        let device_par = match device.cropcap() {
            Ok(cap) => caps::pixel_aspect_ratio(cap.and_then(|c| c.pixelaspect)),
            Err(e) => {
                gst::debug!(CAT, "{}: No pixel aspect ratio: {}", path, e);
                gst::Fraction::new(1, 1)
            }
        };
        let crop_bounds = crop::bounds(&device);
        gst::debug!(CAT, "{}: Crop bounds {:?}", path, crop_bounds);
        let identity = Identity::of(&device);
        Ok(Opened {
            device: Arc::new(device),
            probed,
            sizes_listed: HashSet::new(),
            probed_intervals: HashSet::new(),
            caps: None,
            device_par,
            crop_bounds,
            geometry: Geometry {
                par: Some(device_par),
                crop: None,
            },
            identity,
            channels: OnceCell::new(),
            caps_before: None,
            source,
            tuner: Lists::default(),
        })
    }

    /// The source on the input has no signal: there is no stream to capture until it comes.
    pub fn signal_absent(&self) -> bool {
        self.opened().is_some_and(|o| o.source.absent.is_some())
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, Session::Closed | Session::Lost(_))
    }

    /// The device this session lost, if it did.
    pub fn lost(&self) -> Option<&Gone> {
        match self {
            Session::Lost(gone) => Some(gone),
            _ => None,
        }
    }

    pub fn opened(&self) -> Option<&Opened> {
        match self {
            Session::Open(o) | Session::Configured(o, _) | Session::Streaming(o, _) => Some(o),
            Session::Closed | Session::Lost(_) => None,
        }
    }

    pub fn opened_mut(&mut self) -> Option<&mut Opened> {
        match self {
            Session::Open(o) | Session::Configured(o, _) | Session::Streaming(o, _) => Some(o),
            Session::Closed | Session::Lost(_) => None,
        }
    }

    pub fn device(&self) -> Option<&Arc<Device>> {
        self.opened().map(|o| &o.device)
    }

    pub fn stream(&self) -> Option<&Stream> {
        match self {
            Session::Configured(_, s) | Session::Streaming(_, s) => Some(s),
            _ => None,
        }
    }

    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Session::Configured(_, s) | Session::Streaming(_, s) => Some(s),
            _ => None,
        }
    }

    /// Stops the stream, if any, and frees its buffers; the device stays open and configured
    /// for nothing (READY, or PAUSED before negotiation).
    pub fn stop(&mut self) {
        *self = match std::mem::replace(self, Session::Closed) {
            Session::Configured(o, mut s) | Session::Streaming(o, mut s) => {
                s.stop();
                gst::debug!(CAT, "{}: Stream stopped", o.path());
                Session::Open(o)
            }
            other => other,
        };
    }

    /// The element stopped (READY): running time starts again at the next start, so where the
    /// last stream's timestamps ended, kept to go on after a loss of the device or its signal,
    /// no longer says anything. The next GAP events start from the new running time.
    pub fn forget_timeline(&mut self) {
        if let Session::Lost(gone) = self {
            gone.last_pts = None;
        }
        if let Some(absence) = self.opened_mut().and_then(|o| o.source.absent.as_mut()) {
            absence.last_pts = None;
        }
    }

    /// Stops the stream and frees its buffers, keeping its format: for other buffers.
    pub fn free_buffers(&mut self) {
        *self = match std::mem::replace(self, Session::Closed) {
            Session::Configured(o, mut s) | Session::Streaming(o, mut s) => {
                s.stop();
                Session::Configured(o, s)
            }
            other => other,
        };
    }

    /// Stops everything and closes the device.
    pub fn close(&mut self) {
        self.stop();
        *self = Session::Closed;
    }

    /// The device went away: release all of it and remember when, who it was and where its
    /// stream was; `error` is what an unplug posts without `reconnect`.
    pub fn lose(&mut self, error: gst::ErrorMessage) {
        let (asked, frame_duration, last_pts) = match self.stream() {
            Some(s) => (Some(s.asked.clone()), s.frame_duration, s.pts.last()),
            None => (None, None, None),
        };
        self.stop();
        if let Some(o) = self.opened() {
            *self = Session::Lost(Gone {
                path: o.path().to_string(),
                since: Instant::now(),
                identity: Some(o.identity.clone()),
                asked,
                frame_duration,
                last_pts,
                error,
            });
        }
    }

    /// The device's descriptor, when `rebuild(caps)` would set a format on it (they are not
    /// already its format); `None` when it would not, or no device is open.
    pub fn about_to_set(&self, caps: &gst::Caps) -> Option<i32> {
        if let Some(s) = self.stream()
            && (s.caps == *caps || s.asked == *caps)
        {
            return None;
        }
        Some(self.opened()?.device.as_fd().as_raw_fd())
    }

    /// Stop, free, configure: makes `caps` the session's format, unless it already is (a
    /// reconfigure that changed nothing keeps capturing into the same buffers rather than
    /// stopping the driver and dropping frames). Streaming starts again at the next frame.
    pub fn rebuild(&mut self, caps: &gst::Caps) -> Result<Rebuilt, gst::ErrorMessage> {
        if let Some(s) = self.stream()
            && (s.caps == *caps || s.asked == *caps)
        {
            return Ok(Rebuilt {
                caps: s.caps.clone(),
                latency_changed: false,
            });
        }
        let old_duration = self.stream().map(|s| s.frame_duration);
        if let Some(s) = self.stream() {
            gst::debug!(CAT, "Renegotiating from {} to {}", s.caps, caps);
        }
        self.stop();
        let Session::Open(mut opened) = std::mem::replace(self, Session::Closed) else {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Caps {} were set while the device is closed", caps)
            ));
        };
        let configured = opened.configure(caps);
        match configured {
            Ok(stream) => {
                let rebuilt = Rebuilt {
                    caps: stream.caps.clone(),
                    latency_changed: old_duration.is_some_and(|d| d != stream.frame_duration),
                };
                *self = Session::Configured(opened, stream);
                Ok(rebuilt)
            }
            Err(e) => {
                *self = Session::Open(opened);
                Err(e)
            }
        }
    }

    /// The properties that read the open device: `device-name`, `flags`, `device-fd`,
    /// `crop-bounds`, and `pixel-aspect-ratio` when none is set (v4l2src reads the device's
    /// then, once known, if the caps carry it). What each reads while closed is v4l2src's too.
    pub fn property(&self, name: &str) -> glib::Value {
        let opened = self.opened();
        match name {
            "device-name" => opened
                .map(|o| o.device.capability().card.clone())
                .to_value(),
            "flags" => opened
                .map_or(DeviceTypeFlags::empty(), |o| {
                    settings::device_type_flags(o.device.capability().device_caps)
                })
                .to_value(),
            "device-fd" => opened
                .map_or(settings::NO_FD, |o| o.device.as_fd().as_raw_fd())
                .to_value(),
            "crop-bounds" => {
                let bounds = opened.and_then(|o| o.crop_bounds).unwrap_or_default();
                let size = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
                gst::Array::new([
                    bounds.left,
                    bounds.top,
                    size(bounds.width),
                    size(bounds.height),
                ])
                .to_value()
            }
            "pixel-aspect-ratio" => opened
                .and_then(|o| o.geometry.par)
                .map(|p| format!("{}/{}", p.numer(), p.denom()))
                .to_value(),
            _ => unimplemented!("property {name}"),
        }
    }

    /// Starts streaming if it does not yet; returns the queue to capture from.
    /// A configured stream whose capture started outside `stream_on` (`import.rs`) is streaming.
    pub fn mark_streaming(&mut self) {
        *self = match std::mem::replace(self, Session::Closed) {
            Session::Configured(o, s) => Session::Streaming(o, s),
            other => other,
        };
    }

    pub fn stream_on(&mut self) -> Result<Arc<Queue>, gst::ErrorMessage> {
        if let Session::Streaming(_, Stream { queue: Some(q), .. }) = self {
            return Ok(Arc::clone(q));
        }
        let Session::Configured(o, s) = std::mem::replace(self, Session::Closed) else {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("No format was negotiated before capture")
            ));
        };
        let Some(queue) = s.queue.clone() else {
            *self = Session::Configured(o, s);
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("No buffers were allocated before capture")
            ));
        };
        if let Err(e) = queue.start() {
            *self = Session::Configured(o, s);
            return Err(errors::device_error("starting capture", &e));
        }
        gst::debug!(CAT, "{}: Streaming with {} buffers", o.path(), queue.len());
        *self = Session::Streaming(o, s);
        Ok(queue)
    }
}

/// The formats the device lists, their sizes not listed yet (see `Opened::probed`).
pub(super) fn list_formats(device: &Device) -> Result<Vec<v4l2::ProbedFormat>, gst::ErrorMessage> {
    device
        .enum_formats()
        .map_err(|e| errors::device_error("listing formats", &e))
}

impl Opened {
    /// The device's path, for log lines and messages.
    pub fn path(&self) -> &str {
        self.device.path().to_str().unwrap_or("(device)")
    }

    /// The geometry `settings` ask of this device: an error when it cannot crop as asked.
    pub fn decide_geometry(&self, settings: &Settings) -> Result<Geometry, gst::ErrorMessage> {
        let user_par = settings
            .pixel_aspect_ratio
            .as_deref()
            .and_then(caps::parse_pixel_aspect_ratio);
        Ok(Geometry {
            par: caps::caps_pixel_aspect_ratio(
                settings.force_aspect_ratio,
                user_par,
                self.device_par,
            ),
            crop: crop::decide(self.path(), self.crop_bounds, settings.crop)?,
        })
    }

    /// Takes `geometry`, forgetting the caps built for another.
    pub fn set_geometry(&mut self, geometry: Geometry) {
        if geometry != self.geometry {
            gst::debug!(CAT, "{}: {:?}", self.path(), geometry);
            self.geometry = geometry;
            self.caps = None;
        }
    }
}
