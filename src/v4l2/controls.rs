//! A device's controls: the control ioctls (`VIDIOC_QUERYCTRL`, `VIDIOC_G_CTRL`,
//! `VIDIOC_S_CTRL`), listing the controls and checking a value against one, and naming them the
//! way v4l2src's `extra-controls` does. Knows nothing of GStreamer.

use super::device::{Device, c_string, retry};
use super::error::{Error, Result};
use super::sys::{
    V4L2_CID_MIN_BUFFERS_FOR_CAPTURE, V4L2_CTRL_FLAG_DISABLED, V4L2_CTRL_FLAG_NEXT_CTRL,
    v4l2_control, v4l2_queryctrl, vidioc_g_ctrl, vidioc_queryctrl, vidioc_s_ctrl,
};
use nix::errno::Errno;
use std::fmt;
use std::path::{Path, PathBuf};

/// `V4L2_CTRL_TYPE_*` values a plain `VIDIOC_S_CTRL` can set.
pub const CTRL_TYPE_INTEGER: u32 = 1;
pub const CTRL_TYPE_BOOLEAN: u32 = 2;
pub const CTRL_TYPE_MENU: u32 = 3;
pub const CTRL_TYPE_BUTTON: u32 = 4;
pub const CTRL_TYPE_INTEGER_MENU: u32 = 9;
/// Class headings in the enumeration, not controls.
pub const CTRL_TYPE_CTRL_CLASS: u32 = 6;

/// A control as `VIDIOC_QUERYCTRL` describes it.
#[derive(Clone, Debug)]
pub struct ControlInfo {
    pub id: u32,
    pub type_: u32,
    pub name: String,
    pub minimum: i32,
    pub maximum: i32,
    pub step: i32,
    pub default_value: i32,
    pub flags: u32,
}

