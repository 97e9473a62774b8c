//! The control properties on the device: the colour ones (`brightness`, ...) and
//! `extra-controls`, applied at open and whenever they change, and the GstColorBalance channels
//! they make. Runs on an `Arc<Device>` taken out of the session, never under the session's lock:
//! a control can block in the driver for seconds (UVC) and must not stall capture.

use crate::rustv4l2src::face::settings::{COLOR_CONTROLS, Settings};
use crate::rustv4l2src::interfaces::colorbalance::ChannelSpec;
use crate::v4l2::{self, Device};
use gst::glib;

/// Sets one control, checked against its type and range in the v4l2 layer; returns the value
/// the driver kept, or a warning for the user.
fn set_control(device: &Device, ctrl: &v4l2::ControlInfo, value: i64) -> Result<i32, String> {
    device.set_control(ctrl, value).map_err(|e| e.to_string())
}

/// What applying controls did.
#[derive(Default)]
pub(in crate::rustv4l2src) struct Applied {
    /// To post; a missing control is one, not an error.
    pub warnings: Vec<String>,
    /// The colour controls that were set, by index in `COLOR_CONTROLS`, with the value the
    /// driver kept: what GstColorBalance's `value-changed` reports.
    pub colors: Vec<(usize, i32)>,
}

impl Applied {
    fn record(&mut self, cid: u32, result: Result<i32, String>) {
        match result {
            Ok(kept) => {
                if let Some(i) = COLOR_CONTROLS.iter().position(|(_, c)| *c == cid) {
                    self.colors.push((i, kept));
                }
            }
            Err(warning) => self.warnings.push(warning),
        }
    }
}

/// Which control properties to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::rustv4l2src) enum Which<'a> {
    /// Every one that is set: at open.
    All,
    /// The one property that just changed.
    Only(&'a str),
}

/// Applies the colour properties and `extra-controls` that `which` names.
pub(in crate::rustv4l2src) fn apply_controls(
    device: &Device,
    settings: &Settings,
    which: Which,
) -> Applied {
    let mut applied = Applied::default();
    let wanted = |name: &str| which == Which::All || which == Which::Only(name);
    for ((name, cid), value) in COLOR_CONTROLS.iter().zip(settings.color) {
        let Some(value) = value.filter(|_| wanted(name)) else {
            continue;
        };
        match device.queryctrl(*cid) {
            Ok(Some(ctrl)) => applied.record(ctrl.id, set_control(device, &ctrl, value.into())),
            Ok(None) => applied.warnings.push(format!(
                "Device '{}' has no {} control; '{}' is ignored",
                device.path().display(),
                name,
                name
            )),
            Err(e) => applied
                .warnings
                .push(format!("Could not query control '{name}': {e}")),
        }
    }
    let Some(structure) = settings
        .extra_controls
        .as_ref()
        .filter(|_| wanted("extra-controls"))
    else {
        return applied;
    };
    let controls = match device.controls() {
        Ok(controls) => controls,
        Err(e) => {
            applied.warnings.push(e.to_string());
            return applied;
        }
    };
    for (field, value) in structure.iter() {
        let Some(value) = extra_control_value(value) else {
            applied.warnings.push(format!(
                "extra-controls: '{}' has a {} value; controls take integers or booleans",
                field,
                value.type_()
            ));
            continue;
        };
        match controls
            .iter()
            .find(|c| v4l2::controls::normalise_control_name(&c.name) == field.as_str())
        {
            Some(ctrl) => applied.record(ctrl.id, set_control(device, ctrl, value)),
            None => applied.warnings.push(format!(
                "extra-controls: device '{}' has no control named '{}' (it has: {})",
                device.path().display(),
                field,
                controls
                    .iter()
                    .map(|c| v4l2::controls::normalise_control_name(&c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    applied
}

/// An `extra-controls` field's value as a control takes it: integers (any of GStreamer's
/// integer types that fit) and booleans; `None` for anything else.
pub(crate) fn extra_control_value(value: &glib::SendValue) -> Option<i64> {
    if let Ok(v) = value.get::<i32>() {
        Some(v.into())
    } else if let Ok(v) = value.get::<u32>() {
        Some(v.into())
    } else if let Ok(v) = value.get::<i64>() {
        Some(v)
    } else if let Ok(v) = value.get::<bool>() {
        Some(v.into())
    } else {
        None
    }
}

/// GstColorBalance's channels for `device`: those of the colour controls that it has as
/// enabled integer controls, in `COLOR_CONTROLS` order, as `v4l2src` lists them: labelled with
/// the control's normalised name (as in `v4l2-ctl --list-ctrls`), ranged as `VIDIOC_QUERYCTRL`
/// says.
pub(in crate::rustv4l2src) fn color_channels(
    device: &Device,
) -> Result<Vec<ChannelSpec>, v4l2::Error> {
    let mut specs = Vec::new();
    for (key, (_, cid)) in COLOR_CONTROLS.iter().enumerate() {
        let Some(ctrl) = device.queryctrl(*cid)? else {
            continue;
        };
        if ctrl.type_ == v4l2::controls::CTRL_TYPE_INTEGER
            && ctrl.flags & v4l2::V4L2_CTRL_FLAG_DISABLED == 0
        {
            specs.push(ChannelSpec {
                key,
                label: v4l2::controls::normalise_control_name(&ctrl.name),
                min: ctrl.minimum,
                max: ctrl.maximum,
            });
        }
    }
    Ok(specs)
}

/// What a property that reads the open device reads, from `device` (the open one, if any,
/// taken only for such a property): a colour control's value (`VIDIOC_G_CTRL`), `norm`
/// (`VIDIOC_G_STD`) or `input` (`VIDIOC_G_INPUT`). `None` for other properties, while closed,
/// or when the driver does not answer; the property then reads its setting.
pub(in crate::rustv4l2src) fn device_value(
    name: &str,
    device: impl FnOnce() -> Option<std::sync::Arc<Device>>,
) -> Option<gst::glib::Value> {
    use gst::prelude::*;
    if let Some(i) = crate::rustv4l2src::face::settings::color_index(name) {
        return device()?
            .g_ctrl(COLOR_CONTROLS[i].1)
            .ok()
            .map(|v| v.to_value());
    }
    match name {
        "norm" => Some(super::inputs::device_norm(&*device()?).to_value()),
        "input" => i32::try_from(device()?.g_input().ok()?)
            .ok()
            .map(|i| i.to_value()),
        _ => None,
    }
}
