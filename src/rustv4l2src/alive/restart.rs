//! A stream the driver declared failed, restarted (`reconnect=true`): vb2's queue error, where
//! `VIDIOC_DQBUF` and `VIDIOC_QBUF` answer EIO and poll says POLLERR while the device is still
//! there (vivid's `inject_fatal_streaming_error`, a driver that lost its DMA or its sensor).
//! The queue stays failed until the stream is stopped, so the element stops it, frees its
//! buffers and configures the device again through BaseSrc's `negotiate()` (which runs the
//! element's negotiation and allocation, as a source change does: `Session::rebuild`), and
//! streaming starts again at the next frame. Frames held downstream stay valid: the old queue
//! is orphaned, as in any rebuild.
//!
//! On the bus: one warning naming the device and the cause, and the element message
//! `rustv4l2src-stream-restarted`. Downstream gets GAP events for the frame periods that passed
//! without a frame, and PTS go on increasing from before. A driver that fails over and over is
//! not restarted for ever: past `BUDGET` restarts within `WINDOW`, the error.
//!
//! All of it runs in `create()`, on the streaming thread. Nothing is posted while a lock is
//! held.

use super::reconnect;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::stats::Stats;
use crate::rustv4l2src::shared::{CAT, lock, post_element_message};
use crate::rustv4l2src::stream::session::Session;
use crate::rustv4l2src::stream::timeline::{self, GapStep};
use gst::prelude::*;
use gst_base::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many restarts within any `WINDOW`: a driver that fails now and then (once an
/// hour, or a burst of a few) is restarted for ever; one that fails at every start is not.
pub(super) const BUDGET: usize = 5;
pub(super) const WINDOW: Duration = Duration::from_secs(60);
/// The GAP length when the stream had no fixed frame rate.
const DEFAULT_GAP: gst::ClockTime = gst::ClockTime::from_mseconds(100);

/// What a restart needs of the element.
pub(in crate::rustv4l2src) struct Restart<'a> {
    pub element: &'a gst_base::BaseSrc,
    pub session: &'a Mutex<Session>,
    pub stats: &'a Mutex<Stats>,
}

impl Restart<'_> {
    /// The stream on `path` failed as `reason` says: restart it, or give up with the error.
    pub fn restart(&self, path: &str, reason: &str) -> Result<(), gst::FlowError> {
        let element = self.element.upcast_ref::<gst::Element>();
        let allowed = lock(self.stats).restart_allowed(Instant::now(), WINDOW, BUDGET);
        if !allowed {
            let msg = errors::restarts_exhausted(path, reason, BUDGET, WINDOW);
            lock(self.session).lose(msg.clone());
            element.post_error_message(msg);
            return Err(gst::FlowError::Error);
        }
        let restarts = lock(self.stats).restarts;
        gst::element_warning!(
            element,
            gst::ResourceError::Read,
            (
                "Device '{}' failed its stream ({}). Restarting it (reconnect=true).",
                path,
                reason
            )
        );
        post_element_message(
            element,
            gst::Structure::builder("rustv4l2src-stream-restarted")
                .field("device", path)
                .field("reason", reason)
                .field("restarts", restarts)
                .build(),
        );
        let (last_pts, frame_duration) = {
            let mut session = lock(self.session);
            let kept = session
                .stream()
                .map(|s| (s.pts.last(), s.frame_duration))
                .unwrap_or((None, None));
            session.stop();
            kept
        };
        gst::info!(CAT, obj = element, "{}: restarting the stream", path);
        if !self.element.negotiate() {
            return self.not_restarted(path);
        }
        // The frame periods that passed without a frame, as GAP events, then PTS after them.
        let mut floor = last_pts;
        if let (Some(mut gaps), Some(now)) = (
            timeline::gaps_after(self.element, last_pts, frame_duration, DEFAULT_GAP),
            timeline::running_time(self.element),
        ) {
            while let GapStep::Push(ts) = gaps.step(now) {
                gst::trace!(CAT, obj = element, "GAP at {}", ts);
                timeline::push_gap(self.element, ts, gaps.duration());
                // The next frame's PTS (its start) may lie a little before the end of this
                // GAP, which covered time up to now: it comes at the GAP's end at the earliest.
                floor = Some(ts + gaps.duration() - gst::ClockTime::from_nseconds(1));
            }
        }
        if let Some(floor) = floor
            && let Some(stream) = lock(self.session).stream_mut()
        {
            stream.pts.raise_to(floor);
        }
        Ok(())
    }

    /// Negotiation after the stop failed. A device that went away meanwhile (a USB camera's
    /// queue fails as it is unplugged, before its node goes) is waited for as any unplug;
    /// anything else is the error.
    fn not_restarted(&self, path: &str) -> Result<(), gst::FlowError> {
        let element = self.element.upcast_ref::<gst::Element>();
        let gone = lock(self.session)
            .device()
            .is_some_and(|device| device.is_disconnected());
        if gone {
            let reason = "it went away while its stream was restarted";
            lock(self.session).lose(errors::disconnected(path, reason));
            reconnect::announce_lost(element, self.stats, self.session, path, reason);
            // The capture loop's next turn waits for it.
            return Ok(());
        }
        gst::warning!(CAT, obj = element, "Renegotiation after the restart failed");
        Err(gst::FlowError::NotNegotiated)
    }
}
