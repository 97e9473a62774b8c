//! A capture card's source while streaming: following a change of resolution, and keeping the
//! pipeline going while the signal is away (`no-signal`).
//!
//! Source changes come as `V4L2_EVENT_SOURCE_CHANGE` in the capture loop's own poll
//! (`Captured::SourceChanged`); the element then asks the receiver what it sees. New timings:
//! stop, set them, list the formats again and renegotiate through BaseSrc's `negotiate()`
//! (which runs allocation too), so downstream has the new caps before the first new frame.
//! No signal: stop, say so (one warning and `rustv4l2src-signal`), and wait on the device's
//! events, looking again now and then, with GAP events or black frames at the frame duration
//! meanwhile; when it returns, the same as a change. Timestamps go on from where they were.
//!
//! All of it runs in `create()`, on the streaming thread; `unlock()` ends a wait at once.
//! Nothing is posted while a lock is held.

use crate::rustv4l2src::alive::reconnect;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::{NoSignal, Settings};
use crate::rustv4l2src::face::stats::Stats;
use crate::rustv4l2src::knobs::source::{Absence, Look, Source};
use crate::rustv4l2src::shared::{CAT, lock, post_element_message};
use crate::rustv4l2src::stream::session::Session;
use crate::rustv4l2src::stream::timeline::{self, GapStep, Gaps};
use crate::v4l2::{Device, DvTimings, Poller, SignalLoss, Wait};
use gst::prelude::*;
use gst_base::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often to ask the receiver again while the signal is away, for drivers that raise no
/// event when it returns.
const LOOK_AGAIN: Duration = Duration::from_millis(250);
/// The pace of GAP events and black frames when the stream before had no frame rate.
const DEFAULT_FRAME: gst::ClockTime = gst::ClockTime::from_mseconds(40);

/// What following the source needs of the element.
pub(in crate::rustv4l2src) struct Signal<'a> {
    pub element: &'a gst_base::BaseSrc,
    pub session: &'a Mutex<Session>,
    pub stats: &'a Mutex<Stats>,
    pub poller: Arc<Poller>,
    pub settings: &'a Mutex<Settings>,
}

