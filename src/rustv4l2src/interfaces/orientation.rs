//! The GstVideoOrientation interface of `rustv4l2src`, as C `v4l2src` has it: `hflip`, `vflip`,
//! `hcenter` and `vcenter` read and set the open device's `V4L2_CID_HFLIP`, `_VFLIP`, `_HCENTER`
//! and `_VCENTER` controls. As in `v4l2src`, every call fails (returns FALSE) while no device is
//! open, and on a device without that control; nothing is remembered for the next open.
//!
//! gstreamer-video wraps the interface but cannot implement it for a Rust subclass, so its vtable
//! is filled here by hand, as `colorbalance.rs` does for GstColorBalance; this and that are the
//! only unsafe code outside `src/v4l2/` (with `lend.rs`'s dmabuf wrapping). The controls are set
//! on an `Arc<Device>` taken out of the session, never under its lock.

use crate::rustv4l2src::imp::RustV4l2Src;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2;
use gst::glib;
use gst::glib::translate::*;
use gst::subclass::prelude::*;
use gst_video::ffi;
use std::ffi::c_int;

/// One of the interface's four values and the control behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Axis {
    HFlip,
    VFlip,
    HCenter,
    VCenter,
}

impl Axis {
    pub fn control(self) -> u32 {
        match self {
            Axis::HFlip => v4l2::V4L2_CID_HFLIP,
            Axis::VFlip => v4l2::V4L2_CID_VFLIP,
            Axis::HCenter => v4l2::V4L2_CID_HCENTER,
            Axis::VCenter => v4l2::V4L2_CID_VCENTER,
        }
    }
}

impl RustV4l2Src {
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

/// GstVideoOrientationInterface as C declares it. The `-sys` crate's struct declares the getters'
/// out-parameter as a `gboolean`/`int` by value instead of a pointer (a gir mistake), so the
/// vtable is written through this layout instead; both are the same size.
#[repr(C)]
struct Vtable {
    iface: glib::gobject_ffi::GTypeInterface,
    get_hflip: Option<Get<glib::ffi::gboolean>>,
    get_vflip: Option<Get<glib::ffi::gboolean>>,
    get_hcenter: Option<Get<c_int>>,
    get_vcenter: Option<Get<c_int>>,
    set_hflip: Option<Set<glib::ffi::gboolean>>,
    set_vflip: Option<Set<glib::ffi::gboolean>>,
    set_hcenter: Option<Set<c_int>>,
    set_vcenter: Option<Set<c_int>>,
}

type Get<T> = unsafe extern "C" fn(*mut ffi::GstVideoOrientation, *mut T) -> glib::ffi::gboolean;
type Set<T> = unsafe extern "C" fn(*mut ffi::GstVideoOrientation, T) -> glib::ffi::gboolean;

const _: () = assert!(
    std::mem::size_of::<Vtable>() == std::mem::size_of::<ffi::GstVideoOrientationInterface>()
);

// SAFETY: GLib passes `interface_init` the GstVideoOrientation interface of this type's GType,
// whose vtable layout `Vtable` mirrors; the functions it installs are then called only with
// instances of `RustV4l2Src` (see `element`).
unsafe impl glib::subclass::types::IsImplementable<RustV4l2Src> for gst_video::VideoOrientation {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        let raw: *mut ffi::GstVideoOrientationInterface = iface.as_mut();
        // SAFETY: `raw` is the interface struct GLib is initialising for this type, writable and
        // of `Vtable`'s layout (same fields, same size, asserted above).
        let vtable = unsafe { &mut *(raw as *mut Vtable) };
        vtable.get_hflip = Some(get_flip::<{ HFLIP }>);
        vtable.get_vflip = Some(get_flip::<{ VFLIP }>);
        vtable.get_hcenter = Some(get_center::<{ HCENTER }>);
        vtable.get_vcenter = Some(get_center::<{ VCENTER }>);
        vtable.set_hflip = Some(set_flip::<{ HFLIP }>);
        vtable.set_vflip = Some(set_flip::<{ VFLIP }>);
        vtable.set_hcenter = Some(set_center::<{ HCENTER }>);
        vtable.set_vcenter = Some(set_center::<{ VCENTER }>);
    }
}

// Const-generic keys for the trampolines (an enum cannot be a const parameter).
const HFLIP: u8 = 0;
const VFLIP: u8 = 1;
const HCENTER: u8 = 2;
const VCENTER: u8 = 3;

fn axis(key: u8) -> Axis {
    match key {
        HFLIP => Axis::HFlip,
        VFLIP => Axis::VFlip,
        HCENTER => Axis::HCenter,
        _ => Axis::VCenter,
    }
}

/// The element behind an interface call.
///
/// # Safety
/// `orientation` must be a live instance of `RustV4l2Src` (or a subclass) for at least `'a`.
unsafe fn element<'a>(orientation: *mut ffi::GstVideoOrientation) -> &'a RustV4l2Src {
    use glib::subclass::prelude::*;
    // SAFETY: by the contract above, `orientation` points to the element's instance struct;
    // `imp()` then finds the private struct at the type's offset.
    let instance = unsafe {
        &*(orientation as *const <RustV4l2Src as glib::subclass::types::ObjectSubclass>::Instance)
    };
    instance.imp()
}

unsafe extern "C" fn get_flip<const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    flip: *mut glib::ffi::gboolean,
) -> glib::ffi::gboolean {
    // SAFETY: GLib calls this only through the vtable installed above, so `orientation` is the
    // element, held by gst_video_orientation_get_*flip()'s caller for the call.
    let imp = unsafe { element(orientation) };
    let Some(value) = imp.orientation(axis(KEY)) else {
        return glib::ffi::GFALSE;
    };
    if !flip.is_null() {
        // SAFETY: a non-NULL `flip` is the caller's out-parameter, writable for the call.
        unsafe { *flip = (value != 0).into_glib() };
    }
    glib::ffi::GTRUE
}

unsafe extern "C" fn get_center<const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    center: *mut c_int,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element(orientation) };
    let Some(value) = imp.orientation(axis(KEY)) else {
        return glib::ffi::GFALSE;
    };
    if !center.is_null() {
        // SAFETY: as in `get_flip`.
        unsafe { *center = value };
    }
    glib::ffi::GTRUE
}

unsafe extern "C" fn set_flip<const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    flip: glib::ffi::gboolean,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element(orientation) };
    imp.set_orientation(axis(KEY), i32::from(flip != glib::ffi::GFALSE))
        .into_glib()
}

unsafe extern "C" fn set_center<const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    center: c_int,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element(orientation) };
    imp.set_orientation(axis(KEY), center).into_glib()
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
