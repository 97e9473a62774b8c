//! Listing a device's controls and naming them the way v4l2src's `extra-controls` does.

use super::device::{ControlInfo, Device};
use super::error::Result;
use super::sys::{V4L2_CTRL_FLAG_DISABLED, V4L2_CTRL_FLAG_NEXT_CTRL};

/// `V4L2_CTRL_TYPE_*` values a plain `VIDIOC_S_CTRL` can set.
pub const CTRL_TYPE_INTEGER: u32 = 1;
pub const CTRL_TYPE_BOOLEAN: u32 = 2;
pub const CTRL_TYPE_MENU: u32 = 3;
pub const CTRL_TYPE_BUTTON: u32 = 4;
pub const CTRL_TYPE_INTEGER_MENU: u32 = 9;
/// Class headings in the enumeration, not controls.
pub const CTRL_TYPE_CTRL_CLASS: u32 = 6;

impl Device {
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
}

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
    use super::normalise_control_name;

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