impl Signal<'_> {
    /// The driver says the source changed: look, and follow it.
    pub fn changed(&self) -> Result<(), gst::FlowError> {
        let Some((device, source)) = self.source() else {
            return Ok(());
        };
        match source.look(&device) {
            Ok(Look::Same) => {
                gst::debug!(CAT, obj = self.element, "Source change: same timings");
                Ok(())
            }
            Ok(Look::Changed(timings)) => self.follow(&device, timings.as_ref(), None),
            Ok(Look::Lost(loss)) => self.lose(&device, loss),
            // Gone: the next wait for a frame finds out and says so.
            Err(e) if e.is_disconnect() => Ok(()),
            Err(e) => Err(self.fail(errors::device_error("asking what the source sends", &e))),
        }
    }

    /// The signal went away: stop the stream and say so. With `no-signal=error`, the error.
    fn lose(&self, device: &Device, loss: SignalLoss) -> Result<(), gst::FlowError> {
        let mode = lock(self.settings).no_signal;
        {
            let mut session = lock(self.session);
            let (caps, frame_duration, last_pts) = match session.stream() {
                Some(s) => (Some(s.caps.clone()), s.frame_duration, s.pts.last()),
                None => (None, None, None),
            };
            session.stop();
            if let Some(o) = session.opened_mut() {
                o.source.absent = Some(Absence {
                    caps,
                    pictured: true,
                    frame_duration,
                    last_pts,
                    ..Absence::new(loss)
                });
            }
        }
        let path = device.path().to_string_lossy();
        announce_loss(self.element.upcast_ref(), &path, loss, mode);
        if mode == NoSignal::Error {
            return Err(self.fail(errors::no_signal(&path, loss.describe())));
        }
        Ok(())
    }

    /// No signal: waits for it, sending GAP events meanwhile (`no-signal=gap`) or returning a
    /// black frame when one is due (`black`); `Flushing` when `unlock()` ends the wait.
    pub fn wait(&self) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let mode = lock(self.settings).no_signal;
        // The driver raised an event since the receiver was last asked.
        let mut evented = false;
        loop {
            // Due GAP events or frames may keep this loop from waiting: look here too.
            if self.poller.is_flushing() {
                return Err(gst::FlowError::Flushing);
            }
            let Some((device, source)) = self.source() else {
                return Ok(None);
            };
            let Some(absence) = source.absent.clone() else {
                return Ok(None);
            };
            // Ask the receiver after an event, else every LOOK_AGAIN: not for every GAP event
            // or black frame pushed meanwhile.
            if evented || absence.looked.elapsed() >= LOOK_AGAIN {
                evented = false;
                self.update_absence(|a| a.looked = Instant::now());
                match source.look(&device) {
                    Ok(Look::Changed(timings)) => {
                        self.follow(&device, timings.as_ref(), Some(&absence))?;
                        return Ok(None);
                    }
                    Ok(Look::Lost(loss)) if loss != absence.loss => {
                        gst::info!(
                            CAT,
                            obj = self.element,
                            "Still no picture: {}",
                            loss.describe()
                        );
                        self.update_absence(|a| a.loss = loss);
                    }
                    Ok(_) => {}
                    Err(e) if e.is_disconnect() => return self.unplugged(&device, e),
                    Err(e) => {
                        return Err(
                            self.fail(errors::device_error("asking what the source sends", &e))
                        );
                    }
                }
            }
            let mut next = LOOK_AGAIN.saturating_sub(absence.looked.elapsed());
            if let Some(mut paced) = self.pace(&absence) {
                match self.due(&mut paced) {
                    GapStep::Push(ts) => {
                        let duration = paced.duration();
                        self.update_absence(|a| a.last_pts = Some(ts));
                        let black = match mode {
                            NoSignal::Black => self.black(&absence),
                            _ => None,
                        };
                        match black {
                            Some(mut frame) => {
                                let frame_mut = frame.make_mut();
                                frame_mut.set_pts(ts);
                                frame_mut.set_duration(duration);
                                return Ok(Some(frame));
                            }
                            None => {
                                gst::trace!(CAT, obj = self.element, "GAP at {}", ts);
                                timeline::push_gap(self.element, ts, duration);
                            }
                        }
                        continue;
                    }
                    GapStep::Wait(due) => next = next.min(due.into()),
                }
            }
            match self.poller.wait_event(&*device, device.path(), Some(next)) {
                Ok(Wait::Flushing) => return Err(gst::FlowError::Flushing),
                Ok(Wait::Event) => {
                    // The next look at the source says what they meant, and meets again
                    // whatever failed in reading them.
                    let _ = device.drain_source_changes();
                    evented = true;
                }
                Ok(_) => {}
                Err(e) if e.is_disconnect() || device.is_disconnected() => {
                    return self.unplugged(&device, e);
                }
                Err(e) => {
                    return Err(self.fail(errors::device_error("waiting for the signal", &e)));
                }
            }
        }
    }

    /// The device went away while its signal was: with `reconnect`, a loss like one while
    /// streaming (said, and waited out by the capture loop); else the error.
    fn unplugged(
        &self,
        device: &Device,
        e: crate::v4l2::Error,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let path = device.path().to_string_lossy().into_owned();
        let msg = errors::stream_failure(&path, Err(e.clone()));
        if !lock(self.settings).reconnect {
            return Err(self.fail(msg));
        }
        reconnect::lose(
            self.element.upcast_ref(),
            self.stats,
            self.session,
            &path,
            &e.to_string(),
            msg,
        );
        Ok(None)
    }

    /// Where GAP events or black frames go while the signal is away.
    fn pace(&self, absence: &Absence) -> Option<Gaps> {
        timeline::gaps_after(
            self.element,
            absence.last_pts,
            absence.frame_duration,
            DEFAULT_FRAME,
        )
    }

    fn due(&self, gaps: &mut Gaps) -> GapStep {
        match self.running_time() {
            Some(now) => gaps.step(now),
            None => GapStep::Wait(gaps.duration()),
        }
    }

    fn running_time(&self) -> Option<gst::ClockTime> {
        timeline::running_time(self.element)
    }

    /// The black frame of the caps from before, made once per loss of signal (none for
    /// compressed caps).
    fn black(&self, absence: &Absence) -> Option<gst::Buffer> {
        if let Some(black) = &absence.black {
            return Some(black.clone());
        }
        let black = black_frame(absence.caps.as_ref()?)?;
        self.update_absence(|a| a.black = Some(black.clone()));
        Some(black)
    }

    /// The open device and what the session knows of its source, taken out of the lock.
    fn source(&self) -> Option<(Arc<Device>, Source)> {
        let session = lock(self.session);
        let opened = session.opened()?;
        Some((Arc::clone(&opened.device), opened.source.clone()))
    }

    /// Changes what the session keeps of the signal's absence, if it is still absent.
    fn update_absence(&self, change: impl FnOnce(&mut Absence)) {
        if let Some(o) = lock(self.session).opened_mut()
            && let Some(a) = &mut o.source.absent
        {
            change(a);
        }
    }

    /// New timings, or the signal back (`absence`): stop, set them, renegotiate, and say what
    /// changed. Timestamps go on after the last one pushed.
    fn follow(
        &self,
        device: &Device,
        timings: Option<&DvTimings>,
        absence: Option<&Absence>,
    ) -> Result<(), gst::FlowError> {
        let element = self.element.upcast_ref::<gst::Element>();
        // The caps negotiated while waiting for a first picture were no picture's.
        let before = self
            .element
            .src_pad()
            .current_caps()
            .filter(|_| absence.is_none_or(|a| a.pictured));
        let (floor, old_duration) = {
            let mut session = lock(self.session);
            let floor = match session.stream() {
                Some(s) => s.pts.last(),
                None => absence.and_then(|a| a.last_pts),
            };
            let old_duration = session
                .stream()
                .map(|s| s.frame_duration)
                .or(absence.map(|a| a.frame_duration));
            session.stop();
            let Some(opened) = session.opened_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if let Err(msg) = opened.retime(timings) {
                drop(session);
                if device.is_disconnected() {
                    let e = crate::v4l2::Error::new(
                        "VIDIOC_S_DV_TIMINGS",
                        device.path(),
                        nix::errno::Errno::ENODEV,
                    );
                    return self.unplugged(device, e).map(|_| ());
                }
                return Err(self.fail(msg));
            }
            (floor, old_duration)
        };
        let path = device.path().to_string_lossy().into_owned();
        gst::info!(CAT, obj = element, "{}: source now {:?}", path, timings);
        if !self.element.negotiate() {
            gst::warning!(
                CAT,
                obj = element,
                "Renegotiation after the source change failed"
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        let latency_changed = {
            let mut session = lock(self.session);
            match session.stream_mut() {
                Some(stream) => {
                    if let Some(floor) = floor {
                        stream.pts.raise_to(floor);
                    }
                    old_duration.is_some_and(|d| d != stream.frame_duration)
                }
                None => false,
            }
        };
        if latency_changed {
            let _ = element.post_message(gst::message::Latency::builder().src(element).build());
        }
        let after = self.element.src_pad().current_caps();
        if let Some(absence) = absence {
            announce_return(element, &path, absence.since.elapsed());
        }
        if let (Some(before), Some(after)) = (&before, &after)
            && before != after
        {
            post_element_message(element, source_changed(&path, before, after));
        }
        Ok(())
    }

    /// Posts `msg` (no lock is held) and gives the flow error that goes with it.
    fn fail(&self, msg: gst::ErrorMessage) -> gst::FlowError {
        self.element.post_error_message(msg);
        gst::FlowError::Error
    }
}

/// At open: a source without a signal is said so, and with `no-signal=error` it is an error.
pub(in crate::rustv4l2src) fn at_start(
    element: &gst::Element,
    settings: &Settings,
    absent: Option<SignalLoss>,
) -> Result<(), gst::ErrorMessage> {
    let Some(loss) = absent else { return Ok(()) };
    announce_loss(element, &settings.device, loss, settings.no_signal);
    if settings.no_signal == NoSignal::Error {
        return Err(errors::no_signal(&settings.device, loss.describe()));
    }
    Ok(())
}

/// One warning naming the device and the cause, and `rustv4l2src-signal` with `present=false`.
pub(super) fn announce_loss(element: &gst::Element, path: &str, loss: SignalLoss, mode: NoSignal) {
    let then = match mode {
        NoSignal::Gap => "GAP events are sent until it returns (no-signal=gap)",
        NoSignal::Black => "black frames are sent until it returns (no-signal=black)",
        NoSignal::Error => "stopping (no-signal=error)",
    };
    gst::element_warning!(
        element,
        gst::ResourceError::Read,
        (
            "The source on device '{}' has {}: {}.",
            path,
            match loss {
                SignalLoss::NoSignal => "no signal",
                SignalLoss::NoLock => "a signal the receiver cannot lock to (no lock)",
                SignalLoss::OutOfRange => "timings out of the receiver's range",
            },
            then
        )
    );
    post_element_message(
        element,
        gst::Structure::builder("rustv4l2src-signal")
            .field("device", path)
            .field("present", false)
            .field("reason", loss.describe())
            .build(),
    );
}

fn announce_return(element: &gst::Element, path: &str, away: Duration) {
    gst::info!(CAT, obj = element, "{}: signal back after {:?}", path, away);
    post_element_message(
        element,
        gst::Structure::builder("rustv4l2src-signal")
            .field("device", path)
            .field("present", true)
            .field("seconds-away", away.as_secs_f64())
            .build(),
    );
}

/// `rustv4l2src-source-changed`: the picture before and after, as an application reads them.
fn source_changed(path: &str, before: &gst::Caps, after: &gst::Caps) -> gst::Structure {
    let mut s = gst::Structure::builder("rustv4l2src-source-changed")
        .field("device", path)
        .build();
    for (prefix, caps) in [("old-", before), ("", after)] {
        let Some(st) = caps.structure(0) else {
            continue;
        };
        for field in ["width", "height", "framerate", "interlace-mode"] {
            if let Ok(value) = st.value(field) {
                s.set_value(format!("{prefix}{field}").as_str(), value.clone());
            } else if field == "interlace-mode" {
                s.set(format!("{prefix}{field}").as_str(), "progressive");
            }
        }
    }
    s
}

/// A black frame of raw video `caps` (other media: none, and GAP events instead).
fn black_frame(caps: &gst::Caps) -> Option<gst::Buffer> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    let argb =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Argb, info.width(), info.height())
            .fps(info.fps())
            .interlace_mode(info.interlace_mode())
            .build()
            .ok()?;
    let mut source = gst::Buffer::with_size(argb.size()).ok()?;
    {
        let mut map = source.get_mut()?.map_writable().ok()?;
        for pixel in map.as_mut_slice().chunks_exact_mut(4) {
            pixel.copy_from_slice(&[0xff, 0, 0, 0]);
        }
    }
    let source = gst_video::VideoFrame::from_buffer_readable(source, &argb).ok()?;
    let black = gst::Buffer::with_size(info.size()).ok()?;
    let mut frame = gst_video::VideoFrame::from_buffer_writable(black, &info).ok()?;
    let converter = gst_video::VideoConverter::new(&argb, &info, None).ok()?;
    converter.frame(&source, &mut frame);
    Some(frame.into_buffer())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_frames_are_black_in_the_stream_s_own_format() {
        gst::init().unwrap();
        let caps: gst::Caps = "video/x-raw, format=YUY2, width=8, height=2, framerate=30/1"
            .parse()
            .unwrap();
        let frame = black_frame(&caps).unwrap();
        let map = frame.map_readable().unwrap();
        assert_eq!(map.len(), 8 * 2 * 2);
        // Y 16, U and V 128: video-range black.
        for yuyv in map.chunks_exact(4) {
            assert_eq!(yuyv, [16, 128, 16, 128]);
        }
        let jpeg: gst::Caps = "image/jpeg, width=8, height=2".parse().unwrap();
        assert!(black_frame(&jpeg).is_none());
    }

    #[test]
    fn the_change_message_has_both_pictures() {
        gst::init().unwrap();
        let before: gst::Caps = "video/x-raw, format=YUY2, width=1280, height=720, framerate=60/1"
            .parse()
            .unwrap();
        let after: gst::Caps = "video/x-raw, format=YUY2, width=720, height=576, \
             framerate=50/1, interlace-mode=interleaved"
            .parse()
            .unwrap();
        let s = source_changed("/dev/video0", &before, &after);
        assert_eq!(s.get::<i32>("old-width").unwrap(), 1280);
        assert_eq!(s.get::<i32>("height").unwrap(), 576);
        assert_eq!(
            s.get::<gst::Fraction>("framerate").unwrap(),
            gst::Fraction::new(50, 1)
        );
        assert_eq!(s.get::<&str>("old-interlace-mode").unwrap(), "progressive");
        assert_eq!(s.get::<&str>("interlace-mode").unwrap(), "interleaved");
    }
}
