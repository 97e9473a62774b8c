//! GstTuner on `rustv4l2src`, as C `v4l2src` has it: the channels are the device's video inputs
//! (`VIDIOC_ENUMINPUT`), the norms the current input's analogue TV standards (`VIDIOC_ENUMSTD`),
//! and a channel's signal strength comes from its input's status. The lists are made on first
//! use and kept in the session until the device closes (`interfaces::tuner_lists`); selecting a
//! channel or a norm (S_INPUT, S_STD, or reopening) is decided here, on the element's session
//! and settings. The vtable that calls this, and the channel and norm objects, are
//! `interfaces::tuner`'s.

use super::face::settings::TvNorm;
use super::imp::RustV4l2Src;
use super::interfaces::tuner::{self, TunerImpl};
use super::interfaces::tuner_lists::{Lent, Lists};
use super::knobs::inputs;
use super::shared::{CAT, lock};
use super::stream::session::Session;
use crate::v4l2::{self, Device};
use gst::glib;
use gst::glib::gobject_ffi;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::ffi::c_int;
use std::sync::Arc;

impl RustV4l2Src {
    /// Runs `f` on the open device's lists, under the session's lock.
    fn lists<R>(&self, f: impl FnOnce(&Lists) -> Option<R>) -> Option<R> {
        f(&lock(&self.session).opened()?.tuner)
    }

    /// Keeps `made` in the lists of `device`, if it is still the open one.
    fn keep(&self, device: &Arc<Device>, made: impl FnOnce(&mut Lists)) {
        let mut session = lock(&self.session);
        if let Some(opened) = session
            .opened_mut()
            .filter(|o| Arc::ptr_eq(&o.device, device))
        {
            made(&mut opened.tuner);
        }
    }

    /// Makes the channels, one per input, unless made; the ioctls run outside the lock.
    fn ensure_channels(&self) -> Option<()> {
        let types = tuner::types()?;
        let device = self.device()?;
        if self.lists(|l| l.channels.as_ref().map(|_| ())).is_some() {
            return Some(());
        }
        let inputs = device.enum_inputs().unwrap_or_else(|e| {
            gst::warning!(CAT, imp = self, "No tuner channels: {}", e);
            Vec::new()
        });
        let mut list = glib::List::new();
        for input in &inputs {
            list.push_back(tuner::new_channel(types, input));
        }
        let ids = inputs.iter().map(|i| u64::from(i.index)).collect();
        self.keep(&device, |lists| {
            lists.channels.get_or_insert(Lent { list, ids });
        });
        Some(())
    }

    /// Makes the current input's norms unless made; returns that input.
    fn ensure_norms(&self) -> Option<u32> {
        let types = tuner::types()?;
        let device = self.device()?;
        let input = device.g_input().ok()?;
        if self.lists(|l| l.norms.get(&input).map(|_| ())).is_some() {
            return Some(input);
        }
        let standards = device.enum_std().unwrap_or_else(|e| {
            gst::warning!(CAT, imp = self, "No tuner norms: {}", e);
            Vec::new()
        });
        let mut list = glib::List::new();
        for standard in &standards {
            list.push_back(tuner::new_norm(types, standard));
        }
        let ids = standards.iter().map(|s| s.id).collect();
        self.keep(&device, |lists| {
            lists.norms.entry(input).or_insert(Lent { list, ids });
        });
        Some(input)
    }

    /// Puts a new input or norm, already in the settings, into effect; whether it took.
    fn apply(
        &self,
        ioctl: impl FnOnce(&Device) -> v4l2::Result<()>,
        what: &str,
        value: &str,
    ) -> bool {
        let lists = {
            let mut session = lock(&self.session);
            match &mut *session {
                Session::Open(opened) => {
                    let lists = std::mem::take(&mut opened.tuner);
                    session.close();
                    Some(lists)
                }
                _ => None,
            }
        };
        if let Some(lists) = lists {
            // Outside the lock: opening runs the device's ioctls, and errors are posted.
            if let Err(msg) = self.open() {
                self.post_error_message(msg);
                return false;
            }
            if let Some(opened) = lock(&self.session).opened_mut() {
                opened.tuner = lists;
            }
            gst::info!(CAT, imp = self, "Reopened with {} {}", what, value);
            return true;
        }
        let Some(device) = self.device() else {
            return false;
        };
        match ioctl(&device) {
            Ok(()) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "{} set to {} with a format set",
                    what,
                    value
                );
                true
            }
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Settings,
                    (
                        "Device '{}' did not take {} {} now ({}); it applies when the device \
                         next opens",
                        device.path().display(),
                        what,
                        value,
                        e
                    )
                );
                false
            }
        }
    }
}

