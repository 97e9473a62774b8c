//! The source on a capture card's input, as the session knows it: whether the input works with
//! DV timings (HDMI, SDI), whether the driver raises source-change events, and whether a
//! signal is there. At open the element asks the receiver what it sees and sets that before
//! it lists formats, so the caps follow the source and not stale timings; on a source change it
//! does so again (`signal.rs` drives that).
//!
//! Knows the device and the caps module's `Native`, not the element.

use crate::caps;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, Detected, Device, DvTimings, SignalLoss};
use std::time::Instant;

/// What the session knows of the input's source.
#[derive(Debug, Clone)]
pub(in crate::rustv4l2src) struct Source {
    /// The input in use.
    pub input: u32,
    /// The input takes DV timings: the receiver can say what it sees.
    pub dv: bool,
    /// The norm's picture, on an analog input.
    pub norm: Option<caps::Native>,
    /// The timings the receiver was set to, when known.
    pub timings: Option<DvTimings>,
    /// The signal is away: since when, why, and where the stream was.
    pub absent: Option<Absence>,
}

/// A source that has no signal now.
#[derive(Debug, Clone)]
pub(in crate::rustv4l2src) struct Absence {
    pub loss: SignalLoss,
    pub since: Instant,
    /// The caps downstream has: the stream's before the loss, or, started without a signal,
    /// those negotiated for what the receiver is set to. Black frames are made of them.
    pub caps: Option<gst::Caps>,
    /// A picture came before the loss: its return may change the caps (and says so), where
    /// the first picture after a start without one simply replaces the caps negotiated
    /// meanwhile.
    pub pictured: bool,
    pub frame_duration: Option<gst::ClockTime>,
    /// The last PTS pushed (a frame, a GAP or a black frame): later ones come after it.
    pub last_pts: Option<gst::ClockTime>,
    /// The black frame of `caps` (`no-signal=black`), made on first need.
    pub black: Option<gst::Buffer>,
    /// When the receiver was last asked what it sees.
    pub looked: Instant,
}

impl Absence {
    /// A loss found just now (by asking the receiver).
    pub fn new(loss: SignalLoss) -> Absence {
        let now = Instant::now();
        Absence {
            loss,
            since: now,
            looked: now,
            caps: None,
            pictured: false,
            frame_duration: None,
            last_pts: None,
            black: None,
        }
    }
}

/// What an analog input's status bits say is missing: no signal at all, or one the decoder
/// cannot lock to.
fn status_loss(status: u32) -> Option<SignalLoss> {
    use crate::v4l2::input_ioctls::*;
    if status & (V4L2_IN_ST_NO_POWER | V4L2_IN_ST_NO_SIGNAL | V4L2_IN_ST_NO_CARRIER) != 0 {
        Some(SignalLoss::NoSignal)
    } else if status
        & (V4L2_IN_ST_NO_H_LOCK
            | V4L2_IN_ST_NO_V_LOCK
            | V4L2_IN_ST_NO_STD_LOCK
            | V4L2_IN_ST_NO_SYNC)
        != 0
    {
        Some(SignalLoss::NoLock)
    } else {
        None
    }
}

/// What a look at the source found.
#[derive(Debug, Clone, Copy)]
pub(in crate::rustv4l2src) enum Look {
    /// The same source as before: nothing to do.
    Same,
    /// A source with other timings than those set (`None`: an analog source), or a signal
    /// after none.
    Changed(Option<DvTimings>),
    Lost(SignalLoss),
}

