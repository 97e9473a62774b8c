//! The GstColorBalance interface of `rustv4l2src`, as C `v4l2src` has it. gstreamer-video wraps
//! the interface but cannot implement it for a Rust subclass, so the interface's vtable is filled
//! here by hand. This module is only that glue: the trampolines from C into any subclass that
//! implements [`ColorBalanceImpl`], and the channel list that C callers borrow. Which controls
//! become channels, their values, ranges and errors are decided by the element, in safe code;
//! this module does not know the element.
//!
//! Unsafe code outside `src/v4l2/`, as are the other interfaces here and `stream/lend.rs`'s
//! `dmabuf_memory()`: an interface vtable, the raw instance pointers its functions receive and
//! the public fields of a GstColorBalanceChannel are GStreamer's C structures, which `src/v4l2/`
//! must know nothing of. The element installs the vtable with [`implement!`], which keeps the
//! `unsafe impl` here.

use gst::glib;
use gst::glib::prelude::*;
use gst::glib::subclass::prelude::*;
use gst::glib::translate::*;
use gst_video::ColorBalanceChannel;
use gst_video::ffi;
use std::ffi::c_int;

/// A channel to create: `key` is the element's name for it (which control it stands for).
pub(in crate::rustv4l2src) struct ChannelSpec {
    pub key: usize,
    pub label: String,
    pub min: i32,
    pub max: i32,
}

/// The channels of one open device, and the GList `list_channels` lends out. That list is
/// `transfer none`: callers free neither it nor the channels, and may keep it. The element keeps
/// one `Channels` for as long as the device stays open and never rebuilds it meanwhile, so a
/// list handed out stays valid until the device closes (READY to NULL) or the element is
/// finalised, as with `v4l2src`.
pub(in crate::rustv4l2src) struct Channels {
    list: glib::List<ColorBalanceChannel>,
    /// The key of each channel of `list`, in the same order.
    keys: Vec<usize>,
}

impl Channels {
    pub fn new(specs: impl IntoIterator<Item = ChannelSpec>) -> Self {
        let mut list = glib::List::new();
        let mut keys = Vec::new();
        for spec in specs {
            // Appending is O(n), but n is at most a handful.
            list.push_back(new_channel(&spec.label, spec.min, spec.max));
            keys.push(spec.key);
        }
        Channels { list, keys }
    }

    /// The key of `channel` if it is one of these (the very object, not one with its label).
    pub fn key_of(&self, channel: &ColorBalanceChannel) -> Option<usize> {
        self.list
            .iter()
            .position(|c| c == channel)
            .map(|i| self.keys[i])
    }

    pub fn channel(&self, key: usize) -> Option<&ColorBalanceChannel> {
        let i = self.keys.iter().position(|&k| k == key)?;
        self.list.iter().nth(i)
    }

    /// The list as C callers get it; NULL (the empty GList) when there are no channels.
    pub fn as_ptr(&self) -> *const glib::ffi::GList {
        self.list.as_ptr()
    }
}

/// A channel with its label and range set. GstColorBalanceChannel has no properties or setters
/// for them: implementations write the public fields, as `v4l2src` does.
pub(in crate::rustv4l2src) fn new_channel(label: &str, min: i32, max: i32) -> ColorBalanceChannel {
    let channel = glib::Object::new::<ColorBalanceChannel>();
    let raw: *mut ffi::GstColorBalanceChannel = channel.as_ptr();
    // SAFETY: `raw` is the instance struct of `channel`, which we hold a reference to, so it is
    // alive and of this layout. No other code has the object yet, so nothing reads the fields
    // while they are written. `label` is NULL after instance_init and the channel's dispose
    // g_free()s it, so it gets a g_malloc'd copy (`to_glib_full`) that it then owns.
    unsafe {
        (*raw).label = label.to_glib_full();
        (*raw).min_value = min;
        (*raw).max_value = max;
    }
    channel
}

/// What a subclass answers to GstColorBalance's calls.
pub(in crate::rustv4l2src) trait ColorBalanceImpl: ObjectSubclass {
    /// `list_channels`: a list that stays valid as long as `Channels` says.
    fn color_channel_list(&self) -> *const glib::ffi::GList;
    fn set_channel_value(&self, channel: Option<&ColorBalanceChannel>, value: i32);
    fn channel_value(&self, channel: Option<&ColorBalanceChannel>) -> i32;
}

/// Fills GstColorBalanceInterface's vtable with trampolines into `T`.
///
/// # Safety
/// `iface` must be the GstColorBalance interface of `T`'s GType (as passed to
/// `IsImplementable<T>::interface_init`): GLib then calls these functions only with instances
/// of `T` or of its subclasses, whose instances begin with `T`'s instance struct.
pub(in crate::rustv4l2src) unsafe fn init_interface<T: ColorBalanceImpl>(
    iface: &mut glib::Interface<gst_video::ColorBalance>,
) {
    let iface = iface.as_mut();
    iface.list_channels = Some(list_channels::<T>);
    iface.set_value = Some(set_value::<T>);
    iface.get_value = Some(get_value::<T>);
    iface.get_balance_type = Some(get_balance_type);
}

