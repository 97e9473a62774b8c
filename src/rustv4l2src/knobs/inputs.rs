//! The `input` and `norm` properties on the device: selecting the input (`VIDIOC_S_INPUT`) and
//! its analogue TV standard (`VIDIOC_S_STD`) when the device opens, before its formats are
//! listed (they depend on the input), and the picture the input's standard sends, which
//! negotiation prefers (`Source::native`). Errors are built here, for the element to post.

use crate::caps;
use crate::rustv4l2src::face::settings::{Settings, TvNorm};
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, Device, Input, Standard};

/// Selects the input, then the norm, as `settings` ask (in that order: the norms an input
/// supports are its own), and returns the input in use and the picture its standard sends, if
/// it has one.
pub(in crate::rustv4l2src) fn select(
    device: &Device,
    settings: &Settings,
) -> Result<(u32, Option<caps::Native>), gst::ErrorMessage> {
    let path = device.path().display().to_string();
    if let Ok(index) = u32::try_from(settings.input) {
        let inputs = device
            .enum_inputs()
            .map_err(|e| settings_error(&format!("Could not list the inputs of '{path}': {e}")))?;
        let Some(input) = inputs.iter().find(|i| i.index == index) else {
            return Err(settings_error(&format!(
                "Device '{path}' has no input {index} (the 'input' property). Its inputs: {}.",
                list_inputs(&inputs)
            )));
        };
        device.s_input(index).map_err(|e| {
            settings_error(&format!(
                "Device '{path}' could not switch to input {index} ('{}'): {e}",
                input.name
            ))
        })?;
        gst::info!(CAT, "{}: Input {} ('{}') selected", path, index, input.name);
    }
    let input = current_input(device);
    // A device without inputs to choose has only the first.
    let index = input.as_ref().map_or(0, |i| i.index);
    if settings.norm != TvNorm::None {
        set_norm(device, &path, input.as_ref(), settings.norm)?;
    }
    if !input.as_ref().is_some_and(Input::has_std) {
        return Ok((index, None));
    }
    let std = match device.g_std() {
        Ok(Some(std)) => std,
        Ok(None) => return Ok((index, None)),
        Err(e) => {
            gst::warning!(CAT, "{}: No current TV standard: {}", path, e);
            return Ok((index, None));
        }
    };
    let standards = device.enum_std().unwrap_or_else(|e| {
        gst::warning!(CAT, "{}: Listing TV standards: {}", path, e);
        Vec::new()
    });
    let native = native_of(&standards, std);
    gst::debug!(CAT, "{}: Standard {:#x}: {:?}", path, std, native);
    Ok((index, native))
}

/// The input the device captures from, as `VIDIOC_ENUMINPUT` describes it now; `None` for a
/// device without inputs to choose.
pub(in crate::rustv4l2src) fn current_input(device: &Device) -> Option<Input> {
    let index = device.g_input().ok()?;
    device.enum_input(index).ok()
}

/// `VIDIOC_S_STD` of `norm`, after checking that the current input supports it.
fn set_norm(
    device: &Device,
    path: &str,
    input: Option<&Input>,
    norm: TvNorm,
) -> Result<(), gst::ErrorMessage> {
    let which = input.map_or_else(
        || "its input".to_string(),
        |i| format!("input {} ('{}')", i.index, i.name),
    );
    let supported = input.map_or(0, |i| i.std);
    if supported & norm.std_id() == 0 {
        let offered = device.enum_std().unwrap_or_default();
        let offered = if supported == 0 || offered.is_empty() {
            "it supports no TV norm, as it is not an analogue video input. Choose an \
             analogue input with 'input', or leave 'norm' at none"
                .to_string()
        } else {
            format!("it supports {}", list_norms(&offered))
        };
        return Err(settings_error(&format!(
            "Device '{path}' cannot use the TV norm {} on {which}: {offered}.",
            norm.nick()
        )));
    }
    device.s_std(norm.std_id()).map_err(|e| {
        settings_error(&format!(
            "Device '{path}' refused the TV norm {} on {which}: {e}",
            norm.nick()
        ))
    })?;
    gst::info!(CAT, "{}: TV norm {} set on {}", path, norm.nick(), which);
    Ok(())
}

