//! The source on a capture card's input, as the session knows it: whether the input works with
//! DV timings (HDMI, SDI), whether the driver raises source-change events, and whether a
//! signal is there. At open the element asks the receiver what it sees and sets that before
//! it lists formats, so the caps follow the source and not stale timings; on a source change it
//! does so again (`signal.rs` drives that).
//!
//! Knows the device and the caps module's `Native`, not the element.

use super::session::Opened;
use super::shared::CAT;
use crate::caps;
use crate::v4l2::{self, Detected, Device, DvTimings, SignalLoss};
use std::time::Instant;

/// What the session knows of the input's source.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// The input takes DV timings: the receiver can say what it sees.
    pub dv: bool,
    /// The timings the receiver was set to, when known.
    pub timings: Option<DvTimings>,
    /// The signal is away: since when, why, and where the stream was.
    pub absent: Option<Absence>,
}

/// A source that has no signal now.
#[derive(Debug, Clone)]
pub(super) struct Absence {
    pub loss: SignalLoss,
    pub since: Instant,
    /// The caps of the stream before, if it streamed: black frames are made of them.
    pub caps: Option<gst::Caps>,
    pub frame_duration: Option<gst::ClockTime>,
    /// The last PTS pushed (a frame, a GAP or a black frame): later ones come after it.
    pub last_pts: Option<gst::ClockTime>,
}

/// What a look at the source found.
#[derive(Debug, Clone, Copy)]
pub(super) enum Look {
    /// The same source as before: nothing to do.
    Same,
    /// A source with other timings than those set (or a signal after none).
    Changed(DvTimings),
    Lost(SignalLoss),
}

impl Source {
    /// Subscribes to source changes and asks the receiver what it sees, setting the detected
    /// timings; before the formats are listed, which depend on them.
    pub fn at_open(device: &Device) -> Result<Source, v4l2::Error> {
        // A driver with no inputs to choose has only the first.
        let input = device.g_input().unwrap_or(0);
        let subscribed = device.subscribe_source_change(input)?;
        // Without events (a driver that raises none) a change shows only as frames of another
        // size or none at all: the element cannot follow it.
        let mut source = Source {
            dv: false,
            timings: None,
            absent: None,
        };
        match device.query_dv_timings()? {
            Detected::NotDv => {}
            Detected::Timings(detected) => {
                source.dv = true;
                apply(device, &detected)?;
                source.timings = Some(detected);
            }
            Detected::NoSignal(loss) => {
                source.dv = true;
                source.absent = Some(Absence {
                    loss,
                    since: Instant::now(),
                    caps: None,
                    frame_duration: None,
                    last_pts: None,
                });
            }
        }
        gst::debug!(
            CAT,
            "{}: input {}, DV {}, source-change events {}, timings {:?}, absent {:?}",
            device.path().display(),
            input,
            source.dv,
            subscribed,
            source.timings,
            source.absent.as_ref().map(|a| a.loss)
        );
        Ok(source)
    }

    /// What the receiver sees now, against what it was set to.
    pub fn look(&self, device: &Device) -> Result<Look, v4l2::Error> {
        if !self.dv {
            return Ok(Look::Same);
        }
        Ok(match device.query_dv_timings()? {
            Detected::Timings(t) => match &self.timings {
                Some(set) if self.absent.is_none() && set.same_as(&t) => Look::Same,
                _ => Look::Changed(t),
            },
            Detected::NoSignal(loss) => Look::Lost(loss),
            Detected::NotDv => Look::Same,
        })
    }

    /// The source's own picture, to prefer in negotiation.
    pub fn native(&self) -> Option<caps::Native> {
        let t = self.timings.filter(|_| self.absent.is_none())?;
        Some(native_of(&t))
    }
}

/// Sets `timings` on the receiver unless they are set already (a driver refuses a change while
/// buffers exist, and some reset their pipeline on every set).
fn apply(device: &Device, timings: &DvTimings) -> Result<(), v4l2::Error> {
    match device.g_dv_timings() {
        Ok(current) if current.same_as(timings) => Ok(()),
        _ => device.s_dv_timings(timings),
    }
}

/// What DV timings make of the picture.
pub(super) fn native_of(t: &DvTimings) -> caps::Native {
    caps::Native {
        width: t.width(),
        height: t.height(),
        rate: t.frame_interval().and_then(|i| {
            (i.numerator > 0 && i.denominator > 0).then(|| {
                gst::Fraction::new(
                    i32::try_from(i.denominator).unwrap_or(i32::MAX),
                    i32::try_from(i.numerator).unwrap_or(i32::MAX),
                )
            })
        }),
        interlaced: t.interlaced(),
    }
}

impl Opened {
    /// Makes `timings` the receiver's (the stream must be stopped and its buffers freed) and
    /// lists the formats again, which follow them: the next negotiation starts afresh.
    pub fn retime(&mut self, timings: &DvTimings) -> Result<(), gst::ErrorMessage> {
        apply(&self.device, timings)
            .map_err(|e| super::errors::device_error("setting the detected DV timings", &e))?;
        self.probed = super::session::list_formats(&self.device)?;
        self.probed_intervals.clear();
        self.caps = None;
        self.source.timings = Some(*timings);
        self.source.absent = None;
        self.native = self.source.native();
        gst::info!(CAT, "{}: Source timings now {:?}", self.path(), timings);
        Ok(())
    }
}
