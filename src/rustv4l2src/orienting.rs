//! GstVideoOrientation on `rustv4l2src`, as C `v4l2src` has it: `hflip`, `vflip`, `hcenter` and
//! `vcenter` read and set the open device's `V4L2_CID_HFLIP`, `_VFLIP`, `_HCENTER` and `_VCENTER`
//! controls. As in `v4l2src`, every call fails (returns FALSE) while no device is open, and on a
//! device without that control; nothing is remembered for the next open. The controls are set
//! on an `Arc<Device>` taken out of the session, never under its lock. The vtable that calls
//! this is `interfaces::orientation`'s.

use super::imp::RustV4l2Src;
use super::interfaces::orientation::{Axis, OrientationImpl};
use super::shared::CAT;
use gst::subclass::prelude::*;

impl OrientationImpl for RustV4l2Src {
    /// The control's value on the open device; `None` while closed or when the device has
    /// no such control.
    fn orientation(&self, axis: Axis) -> Option<i32> {
        let device = self.device()?;
        match device.g_ctrl(axis.control()) {
            Ok(value) => Some(value),
            Err(e) => {
                gst::debug!(CAT, imp = self, "{:?} not read: {}", axis, e);
                None
            }
        }
    }

    /// Sets the control on the open device; false while closed or when the driver refuses.
    fn set_orientation(&self, axis: Axis, value: i32) -> bool {
        let Some(device) = self.device() else {
            gst::debug!(CAT, imp = self, "{:?} not set: no device is open", axis);
            return false;
        };
        match device.s_ctrl(axis.control(), value) {
            Ok(kept) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "{:?} set to {} (asked {})",
                    axis,
                    kept,
                    value
                );
                true
            }
            Err(e) => {
                gst::warning!(CAT, imp = self, "{:?} not set to {}: {}", axis, value, e);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gst::prelude::*;
    use gst_video::prelude::*;

    #[test]
    fn orientation_fails_while_closed() {
        gst::init().unwrap();
        let element = gst::glib::Object::new::<crate::rustv4l2src::RustV4l2Src>();
        let orientation = element
            .dynamic_cast_ref::<gst_video::VideoOrientation>()
            .expect("implements GstVideoOrientation");
        assert_eq!(orientation.hflip(), None);
        assert_eq!(orientation.vcenter(), None);
        assert!(orientation.set_vflip(true).is_err());
        assert!(orientation.set_hcenter(3).is_err());
    }
}