/// The norm the device's current input uses (`VIDIOC_G_STD`): what `norm` reads while open.
pub(super) fn device_norm(device: &Device) -> TvNorm {
    match device.g_std() {
        Ok(std) => TvNorm::of_std(std.unwrap_or(0)),
        Err(e) => {
            gst::debug!(CAT, "No current TV standard: {}", e);
            TvNorm::None
        }
    }
}

/// The picture a standard sends: 720 pixels a line (BT.601 sampling), its active lines (576
/// of 625, 480 of 525) in interlaced frames, at its frame rate. The driver's description of
/// the standard (`VIDIOC_ENUMSTD`) says which; without one, its bits do.
pub(super) fn native_of(standards: &[Standard], std: u64) -> Option<caps::Native> {
    if std == 0 {
        return None;
    }
    let described = standards.iter().find(|s| s.id & std != 0);
    let lines_525 = match described {
        Some(s) => s.frame_lines == 525,
        None => std & v4l2::V4L2_STD_525_60 != 0,
    };
    let rate = described
        .map(|s| s.frame_period)
        .filter(|p| p.numerator != 0 && p.denominator != 0)
        .and_then(|p| {
            Some(gst::Fraction::new(
                i32::try_from(p.denominator).ok()?,
                i32::try_from(p.numerator).ok()?,
            ))
        })
        .unwrap_or(if lines_525 {
            gst::Fraction::new(30000, 1001)
        } else {
            gst::Fraction::new(25, 1)
        });
    Some(caps::Native {
        width: 720,
        height: if lines_525 { 480 } else { 576 },
        rate: Some(rate),
        interlaced: true,
    })
}

fn settings_error(text: &str) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", text))
}

fn list_inputs(inputs: &[Input]) -> String {
    if inputs.is_empty() {
        return "none to choose (the driver lists no inputs)".into();
    }
    let named: Vec<_> = inputs
        .iter()
        .map(|i| format!("{} '{}'", i.index, i.name))
        .collect();
    named.join(", ")
}

fn list_norms(standards: &[Standard]) -> String {
    let names: Vec<_> = standards.iter().map(|s| s.name.as_str()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::Fract;

    fn standard(id: u64, name: &str, period: (u32, u32), lines: u32) -> Standard {
        Standard {
            id,
            name: name.into(),
            frame_period: Fract::new(period.0, period.1),
            frame_lines: lines,
        }
    }

    #[test]
    fn a_standard_sends_its_own_lines_at_its_own_rate() {
        gst::init().unwrap();
        let listed = [
            standard(0xb000, "NTSC", (1001, 30000), 525),
            standard(0xff, "PAL", (1, 25), 625),
            standard(0x800, "PAL-60", (1001, 30000), 525),
        ];
        let pal = native_of(&listed, 0xff).unwrap();
        assert_eq!((pal.width, pal.height), (720, 576));
        assert_eq!(pal.rate, Some(gst::Fraction::new(25, 1)));
        assert!(pal.interlaced);
        let ntsc = native_of(&listed, 0x1000).unwrap();
        assert_eq!((ntsc.width, ntsc.height), (720, 480));
        assert_eq!(ntsc.rate, Some(gst::Fraction::new(30000, 1001)));
        // PAL-60 is PAL's colour on NTSC's lines and rate.
        assert_eq!(native_of(&listed, 0x800).unwrap().height, 480);
        // Undescribed: the bits decide.
        assert_eq!(native_of(&[], 0x10).unwrap().height, 576);
        assert_eq!(
            native_of(&[], 0x2000).unwrap().rate,
            Some(gst::Fraction::new(30000, 1001))
        );
        assert_eq!(native_of(&listed, 0), None);
    }
}
