//! The GstTuner interface of `rustv4l2src`, as C `v4l2src` has it: the channels are the
//! device's video inputs (`VIDIOC_ENUMINPUT`), the norms the current input's analogue TV
//! standards (`VIDIOC_ENUMSTD`), and a channel's signal strength comes from its input's status.
//!
//! GstTuner, GstTunerChannel and GstTunerNorm are not in any library: gst-plugins-good's v4l2
//! plugin (`video4linux2`) registers them for itself (sys/v4l2/tuner.c), and no Rust binding
//! exists. So the plugin is loaded, the types are found by name, and the interface's vtable and
//! the channels' and norms' public fields are written through `#[repr(C)]` mirrors of their C
//! structures (tuner.h, tunerchannel.h, tunernorm.h); the channel's and norm's are checked
//! against the sizes GLib registered before any is used. Without that plugin the element simply has no GstTuner.
//!
//! The interface must be on the element's type before its class is initialised (GLib refuses it
//! after), which happens in this plugin's `plugin_init`. Loading the v4l2 plugin from there is
//! safe when this plugin is registered statically (`plugin_register_static`, as the tests do)
//! and on GStreamer 1.27.50 and later; on earlier versions a plugin loaded from a file runs its
//! `plugin_init` under a non-recursive lock that loading another plugin takes too, so there the
//! element has GstTuner only if the v4l2 plugin was loaded before it (an application that
//! made a `v4l2src`, or called `gst_plugin_load_by_name ("video4linux2")`, first).
//!
//! This is GStreamer's C ABI, not the kernel's, hence here and not in `src/v4l2/`; all of this
//! module's unsafe code is that FFI: the vtable's trampolines from C into any subclass that
//! implements [`TunerImpl`], and the channel and norm objects it lends. What the calls do
//! (S_INPUT, S_STD, reopening) is the element's, in safe code; this module does not know the
//! element.

use crate::rustv4l2src::shared::CAT;
use crate::v4l2;
use gst::glib;
use gst::glib::gobject_ffi;
use gst::glib::translate::*;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::ffi::{c_char, c_int, c_ulong, c_void};
use std::sync::OnceLock;

/// `GstTunerInterface` (tuner.h).
#[repr(C)]
struct TunerInterface {
    parent: gobject_ffi::GTypeInterface,
    list_channels:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *const glib::ffi::GList>,
    set_channel: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject)>,
    get_channel:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *mut gobject_ffi::GObject>,
    list_norms: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *const glib::ffi::GList>,
    set_norm: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject)>,
    get_norm: Option<unsafe extern "C" fn(*mut gobject_ffi::GObject) -> *mut gobject_ffi::GObject>,
    set_frequency:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject, c_ulong)>,
    get_frequency: Option<
        unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject) -> c_ulong,
    >,
    signal_strength:
        Option<unsafe extern "C" fn(*mut gobject_ffi::GObject, *mut gobject_ffi::GObject) -> c_int>,
    // The signals' class handlers, which the interface leaves NULL.
    signal_handlers: [*const c_void; 4],
}

/// `GstTunerChannel` (tunerchannel.h).
#[repr(C)]
struct TunerChannel {
    parent: gobject_ffi::GObject,
    label: *mut c_char,
    flags: u32,
    freq_multiplicator: f32,
    min_frequency: c_ulong,
    max_frequency: c_ulong,
    min_signal: c_int,
    max_signal: c_int,
    reserved: [*mut c_void; 4],
}

/// `GstTunerNorm` (tunernorm.h).
#[repr(C)]
struct TunerNorm {
    parent: gobject_ffi::GObject,
    label: *mut c_char,
    framerate: gobject_ffi::GValue,
    reserved: [*mut c_void; 4],
}

/// `GST_TUNER_CHANNEL_INPUT`, `_AUDIO`.
const CHANNEL_INPUT: u32 = 1 << 0;
const CHANNEL_AUDIO: u32 = 1 << 3;
/// The signal strength of an input that receives a picture: V4L2's full scale, as `v4l2src`
/// reports a tuner's (`VIDIOC_G_TUNER`'s `signal`).
pub(in crate::rustv4l2src) const FULL_SIGNAL: c_int = 0xffff;

/// The v4l2 plugin's types, once found.
pub(in crate::rustv4l2src) struct Types {
    channel: glib::Type,
    norm: glib::Type,
}

static TYPES: OnceLock<Option<Types>> = OnceLock::new();

/// What a subclass answers to GstTuner's calls. A list or an object returned is lent to the
/// caller (`transfer none`): the subclass keeps it alive (see `tuner_lists::Lists`).
pub(in crate::rustv4l2src) trait TunerImpl:
    ObjectSubclass<Type: IsA<glib::Object>>
{
    /// `list_channels`.
    fn channel_list(&self) -> *const glib::ffi::GList;
    /// `get_channel`.
    fn current_channel(&self) -> *mut gobject_ffi::GObject;
    /// `list_norms`.
    fn norm_list(&self) -> *const glib::ffi::GList;
    /// `get_norm`.
    fn current_norm(&self) -> *mut gobject_ffi::GObject;
    /// `set_channel`, with a channel that is not NULL.
    fn select_channel(&self, channel: &glib::Object);
    /// `set_norm`, with a norm that is not NULL.
    fn select_norm(&self, norm: &glib::Object);
    /// `signal_strength`, with a channel that is not NULL.
    fn signal_of(&self, channel: &glib::Object) -> c_int;
}

