//! The GstVideoOrientation interface: `hflip`, `vflip`, `hcenter` and `vcenter`, each behind a
//! V4L2 control (`Axis`). gstreamer-video wraps the interface but cannot implement it for a Rust
//! subclass, so its vtable is filled here by hand, as `colorbalance.rs` does for
//! GstColorBalance: trampolines from C into any subclass that implements [`OrientationImpl`],
//! which decides what each call does, in safe code. This module does not know the element.

use crate::v4l2;
use gst::glib;
use gst::glib::subclass::prelude::*;
use gst::glib::translate::*;
use gst_video::ffi;
use std::ffi::c_int;

/// One of the interface's four values and the control behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::rustv4l2src) enum Axis {
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

/// What a subclass answers to GstVideoOrientation's calls; a call fails (returns FALSE) on
/// `None` or `false`.
pub(in crate::rustv4l2src) trait OrientationImpl: ObjectSubclass {
    /// `get_*`: the value of `axis`.
    fn orientation(&self, axis: Axis) -> Option<i32>;
    /// `set_*`: sets `axis` to `value`; whether it took.
    fn set_orientation(&self, axis: Axis, value: i32) -> bool;
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

/// Fills GstVideoOrientationInterface's vtable with trampolines into `T`.
///
/// # Safety
/// `iface` must be the GstVideoOrientation interface of `T`'s GType (as passed to
/// `IsImplementable<T>::interface_init`): GLib then calls these functions only with instances
/// of `T` or of its subclasses, whose instances begin with `T`'s instance struct.
pub(in crate::rustv4l2src) unsafe fn init_interface<T: OrientationImpl>(
    iface: &mut glib::Interface<gst_video::VideoOrientation>,
) {
    let raw: *mut ffi::GstVideoOrientationInterface = iface.as_mut();
    // SAFETY: `raw` is the interface struct GLib is initialising for this type, writable and
    // of `Vtable`'s layout (same fields, same size, asserted above).
    let vtable = unsafe { &mut *(raw as *mut Vtable) };
    vtable.get_hflip = Some(get_flip::<T, { HFLIP }>);
    vtable.get_vflip = Some(get_flip::<T, { VFLIP }>);
    vtable.get_hcenter = Some(get_center::<T, { HCENTER }>);
    vtable.get_vcenter = Some(get_center::<T, { VCENTER }>);
    vtable.set_hflip = Some(set_flip::<T, { HFLIP }>);
    vtable.set_vflip = Some(set_flip::<T, { VFLIP }>);
    vtable.set_hcenter = Some(set_center::<T, { HCENTER }>);
    vtable.set_vcenter = Some(set_center::<T, { VCENTER }>);
}

/// Implements GstVideoOrientation for `$imp`, a subclass that implements [`OrientationImpl`]
/// and lists `gst_video::VideoOrientation` among its interfaces. GLib's `IsImplementable` must
/// name the subclass (no crate may implement it for every `T`), so the subclass invokes this;
/// its unsafe code stays here, with the vtable it installs.
macro_rules! implement {
    ($imp:ty) => {
        // SAFETY: GLib passes `interface_init` the GstVideoOrientation interface of this type's
        // GType, which is what `init_interface::<$imp>` requires.
        unsafe impl gst::glib::subclass::types::IsImplementable<$imp>
            for gst_video::VideoOrientation
        {
            fn interface_init(iface: &mut gst::glib::Interface<Self>) {
                // SAFETY: see the impl's comment.
                unsafe {
                    $crate::rustv4l2src::interfaces::orientation::init_interface::<$imp>(iface)
                }
            }
        }
    };
}
pub(in crate::rustv4l2src) use implement;

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
/// `orientation` must be a live instance of `T` for at least `'a`.
unsafe fn element<'a, T: ObjectSubclass>(orientation: *mut ffi::GstVideoOrientation) -> &'a T {
    // SAFETY: by the contract above, `orientation` points to an instance struct of the subclass,
    // which is what `Instance` describes; `imp()` then finds the private struct at the type's
    // offset.
    let instance = unsafe { &*(orientation as *const <T as ObjectSubclass>::Instance) };
    instance.imp()
}

unsafe extern "C" fn get_flip<T: OrientationImpl, const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    flip: *mut glib::ffi::gboolean,
) -> glib::ffi::gboolean {
    // SAFETY: GLib calls this only through the vtable `init_interface::<T>` installed, so
    // `orientation` is a `T`, held by gst_video_orientation_get_*flip()'s caller for the call.
    let imp = unsafe { element::<T>(orientation) };
    let Some(value) = imp.orientation(axis(KEY)) else {
        return glib::ffi::GFALSE;
    };
    if !flip.is_null() {
        // SAFETY: a non-NULL `flip` is the caller's out-parameter, writable for the call.
        unsafe { *flip = (value != 0).into_glib() };
    }
    glib::ffi::GTRUE
}

unsafe extern "C" fn get_center<T: OrientationImpl, const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    center: *mut c_int,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element::<T>(orientation) };
    let Some(value) = imp.orientation(axis(KEY)) else {
        return glib::ffi::GFALSE;
    };
    if !center.is_null() {
        // SAFETY: as in `get_flip`.
        unsafe { *center = value };
    }
    glib::ffi::GTRUE
}

unsafe extern "C" fn set_flip<T: OrientationImpl, const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    flip: glib::ffi::gboolean,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element::<T>(orientation) };
    imp.set_orientation(axis(KEY), i32::from(flip != glib::ffi::GFALSE))
        .into_glib()
}

unsafe extern "C" fn set_center<T: OrientationImpl, const KEY: u8>(
    orientation: *mut ffi::GstVideoOrientation,
    center: c_int,
) -> glib::ffi::gboolean {
    // SAFETY: as in `get_flip`.
    let imp = unsafe { element::<T>(orientation) };
    imp.set_orientation(axis(KEY), center).into_glib()
}
