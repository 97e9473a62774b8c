//! Negotiation against the open device: what it offers as caps, the first of its formats and
//! sizes downstream accepts, and setting the chosen caps on it (`VIDIOC_S_FMT`, `S_PARM`). The
//! translation itself is `crate::caps`'s; this is the part that asks the driver.

use super::session::{Opened, Stream, list_formats};
use super::timeline::{self, Increasing, Sequence};
use crate::caps;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::Settings;
use crate::rustv4l2src::knobs::crop;
use crate::rustv4l2src::knobs::source;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, DvTimings};

impl Opened {
    /// Lists the sizes of every format the element can capture that `wanted` may accept
    /// something of (of every one, for `None`), once per format. A format whose caps at any
    /// size downstream refuses would offer nothing downstream takes, whatever its sizes.
    fn list_sizes_for(&mut self, wanted: Option<&gst::Caps>) {
        for f in 0..self.probed.len() {
            let fourcc = self.probed[f].fourcc;
            if self.sizes_listed.contains(&f)
                || caps::entry(fourcc).is_none()
                || wanted.is_some_and(|w| {
                    !caps::any_size_caps(fourcc, self.geometry.par).can_intersect(w)
                })
            {
                continue;
            }
            match self.device.list_sizes(fourcc) {
                Ok(sizes) => {
                    self.probed[f].sizes = sizes;
                    self.sizes_listed.insert(f);
                }
                // Left unlisted, so asked again next time: until then it offers no size.
                Err(e) => gst::warning!(CAT, "{}: Listing sizes of {}: {}", self.path(), fourcc, e),
            }
        }
    }

    /// Fills in the frame intervals of one listed size, once.
    fn probe_intervals(&mut self, format: usize, size: usize) -> Result<(), v4l2::Error> {
        if !self.probed_intervals.insert((format, size)) {
            return Ok(());
        }
        let fourcc = self.probed[format].fourcc;
        self.device
            .fill_intervals(fourcc, &mut self.probed[format].sizes[size])
    }

    /// Everything the device offers, probing whatever intervals are not known yet.
    pub fn device_caps(&mut self) -> gst::Caps {
        if let Some(caps) = &self.caps {
            return caps.clone();
        }
        self.list_sizes_for(None);
        for c in caps::candidates(&self.probed) {
            if let Err(e) = self.probe_intervals(c.format, c.size) {
                gst::warning!(CAT, "{}: Probing frame intervals: {}", self.path(), e);
            }
        }
        let all = cropped(
            caps::probed_to_caps_with_par(&self.probed, self.geometry.par),
            self.geometry.crop,
        );
        gst::debug!(CAT, "{}: Device caps: {}", self.path(), all);
        self.caps = Some(all.clone());
        all
    }

    /// `preferred`, for the geometry `settings` ask for now (the properties may have changed
    /// since open); an error when the device cannot crop as asked.
    pub fn preferred_for(
        &mut self,
        settings: &Settings,
        peer: &gst::Caps,
    ) -> Result<Option<gst::Caps>, gst::ErrorMessage> {
        let geometry = self.decide_geometry(settings)?;
        self.set_geometry(geometry);
        Ok(self.preferred(peer))
    }

    /// The listed format and size to capture among those downstream accepts (see
    /// [`caps::choose`]), as its caps with downstream's restrictions applied; within
    /// `caps_before` first, if set (once: they are a device's stream from before it went away).
    /// Sizes are listed only for the formats downstream may accept, and frame intervals probed
    /// only for the sizes the rule has to look at: larger sizes first, until one reaches 30 fps.
    pub fn preferred(&mut self, peer: &gst::Caps) -> Option<gst::Caps> {
        if let Some(before) = self.caps_before.take() {
            let narrowed = before.intersect(peer);
            if !narrowed.is_empty()
                && let Some(common) = self.choose_within(&narrowed)
            {
                gst::debug!(
                    CAT,
                    "{}: The caps from before are still offered",
                    self.path()
                );
                return Some(common);
            }
        }
        // The source's own size and rate first (and its size at another rate, which a driver
        // may list differently), then anything the driver can scale to.
        if let Some(native) = self.source.native() {
            for with_rate in [true, false] {
                if with_rate && native.rate.is_none() {
                    continue;
                }
                if let Some(common) = self.choose_narrowed(peer, Some((native, with_rate))) {
                    gst::debug!(CAT, "{}: The source's own {:?}", self.path(), native);
                    return Some(common);
                }
            }
        }
        self.choose_within(peer)
    }

    fn choose_within(&mut self, peer: &gst::Caps) -> Option<gst::Caps> {
        self.choose_narrowed(peer, None)
    }

