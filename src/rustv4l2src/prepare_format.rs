//! The element's `prepare-format (fd: gint, caps: GstCaps)` signal, as in `v4l2src` (declared
//! with the properties, in `face::settings`): emitted each time the element is about to set a
//! format on the device, after the stream has stopped and before the crop and `VIDIOC_S_FMT`,
//! with the element's descriptor of the device and the caps about to be set, so that an
//! application can program the device first (a UVC H.264 camera's encoder, say). It runs on the
//! thread that negotiates, with no element lock held, so a handler may read properties or run
//! ioctls on the descriptor; it must not close it.

use super::face::settings::PREPARE_FORMAT;
use super::imp::RustV4l2Src;
use super::shared::{CAT, lock};
use gst::prelude::*;
use gst::subclass::prelude::*;

impl RustV4l2Src {
    /// When `caps` are not already the device's format: stops the stream and frees its buffers
    /// (keeping the format, so the rebuild that follows still knows what it changes from), then
    /// emits `prepare-format` outside the session's lock.
    pub(in crate::rustv4l2src) fn prepare_format(&self, caps: &gst::Caps) {
        let fd = {
            let mut session = lock(&self.session);
            let Some(fd) = session.about_to_set(caps) else {
                return;
            };
            session.free_buffers();
            fd
        };
        gst::debug!(
            CAT,
            imp = self,
            "{} on fd {} for {}",
            PREPARE_FORMAT,
            fd,
            caps
        );
        self.obj()
            .emit_by_name::<()>(PREPARE_FORMAT, &[&fd, &caps.to_owned()]);
    }
}