/// Adds GstTuner to the element's type `type_` (`T`'s), once, if the v4l2 plugin has it;
/// `plugin` is the plugin registering the element. Must run before the type's class is
/// initialised.
pub(in crate::rustv4l2src) fn install<T: TunerImpl>(type_: glib::Type, plugin: &gst::Plugin) {
    TYPES.get_or_init(|| add_interface::<T>(type_, plugin));
}

/// GstTuner's channel and norm types, once the interface was added; `None` without it.
pub(in crate::rustv4l2src) fn types() -> Option<&'static Types> {
    TYPES.get()?.as_ref()
}

/// Adds the interface when GstTuner's types exist (loading the v4l2 plugin where that is safe)
/// and match the structures above; the channel and norm types, for making them.
fn add_interface<T: TunerImpl>(type_: glib::Type, plugin: &gst::Plugin) -> Option<Types> {
    // SAFETY: `type_` is a registered class type; peeking takes no reference.
    if !unsafe { gobject_ffi::g_type_class_peek(type_.into_glib()) }.is_null() {
        gst::info!(
            CAT,
            "No GstTuner: {} was initialised before the plugin registered it",
            type_
        );
        return None;
    }
    let loading_is_safe = plugin.filename().is_none() || gst::version() >= (1, 27, 50, 0);
    if glib::Type::from_name("GstTuner").is_none()
        && loading_is_safe
        && let Err(e) = gst::Plugin::load_by_name("video4linux2")
    {
        gst::info!(CAT, "No GstTuner: the v4l2 plugin is not there ({})", e);
        return None;
    }
    let Some(tuner) = glib::Type::from_name("GstTuner") else {
        gst::info!(
            CAT,
            "No GstTuner: the v4l2 plugin (gst-plugins-good) is not loaded, and {} \
             cannot load it while loading this plugin; load it first",
            gst::version_string()
        );
        return None;
    };
    // SAFETY: `tuner` is a registered interface type. Taking a reference to its default vtable
    // runs its default_init, which registers GstTunerChannel and GstTunerNorm and the signals.
    // The reference is kept for the life of the process, as the plugin is never unloaded.
    unsafe { gobject_ffi::g_type_default_interface_ref(tuner.into_glib()) };
    let (channel, norm) = (
        glib::Type::from_name("GstTunerChannel")?,
        glib::Type::from_name("GstTunerNorm")?,
    );
    // GLib tells the instance sizes, not an interface's vtable size: TunerInterface is
    // tuner.h's, unchanged since the interface moved into the plugin.
    let sizes = [
        (channel, std::mem::size_of::<TunerChannel>()),
        (norm, std::mem::size_of::<TunerNorm>()),
    ];
    for (checked, size) in sizes {
        let mut query = std::mem::MaybeUninit::<gobject_ffi::GTypeQuery>::zeroed();
        // SAFETY: `query` is a GTypeQuery for GLib to fill in; it is zeroed, which GLib leaves
        // it as for an unknown type.
        let query = unsafe {
            gobject_ffi::g_type_query(checked.into_glib(), query.as_mut_ptr());
            query.assume_init()
        };
        let registered = query.instance_size;
        if registered as usize != size {
            gst::warning!(
                CAT,
                "No GstTuner: {} is {} bytes, not the {} this element was built for",
                checked,
                registered,
                size
            );
            return None;
        }
    }
    let info = gobject_ffi::GInterfaceInfo {
        interface_init: Some(interface_init::<T>),
        interface_finalize: None,
        interface_data: std::ptr::null_mut(),
    };
    // SAFETY: `type_` is registered, instantiable and its class not initialised (checked
    // above); `tuner` is an interface type it does not implement yet (this runs once), and
    // GLib copies `info`.
    unsafe {
        gobject_ffi::g_type_add_interface_static(type_.into_glib(), tuner.into_glib(), &info)
    };
    gst::debug!(CAT, "GstTuner added");
    Some(Types { channel, norm })
}

unsafe extern "C" fn interface_init<T: TunerImpl>(
    iface: glib::ffi::gpointer,
    _data: glib::ffi::gpointer,
) {
    // SAFETY: GLib passes the element's GstTuner vtable, a GstTunerInterface, which
    // TunerInterface mirrors field for field.
    let iface = unsafe { &mut *(iface as *mut TunerInterface) };
    iface.list_channels = Some(list_channels::<T>);
    iface.set_channel = Some(set_channel::<T>);
    iface.get_channel = Some(get_channel::<T>);
    iface.list_norms = Some(list_norms::<T>);
    iface.set_norm = Some(set_norm::<T>);
    iface.get_norm = Some(get_norm::<T>);
    iface.signal_strength = Some(signal_strength::<T>);
    // No frequencies: no channel has GST_TUNER_CHANNEL_FREQUENCY.
}