/// Implements GstColorBalance for `$imp`, a subclass that implements [`ColorBalanceImpl`] and
/// lists `gst_video::ColorBalance` among its interfaces. GLib's `IsImplementable` must name the
/// subclass (no crate may implement it for every `T`), so the subclass invokes this; its unsafe
/// code stays here, with the vtable it installs.
macro_rules! implement {
    ($imp:ty) => {
        // SAFETY: GLib passes `interface_init` the GstColorBalance interface of this type's GType,
        // which is what `init_interface::<$imp>` requires.
        unsafe impl gst::glib::subclass::types::IsImplementable<$imp> for gst_video::ColorBalance {
            fn interface_init(iface: &mut gst::glib::Interface<Self>) {
                // SAFETY: see the impl's comment.
                unsafe {
                    $crate::rustv4l2src::interfaces::colorbalance::init_interface::<$imp>(iface)
                }
            }
        }
    };
}
pub(in crate::rustv4l2src) use implement;

/// The element behind an interface call.
///
/// # Safety
/// `balance` must be a live instance of `T` for at least `'a`.
unsafe fn element<'a, T: ObjectSubclass>(balance: *mut ffi::GstColorBalance) -> &'a T {
    // SAFETY: by the contract above, `balance` points to an instance struct of the subclass, which
    // is what `Instance` describes; `imp()` then finds the private struct at the type's offset.
    let instance = unsafe { &*(balance as *const <T as ObjectSubclass>::Instance) };
    instance.imp()
}

unsafe extern "C" fn list_channels<T: ColorBalanceImpl>(
    balance: *mut ffi::GstColorBalance,
) -> *const glib::ffi::GList {
    // SAFETY: GLib calls this only through the vtable `init_interface::<T>` installed, so
    // `balance` is a `T`, and gst_color_balance_list_channels()'s caller holds it for the call.
    let imp = unsafe { element::<T>(balance) };
    imp.color_channel_list()
}

unsafe extern "C" fn set_value<T: ColorBalanceImpl>(
    balance: *mut ffi::GstColorBalance,
    channel: *mut ffi::GstColorBalanceChannel,
    value: c_int,
) {
    // SAFETY: as in `list_channels`.
    let imp = unsafe { element::<T>(balance) };
    // SAFETY: gst_color_balance_set_value() passes `channel` on unchecked; when not NULL it is a
    // GstColorBalanceChannel the caller holds for the call. Borrowing takes no reference and
    // drops none.
    let channel = unsafe { borrow_channel(channel) };
    imp.set_channel_value(channel.as_deref(), value);
}

unsafe extern "C" fn get_value<T: ColorBalanceImpl>(
    balance: *mut ffi::GstColorBalance,
    channel: *mut ffi::GstColorBalanceChannel,
) -> c_int {
    // SAFETY: as in `list_channels`.
    let imp = unsafe { element::<T>(balance) };
    // SAFETY: as in `set_value`, for gst_color_balance_get_value().
    let channel = unsafe { borrow_channel(channel) };
    imp.channel_value(channel.as_deref())
}

/// `None` for NULL.
///
/// # Safety
/// A non-NULL `channel` must be a live GstColorBalanceChannel for at least as long as the
/// result is used.
unsafe fn borrow_channel(
    channel: *mut ffi::GstColorBalanceChannel,
) -> Option<Borrowed<ColorBalanceChannel>> {
    // SAFETY: the contract above; `from_glib_borrow` neither refs nor unrefs.
    (!channel.is_null()).then(|| unsafe { from_glib_borrow(channel) })
}

/// The values are the device's own controls: applied by the hardware, not by processing frames.
extern "C" fn get_balance_type(_balance: *mut ffi::GstColorBalance) -> ffi::GstColorBalanceType {
    ffi::GST_COLOR_BALANCE_HARDWARE
}

#[cfg(test)]
mod tests {
    use super::{ChannelSpec, Channels, new_channel};

    #[test]
    fn channels_carry_label_range_and_key() {
        gst::init().unwrap();
        let channel = new_channel("brightness", -3, 255);
        assert_eq!(channel.label(), "brightness");
        assert_eq!((channel.min_value(), channel.max_value()), (-3, 255));

        let channels = Channels::new([
            ChannelSpec {
                key: 0,
                label: "brightness".into(),
                min: 0,
                max: 255,
            },
            ChannelSpec {
                key: 3,
                label: "hue".into(),
                min: -128,
                max: 128,
            },
        ]);
        let hue = channels.channel(3).expect("hue is listed");
        assert_eq!(hue.label(), "hue");
        assert_eq!(hue.min_value(), -128);
        assert_eq!(channels.key_of(hue), Some(3));
        assert!(channels.channel(1).is_none());
        // Only the very objects count, not a look-alike.
        assert_eq!(channels.key_of(&new_channel("hue", -128, 128)), None);
        assert!(!channels.as_ptr().is_null());
        assert!(Channels::new([]).as_ptr().is_null());
    }
}