impl TunerImpl for RustV4l2Src {
    fn channel_list(&self) -> *const glib::ffi::GList {
        self.ensure_channels();
        self.lists(|l| Some(l.channels.as_ref()?.list.as_ptr()))
            .unwrap_or(std::ptr::null())
    }

    fn current_channel(&self) -> *mut gobject_ffi::GObject {
        self.ensure_channels();
        let input = self.device().and_then(|d| d.g_input().ok());
        input
            .and_then(|input| {
                self.lists(|l| Some(l.channels.as_ref()?.object_of(|id| id == u64::from(input))))
            })
            .unwrap_or(std::ptr::null_mut())
    }

    fn norm_list(&self) -> *const glib::ffi::GList {
        let Some(input) = self.ensure_norms() else {
            return std::ptr::null();
        };
        self.lists(|l| Some(l.norms.get(&input)?.list.as_ptr()))
            .unwrap_or(std::ptr::null())
    }

    /// As `v4l2src`: the first of the input's norms that shares a bit with `VIDIOC_G_STD`.
    fn current_norm(&self) -> *mut gobject_ffi::GObject {
        let Some(input) = self.ensure_norms() else {
            return std::ptr::null_mut();
        };
        let Some(std) = self.device().and_then(|d| d.g_std().ok().flatten()) else {
            return std::ptr::null_mut();
        };
        self.lists(|l| Some(l.norms.get(&input)?.object_of(|id| id & std != 0)))
            .unwrap_or(std::ptr::null_mut())
    }

    /// `set_channel`: selects the input, and keeps it in `input` for later opens (with `norm`
    /// back at none when the new input has no norms). Before a format is set, the device is
    /// opened again on the new input (formats, sizes and the source's own picture are the
    /// input's); with one set, `VIDIOC_S_INPUT` is tried as `v4l2src` tries it, and a driver
    /// that refuses gets a warning on the bus.
    fn select_channel(&self, channel: &glib::Object) {
        self.ensure_channels();
        let index = self.lists(|l| l.channels.as_ref()?.id_of(channel));
        let (Some(index), Some(device)) =
            (index.and_then(|i| u32::try_from(i).ok()), self.device())
        else {
            gst::warning!(
                CAT,
                imp = self,
                "Tuner channel {:?} is not one of the open device's inputs",
                channel
            );
            return;
        };
        let has_std = device.enum_input(index).is_ok_and(|i| i.has_std());
        {
            let mut settings = lock(&self.settings);
            settings.input = i32::try_from(index).unwrap_or(-1);
            if !has_std {
                settings.norm = TvNorm::None;
            }
        }
        if self.apply(|device| device.s_input(index), "input", &index.to_string()) {
            self.obj().emit_by_name::<()>("channel-changed", &[channel]);
        }
    }

    /// `set_norm`: as `select_channel`, for `VIDIOC_S_STD` and `norm`.
    fn select_norm(&self, norm: &glib::Object) {
        let input = self.ensure_norms();
        let Some(std) = input.and_then(|input| self.lists(|l| l.norms.get(&input)?.id_of(norm)))
        else {
            gst::warning!(
                CAT,
                imp = self,
                "Tuner norm {:?} is not one of the current input's",
                norm
            );
            return;
        };
        let as_norm = TvNorm::of_std(std);
        lock(&self.settings).norm = as_norm;
        if self.apply(|device| device.s_std(std), "norm", as_norm.nick()) {
            self.obj().emit_by_name::<()>("norm-changed", &[norm]);
        }
    }

    /// `signal_strength`: full for the current input while it receives a picture, else 0
    /// (an input's status says nothing while it is not the current one).
    fn signal_of(&self, channel: &glib::Object) -> c_int {
        self.ensure_channels();
        let index = self.lists(|l| l.channels.as_ref()?.id_of(channel));
        let Some(device) = self.device() else {
            return 0;
        };
        match inputs::current_input(&device) {
            Some(input)
                if index == Some(u64::from(input.index))
                    && input.status & v4l2::V4L2_IN_ST_NO_PICTURE == 0 =>
            {
                tuner::FULL_SIGNAL
            }
            _ => 0,
        }
    }
}