impl Source {
    /// Subscribes to source changes and asks the receiver what it sees, setting the detected
    /// timings; before the formats are listed, which depend on them.
    /// `input` is the input in use; `norm` the picture of the norm it was set to, if analog.
    pub fn at_open(
        device: &Device,
        input: u32,
        norm: Option<caps::Native>,
    ) -> Result<Source, v4l2::Error> {
        // None of this may keep a device from opening: a driver answering these ioctls in a
        // way not foreseen is a device whose source is not followed, not one that fails.
        let subscribed = match device.subscribe_source_change(input) {
            Ok(subscribed) => subscribed,
            Err(e) if e.is_disconnect() => return Err(e),
            Err(e) => {
                gst::debug!(
                    CAT,
                    "{}: No source-change events: {}",
                    device.path().display(),
                    e
                );
                false
            }
        };
        // Without events (a driver that raises none) a change shows only as frames of another
        // size or none at all: the element cannot follow it.
        let mut source = Source {
            input,
            dv: false,
            norm,
            timings: None,
            absent: None,
        };
        let detected = match device.query_dv_timings() {
            Ok(detected) => detected,
            Err(e) if e.is_disconnect() => return Err(e),
            Err(e) => {
                gst::warning!(
                    CAT,
                    "{}: Cannot ask what the source sends: {}",
                    device.path().display(),
                    e
                );
                Detected::NotDv
            }
        };
        match detected {
            Detected::NotDv => {
                if let Some(loss) = source.analog_loss(device) {
                    source.absent = Some(Absence::new(loss));
                }
            }
            Detected::Timings(detected) => {
                source.dv = true;
                if let Err(e) = apply(device, &detected) {
                    // Busy elsewhere, say: capture what the receiver is set to.
                    gst::warning!(
                        CAT,
                        "{}: Keeping the receiver's timings: {}",
                        device.path().display(),
                        e
                    );
                }
                source.timings = Some(detected);
            }
            Detected::NoSignal(loss) => {
                source.dv = true;
                source.absent = Some(Absence::new(loss));
                // What the receiver is set to: the picture to wait for the signal with.
                source.timings = device.g_dv_timings().ok();
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
        if self.analog() {
            return Ok(match (self.analog_loss(device), &self.absent) {
                (Some(loss), _) => Look::Lost(loss),
                (None, Some(_)) => Look::Changed(None),
                (None, None) => Look::Same,
            });
        }
        if !self.dv {
            return Ok(Look::Same);
        }
        Ok(match device.query_dv_timings()? {
            Detected::Timings(t) => match &self.timings {
                Some(set) if self.absent.is_none() && set.same_as(&t) => Look::Same,
                _ => Look::Changed(Some(t)),
            },
            Detected::NoSignal(loss) => Look::Lost(loss),
            Detected::NotDv => Look::Same,
        })
    }

    /// The input takes analog norms: its status says whether a signal is there.
    fn analog(&self) -> bool {
        self.norm.is_some()
    }

    /// On an analog input, what its status says is missing (`VIDIOC_ENUMINPUT`).
    fn analog_loss(&self, device: &Device) -> Option<SignalLoss> {
        if !self.analog() {
            return None;
        }
        match device.enum_input(self.input) {
            Ok(input) => status_loss(input.status),
            Err(e) => {
                gst::debug!(CAT, "{}: Input status: {}", device.path().display(), e);
                None
            }
        }
    }

    /// The source's own picture, to prefer in negotiation; without a signal, the picture the
    /// receiver is set to.
    pub fn native(&self) -> Option<caps::Native> {
        self.timings.as_ref().map(native_of).or(self.norm)
    }
}

/// Sets `timings` on the receiver unless they are set already (a driver refuses a change while
/// buffers exist, and some reset their pipeline on every set).
pub(in crate::rustv4l2src) fn apply(
    device: &Device,
    timings: &DvTimings,
) -> Result<(), v4l2::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::input_ioctls::*;

    #[test]
    fn an_analog_input_s_status_says_what_is_missing() {
        assert_eq!(status_loss(0), None);
        assert_eq!(
            status_loss(V4L2_IN_ST_NO_SIGNAL),
            Some(SignalLoss::NoSignal)
        );
        assert_eq!(status_loss(V4L2_IN_ST_NO_POWER), Some(SignalLoss::NoSignal));
        assert_eq!(status_loss(V4L2_IN_ST_NO_H_LOCK), Some(SignalLoss::NoLock));
        assert_eq!(status_loss(V4L2_IN_ST_NO_SYNC), Some(SignalLoss::NoLock));
        // Colour and flips say nothing of the signal.
        assert_eq!(status_loss(V4L2_IN_ST_NO_COLOR | V4L2_IN_ST_HFLIP), None);
    }
}