impl Device {
    /// `VIDIOC_QUERYCTRL`; `None` when the device has no such control.
    pub fn queryctrl(&self, id: u32) -> Result<Option<ControlInfo>> {
        let mut raw = v4l2_queryctrl {
            id,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_queryctrl the kernel fills in place.
        match retry(|| unsafe { vidioc_queryctrl(self.raw(), &mut raw) }) {
            Ok(_) => Ok(Some(ControlInfo {
                id: raw.id,
                type_: raw.type_,
                name: c_string(&raw.name),
                minimum: raw.minimum,
                maximum: raw.maximum,
                step: raw.step,
                default_value: raw.default_value,
                flags: raw.flags,
            })),
            Err(Errno::EINVAL) | Err(Errno::ENOTTY) => Ok(None),
            Err(errno) => Err(self.err("VIDIOC_QUERYCTRL", errno)),
        }
    }

    /// `VIDIOC_G_CTRL`
    pub fn g_ctrl(&self, id: u32) -> Result<i32> {
        let mut raw = v4l2_control { id, value: 0 };
        // SAFETY: `raw` is a valid v4l2_control.
        retry(|| unsafe { vidioc_g_ctrl(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_CTRL", e))?;
        Ok(raw.value)
    }

    /// `VIDIOC_S_CTRL`: returns the value the driver kept.
    pub fn s_ctrl(&self, id: u32, value: i32) -> Result<i32> {
        let mut raw = v4l2_control { id, value };
        // SAFETY: `raw` is a valid v4l2_control.
        retry(|| unsafe { vidioc_s_ctrl(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_CTRL", e))?;
        Ok(raw.value)
    }

    /// The driver's minimum number of buffers for capture, when it says.
    pub fn min_buffers_for_capture(&self) -> Option<u32> {
        self.g_ctrl(V4L2_CID_MIN_BUFFERS_FOR_CAPTURE)
            .ok()
            .and_then(|v| u32::try_from(v.max(1)).ok())
    }

    /// Every enabled control the driver lists (`VIDIOC_QUERYCTRL` with `NEXT_CTRL`).
    pub fn controls(&self) -> Result<Vec<ControlInfo>> {
        let mut out = Vec::new();
        let mut id = V4L2_CTRL_FLAG_NEXT_CTRL;
        while let Some(ctrl) = self.queryctrl(id)? {
            id = ctrl.id | V4L2_CTRL_FLAG_NEXT_CTRL;
            if ctrl.flags & V4L2_CTRL_FLAG_DISABLED == 0 && ctrl.type_ != CTRL_TYPE_CTRL_CLASS {
                out.push(ctrl);
            }
        }
        Ok(out)
    }

    /// Checks that `ctrl` takes `value` (`ControlInfo::check`), then sets it with
    /// `VIDIOC_S_CTRL`; returns the value the driver kept.
    pub fn set_control(
        &self,
        ctrl: &ControlInfo,
        value: i64,
    ) -> std::result::Result<i32, ControlError> {
        let value = ctrl.check(value).map_err(|error| ControlError::Refused {
            device: self.path().to_owned(),
            error,
        })?;
        self.s_ctrl(ctrl.id, value)
            .map_err(|error| ControlError::Driver {
                name: ctrl.name.clone(),
                error,
            })
    }
}

impl ControlInfo {
    /// Whether a plain `VIDIOC_S_CTRL` can set this control to `value`: it must be an integer,
    /// boolean, menu or button control, and `value` within its `minimum..=maximum`. Returns the
    /// value as the ioctl takes it.
    pub fn check(&self, value: i64) -> std::result::Result<i32, ControlRangeError> {
        if !matches!(
            self.type_,
            CTRL_TYPE_INTEGER
                | CTRL_TYPE_BOOLEAN
                | CTRL_TYPE_MENU
                | CTRL_TYPE_INTEGER_MENU
                | CTRL_TYPE_BUTTON
        ) {
            return Err(ControlRangeError::NotSettable {
                name: self.name.clone(),
                type_: self.type_,
            });
        }
        let out_of_range = || ControlRangeError::OutOfRange {
            name: self.name.clone(),
            value,
            minimum: self.minimum,
            maximum: self.maximum,
        };
        if value < i64::from(self.minimum) || value > i64::from(self.maximum) {
            return Err(out_of_range());
        }
        // Within two i32 bounds, so it fits; no cast that could wrap.
        i32::try_from(value).map_err(|_| out_of_range())
    }
}

/// Why a value was not given to a control, before asking the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlRangeError {
    /// A control `VIDIOC_S_CTRL` cannot set (64-bit, string, compound, a class heading...).
    NotSettable { name: String, type_: u32 },
    /// The value lies outside the control's `minimum..=maximum`.
    OutOfRange {
        name: String,
        value: i64,
        minimum: i32,
        maximum: i32,
    },
}

impl ControlRangeError {
    /// The sentence, naming the device when there is one.
    fn write(&self, f: &mut fmt::Formatter<'_>, device: Option<&Path>) -> fmt::Result {
        let name = match self {
            ControlRangeError::NotSettable { name, .. }
            | ControlRangeError::OutOfRange { name, .. } => name,
        };
        let of = device
            .map(|d| format!(" of '{}'", d.display()))
            .unwrap_or_default();
        match self {
            ControlRangeError::NotSettable { .. } => write!(
                f,
                "Control '{name}'{of} is not a plain integer, boolean or menu control; not set"
            ),
            ControlRangeError::OutOfRange {
                value,
                minimum,
                maximum,
                ..
            } => write!(
                f,
                "Value {value} for control '{name}'{of} is out of its range {minimum}..{maximum}; not set"
            ),
        }
    }
}

impl fmt::Display for ControlRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, None)
    }
}

impl std::error::Error for ControlRangeError {}

/// Why `Device::set_control` did not set a control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// The value was refused before reaching the driver.
    Refused {
        device: PathBuf,
        error: ControlRangeError,
    },
    /// The driver refused `VIDIOC_S_CTRL`.
    Driver { name: String, error: Error },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Refused { device, error } => error.write(f, Some(device)),
            ControlError::Driver { name, error } => {
                write!(f, "Could not set control '{name}': {error}")
            }
        }
    }
}

impl std::error::Error for ControlError {}

