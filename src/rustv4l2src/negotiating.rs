//! How the element negotiates, on the streaming thread, from BaseSrc's `negotiate()` and
//! `set_caps()` in `imp.rs`: the caps module's choice among the formats and sizes the device
//! lists, the device configured for them before downstream gets them (`apply_caps`: its answer
//! completes the caps), caps for the picture the receiver is set to while its input has no
//! signal, and, with `reconnect`, a device found gone meanwhile, which is a loss to wait out
//! rather than an error.

use super::alive::reconnect;
use super::face::errors;
use super::imp::RustV4l2Src;
use super::shared::{CAT, lock};
use crate::caps;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

impl RustV4l2Src {
    /// BaseSrc's `negotiate()`. Not the base class's way, which starts from everything the
    /// device offers and takes its first structure: the caps module's rule (the largest size
    /// that reaches 30 fps) walks the listed sizes from the largest and probes frame rates
    /// only until it knows.
    pub(super) fn negotiate_with_device(&self) -> Result<(), gst::LoggableError> {
        let (waiting, signal_absent) = {
            let session = lock(&self.session);
            (
                session.lost().is_some() && lock(&self.settings).reconnect,
                session.signal_absent(),
            )
        };
        if waiting {
            // Waiting for the device: it negotiates once the device is back.
            gst::debug!(CAT, imp = self, "Nothing to negotiate for yet");
            return Ok(());
        }
        if signal_absent {
            self.negotiate_without_signal();
            return Ok(());
        }
        let pad = self.obj().src_pad().clone();
        let peer = pad.peer_query_caps(None);
        let settings = lock(&self.settings).clone();
        let chosen = lock(&self.session)
            .opened_mut()
            .map(|o| o.preferred_for(&settings, &peer))
            .transpose();
        // Sizes are listed here, on first need: a device that went away meanwhile answers
        // nothing, which with `reconnect` is another loss to wait out, not an error to post.
        let common = match chosen {
            Ok(common) => common.flatten(),
            Err(_) if self.lost_while_starting("negotiating") => return Ok(()),
            Err(msg) => {
                self.post_error_message(msg);
                return Err(gst::loggable_error!(CAT, "Cannot crop as asked"));
            }
        };
        if common.is_none() && self.lost_while_starting("negotiating") {
            return Ok(());
        }
        let Some(common) = common else {
            let ours = self.caps(None).unwrap_or_else(gst::Caps::new_empty);
            // The node opened, which `device-fd` may have given instead of `device`.
            let path = lock(&self.session)
                .opened()
                .map_or(settings.device, |o| o.path().into());
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
        let settled = match self.apply_caps(&fixed) {
            Ok(settled) => settled,
            Err(_) if self.lost_while_starting("setting its format") => return Ok(()),
            Err(e) => return Err(e),
        };
        self.obj()
            .set_caps(&settled)
            .map_err(|_| gst::loggable_error!(CAT, "Downstream refused {}", settled))
    }

    /// With `reconnect`, whether a failure came from the open device going away (again: just
    /// after it came back, say), which the capture loop waits out instead of an error.
    pub(super) fn gone_again(&self) -> bool {
        lock(&self.settings).reconnect && self.device().is_some_and(|d| d.is_disconnected())
    }

    /// With `reconnect`, a failure of `doing` (negotiating, allocating) that came from the
    /// device going away, unplugged as its stream starts or restarts: the session lets go of
    /// it and says so as for an unplug while streaming (unless it is being brought back from
    /// a loss already told), and the capture loop waits for it. False (nothing done) for any
    /// other failure.
    pub(super) fn lost_while_starting(&self, doing: &str) -> bool {
        let Some(device) = self.device().filter(|_| self.gone_again()) else {
            return false;
        };
        let path = device.path().to_string_lossy().into_owned();
        drop(device);
        let reason = format!("gone while {doing}");
        reconnect::lose(
            self.obj().upcast_ref(),
            &self.stats,
            &self.session,
            &path,
            &reason,
            errors::disconnected(&path, &reason),
        );
        true
    }

    /// No signal on the input: caps for what the receiver is set to, as at any negotiation,
    /// so that GAP events (or black frames) reach downstream, which prerolls on them, until
    /// the picture comes and is negotiated in its turn. Nothing is posted: where there are no
    /// such caps, the element waits for the picture without them.
    fn negotiate_without_signal(&self) {
        let peer = self.obj().src_pad().peer_query_caps(None);
        let settings = lock(&self.settings).clone();
        let common = lock(&self.session)
            .opened_mut()
            .and_then(|o| o.preferred_for(&settings, &peer).ok().flatten());
        let Some(fixed) = common.map(|c| BaseSrcImpl::fixate(self, c)) else {
            gst::debug!(CAT, imp = self, "No caps to wait for the signal with");
            return;
        };
        if !fixed.is_fixed() {
            return;
        }
        let settled = match self.configure(&fixed) {
            Ok(settled) => settled,
            Err(msg) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "No caps to wait for the signal with: {:?}",
                    msg
                );
                return;
            }
        };
        if self.obj().set_caps(&settled).is_err() {
            gst::debug!(
                CAT,
                imp = self,
                "Downstream refused {} without a signal",
                settled
            );
            return;
        }
        let mut session = lock(&self.session);
        let duration = session.stream().and_then(|s| s.frame_duration);
        if let Some(o) = session.opened_mut()
            && let Some(absence) = &mut o.source.absent
        {
            gst::debug!(CAT, imp = self, "Waiting for the signal with {}", settled);
            absence.caps = Some(settled);
            absence.frame_duration = duration;
            absence.black = None;
        }
    }

    /// Configures the device for fixed caps, unless it already is, and returns the caps of the
    /// stream: `new_caps` completed with what the driver settled on (see `caps::settle`).
    pub(super) fn apply_caps(&self, new_caps: &gst::Caps) -> Result<gst::Caps, gst::LoggableError> {
        self.configure(new_caps).map_err(|msg| {
            if !self.gone_again() {
                self.post_error_message(msg);
            }
            gst::loggable_error!(CAT, "Could not configure the device for {}", new_caps)
        })
    }

    /// `apply_caps` without posting its error: `prepare-format`, then the session's rebuild,
    /// and a latency message when the frame duration changed.
    fn configure(&self, new_caps: &gst::Caps) -> Result<gst::Caps, gst::ErrorMessage> {
        self.prepare_format(new_caps);
        let rebuilt = lock(&self.session).rebuild(new_caps)?;
        // Post outside the session's lock: a bus sync handler may call back into the element.
        if rebuilt.latency_changed {
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(rebuilt.caps)
    }
}