    /// The rule's choice among the listed sizes, each narrowed to the source's own size (and
    /// rate) when `native` says so.
    fn choose_narrowed(
        &mut self,
        peer: &gst::Caps,
        native: Option<(caps::Native, bool)>,
    ) -> Option<gst::Caps> {
        self.list_sizes_for(Some(peer));
        let (par, crop) = (self.geometry.par, self.geometry.crop);
        let size_caps = |format: &v4l2::ProbedFormat, size| {
            let all = cropped(caps::size_caps(format, size, par), crop);
            match native {
                Some((native, with_rate)) => caps::restrict_to_native(&all, &native, with_rate),
                None => all,
            }
        };
        let candidates = caps::candidates(&self.probed);
        let mut probed = 0;
        let chosen = caps::choose(&candidates, |c| {
            let (f, size) = (c.format, c.size);
            if !self.probed_intervals.contains(&(f, size))
                && !size_caps(&self.probed[f], size).can_intersect(peer)
            {
                return None;
            }
            probed += 1;
            if let Err(e) = self.probe_intervals(f, size) {
                gst::warning!(CAT, "{}: Probing frame intervals: {}", self.path(), e);
                return None;
            }
            Some(
                size_caps(&self.probed[f], size)
                    .intersect_with_mode(peer, gst::CapsIntersectMode::First),
            )
        });
        gst::debug!(
            CAT,
            "{}: Looked at {} of {} listed sizes: {:?}",
            self.path(),
            probed,
            candidates.len(),
            chosen
        );
        chosen
    }

    /// `VIDIOC_S_SELECTION` (the crop), `VIDIOC_S_FMT` and `S_PARM` (the rate) for fixed
    /// caps; the stream they make.
    pub fn configure(&mut self, new_caps: &gst::Caps) -> Result<Stream, gst::ErrorMessage> {
        // The caps may come from anywhere (`set_caps`, a reconnect): the sizes of the formats
        // that could give them must be known to check that the device offers them.
        self.list_sizes_for(Some(new_caps));
        let path = self.path();
        let device = &self.device;
        let request = caps::caps_to_request(new_caps, &self.probed)
            .map_err(|reason| errors::negotiation(path, new_caps, &reason))?;
        let asked = request.format_request();
        // v4l2src's order: the crop first, as it bounds the sizes the driver then allows.
        crop::apply(device, self.geometry.crop)?;
        let fmt = device
            .s_fmt(&asked)
            .map_err(|e| errors::device_error("setting the format", &e))?;
        // A driver that chose one field per buffer by itself counts a field's rows.
        let rows = if fmt.field == v4l2::V4L2_FIELD_ALTERNATE && asked.field != fmt.field {
            fmt.height.saturating_mul(2)
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
                    "{}: Frame interval {}/{} (asked {}/{})",
                    path,
                    got.numerator,
                    got.denominator,
                    interval.numerator,
                    interval.denominator
                ),
                // Many drivers fix the rate themselves; the caps still tell the truth about it.
                Err(e) => gst::debug!(CAT, "{}: Could not set the frame rate: {}", path, e),
            }
        }
        // Only plain INTERLACED leaves the field order to the TV standard.
        let std = if fmt.field == v4l2::V4L2_FIELD_INTERLACED {
            device.g_std().unwrap_or_else(|e| {
                gst::debug!(CAT, "{}: No TV standard: {}", path, e);
                None
            })
        } else {
            None
        };
        let (settled, info) = caps::settle(new_caps, &request, &fmt, std)
            .map_err(|reason| errors::negotiation(path, new_caps, &reason))?;
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
        let frame_duration = timeline::frame_duration(
            info.fps(),
            info.interlace_mode() == gst_video::VideoInterlaceMode::Alternate,
        );
        gst::debug!(CAT, "{}: Format set: {:?}; caps {}", path, fmt, settled);
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
            video_meta: false,
            readable_as_is,
            needs_video_meta,
            sequence: Sequence::default(),
            pts: Increasing::default(),
            copy_pool: None,
            pool: None,
            clock_kind: None,
            refusals_seen: 0,
            driver_overwrites: false,
            reading: None,
            import: None,
        })
    }
}

/// `caps` of the cropped size only, when cropping.
impl Opened {
    /// Makes `timings` the receiver's, if any (the stream must be stopped and its buffers
    /// freed) and lists the formats again, which follow them: the next negotiation starts
    /// afresh.
    pub fn retime(&mut self, timings: Option<&DvTimings>) -> Result<(), gst::ErrorMessage> {
        if let Some(timings) = timings {
            source::apply(&self.device, timings)
                .map_err(|e| errors::device_error("setting the detected DV timings", &e))?;
            self.source.timings = Some(*timings);
        }
        self.probed = list_formats(&self.device)?;
        self.sizes_listed.clear();
        self.probed_intervals.clear();
        self.caps = None;
        self.source.absent = None;
        gst::info!(
            CAT,
            "{}: Source now {:?}",
            self.path(),
            self.source.native()
        );
        Ok(())
    }
}

fn cropped(caps: gst::Caps, crop: Option<v4l2::Rect>) -> gst::Caps {
    match crop {
        Some(rect) => caps::restrict_size(&caps, rect.width, rect.height),
        None => caps,
    }
}