/// Runs `f` on the element behind a call; `default` for anything else.
///
/// # Safety
/// `tuner` must be a live GObject for the call (GLib calls the vtable with the instance its
/// caller holds).
unsafe fn on_element<T: TunerImpl, R>(
    tuner: *mut gobject_ffi::GObject,
    default: R,
    f: impl FnOnce(&T) -> R,
) -> R {
    // SAFETY: the contract above; borrowing takes no reference and drops none.
    let object: Borrowed<glib::Object> = unsafe { from_glib_borrow(tuner) };
    match object.downcast_ref::<T::Type>() {
        Some(element) => f(element.imp()),
        None => default,
    }
}

/// As `on_element`, with a channel or norm passed in; `default` when it is NULL.
///
/// # Safety
/// As `on_element`, and a non-NULL `object` must be a live GObject for the call.
unsafe fn on_element_with<T: TunerImpl, R>(
    tuner: *mut gobject_ffi::GObject,
    object: *mut gobject_ffi::GObject,
    default: R,
    f: impl FnOnce(&T, &glib::Object) -> R,
) -> R {
    if object.is_null() {
        return default;
    }
    // SAFETY: the contract above.
    let object: Borrowed<glib::Object> = unsafe { from_glib_borrow(object) };
    // SAFETY: the contract above.
    unsafe { on_element::<T, R>(tuner, default, |element| f(element, &object)) }
}

unsafe extern "C" fn list_channels<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
) -> *const glib::ffi::GList {
    // SAFETY: gst_tuner_list_channels()'s caller holds `tuner`.
    unsafe { on_element(tuner, std::ptr::null(), T::channel_list) }
}

unsafe extern "C" fn set_channel<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
    channel: *mut gobject_ffi::GObject,
) {
    // SAFETY: gst_tuner_set_channel()'s caller holds both.
    unsafe { on_element_with(tuner, channel, (), T::select_channel) }
}

unsafe extern "C" fn get_channel<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
) -> *mut gobject_ffi::GObject {
    // SAFETY: as in `list_channels`.
    unsafe { on_element(tuner, std::ptr::null_mut(), T::current_channel) }
}

unsafe extern "C" fn list_norms<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
) -> *const glib::ffi::GList {
    // SAFETY: as in `list_channels`.
    unsafe { on_element(tuner, std::ptr::null(), T::norm_list) }
}

unsafe extern "C" fn set_norm<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
    norm: *mut gobject_ffi::GObject,
) {
    // SAFETY: as in `set_channel`.
    unsafe { on_element_with(tuner, norm, (), T::select_norm) }
}

unsafe extern "C" fn get_norm<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
) -> *mut gobject_ffi::GObject {
    // SAFETY: as in `list_channels`.
    unsafe { on_element(tuner, std::ptr::null_mut(), T::current_norm) }
}

unsafe extern "C" fn signal_strength<T: TunerImpl>(
    tuner: *mut gobject_ffi::GObject,
    channel: *mut gobject_ffi::GObject,
) -> c_int {
    // SAFETY: as in `set_channel`.
    unsafe { on_element_with(tuner, channel, 0, T::signal_of) }
}

/// Channel and norm objects with their public fields set: neither type has properties or
/// setters for them; implementations write them, as `v4l2src` does.
pub(in crate::rustv4l2src) fn new_channel(types: &Types, input: &v4l2::Input) -> glib::Object {
    let channel = glib::Object::with_type(types.channel);
    let raw = channel.as_ptr() as *mut TunerChannel;
    let mut flags = CHANNEL_INPUT;
    if input.audioset != 0 {
        flags |= CHANNEL_AUDIO;
    }
    // SAFETY: `raw` is the instance struct of `channel`, of TunerChannel's size (checked when the
    // interface was added), alive while we hold `channel`, and no other code has it yet. `label`
    // is NULL after instance_init and dispose g_free()s it: it gets a g_malloc'd copy.
    unsafe {
        (*raw).label = input.name.to_glib_full();
        (*raw).flags = flags;
        (*raw).min_signal = 0;
        (*raw).max_signal = FULL_SIGNAL;
    }
    channel
}

pub(in crate::rustv4l2src) fn new_norm(types: &Types, standard: &v4l2::Standard) -> glib::Object {
    let norm = glib::Object::with_type(types.norm);
    let raw = norm.as_ptr() as *mut TunerNorm;
    let period = standard.frame_period;
    // Frames per second: the inverse of the period, as v4l2src fills it in.
    let (num, den) = (
        i32::try_from(period.denominator).unwrap_or(0),
        i32::try_from(period.numerator).unwrap_or(1),
    );
    // SAFETY: as in `new_channel`; instance_init made `framerate` a GstFraction GValue.
    unsafe {
        (*raw).label = standard.name.to_glib_full();
        gst::ffi::gst_value_set_fraction(&mut (*raw).framerate, num, den.max(1));
    }
    norm
}