/// "Exposure Time, Absolute" -> "exposure_time_absolute": lower case, each run of other
/// characters between words becomes one underscore. The names v4l2src accepts.
pub fn normalise_control_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(type_: u32, minimum: i32, maximum: i32) -> ControlInfo {
        ControlInfo {
            id: 0x0098_0900,
            type_,
            name: "Brightness".to_owned(),
            minimum,
            maximum,
            step: 1,
            default_value: minimum,
            flags: 0,
        }
    }

    fn out_of_range(value: i64, minimum: i32, maximum: i32) -> ControlRangeError {
        ControlRangeError::OutOfRange {
            name: "Brightness".to_owned(),
            value,
            minimum,
            maximum,
        }
    }

    #[test]
    fn a_value_is_checked_against_the_range_at_its_edges() {
        let ctrl = control(CTRL_TYPE_INTEGER, -10, 255);
        assert_eq!(ctrl.check(-10), Ok(-10));
        assert_eq!(ctrl.check(255), Ok(255));
        assert_eq!(ctrl.check(0), Ok(0));
        assert_eq!(ctrl.check(-11), Err(out_of_range(-11, -10, 255)));
        assert_eq!(ctrl.check(256), Err(out_of_range(256, -10, 255)));
    }

    #[test]
    fn values_beyond_i32_are_out_of_range_not_wrapped() {
        let ctrl = control(CTRL_TYPE_INTEGER, i32::MIN, i32::MAX);
        assert_eq!(ctrl.check(i64::from(i32::MAX)), Ok(i32::MAX));
        assert_eq!(ctrl.check(i64::from(i32::MIN)), Ok(i32::MIN));
        let above = i64::from(i32::MAX) + 1;
        assert_eq!(
            ctrl.check(above),
            Err(out_of_range(above, i32::MIN, i32::MAX))
        );
        // 2^32 would wrap to 0 through an `as i32`, which lies in range.
        let ctrl = control(CTRL_TYPE_INTEGER, 0, 255);
        assert_eq!(ctrl.check(1 << 32), Err(out_of_range(1 << 32, 0, 255)));
        assert_eq!(ctrl.check(i64::MIN), Err(out_of_range(i64::MIN, 0, 255)));
        assert_eq!(ctrl.check(i64::MAX), Err(out_of_range(i64::MAX, 0, 255)));
    }

    #[test]
    fn only_plain_types_are_settable() {
        for type_ in [
            CTRL_TYPE_INTEGER,
            CTRL_TYPE_BOOLEAN,
            CTRL_TYPE_MENU,
            CTRL_TYPE_BUTTON,
            CTRL_TYPE_INTEGER_MENU,
        ] {
            assert_eq!(control(type_, 0, 1).check(1), Ok(1), "type {type_}");
        }
        // INTEGER64, CTRL_CLASS, STRING, BITMASK
        for type_ in [5, CTRL_TYPE_CTRL_CLASS, 7, 8] {
            assert_eq!(
                control(type_, 0, 1).check(1),
                Err(ControlRangeError::NotSettable {
                    name: "Brightness".to_owned(),
                    type_
                }),
                "type {type_}"
            );
        }
    }

    #[test]
    fn refusals_read_as_sentences() {
        let err = control(CTRL_TYPE_INTEGER, 0, 255).check(300).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Value 300 for control 'Brightness' is out of its range 0..255; not set"
        );
        let err = ControlError::Refused {
            device: "/dev/video3".into(),
            error: err,
        };
        assert_eq!(
            err.to_string(),
            "Value 300 for control 'Brightness' of '/dev/video3' is out of its range 0..255; not set"
        );
        let err = control(7, 0, 0).check(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Control 'Brightness' is not a plain integer, boolean or menu control; not set"
        );
    }

    #[test]
    fn names_normalise_as_v4l2src_does() {
        assert_eq!(
            normalise_control_name("Exposure Time, Absolute"),
            "exposure_time_absolute"
        );
        assert_eq!(normalise_control_name("Brightness"), "brightness");
        assert_eq!(normalise_control_name("  Test Pattern"), "test_pattern");
        assert_eq!(
            normalise_control_name("Inject V4L2_BUF_FLAG_ERROR"),
            "inject_v4l2_buf_flag_error"
        );
    }
}
