//! The `crop-*` properties on the device: which rectangle of the picture to capture (a pure
//! decision, from the crop bounds the driver reports and the pixels to cut at each side, the
//! settings' `Sides`), and asking the driver for it before each `VIDIOC_S_FMT`, as v4l2src does,
//! so that the frames downstream are the cropped size. The ioctls are `crate::v4l2`'s; the caps of that size are
//! `crate::caps::restrict_size`'s.

use crate::rustv4l2src::face::settings::Sides;
use crate::rustv4l2src::shared::CAT;
use crate::v4l2::{self, Device, Rect};

/// Why `Sides` cannot be cut.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Uncroppable {
    /// The device (or its current input) reports no crop bounds.
    NoBounds,
    /// Nothing would be left of the picture, whose bounds these are.
    TooMuch(Rect),
}

/// The rectangle to capture: `bounds` less `sides`; `None` when nothing is cut (the driver's
/// default then applies). Unlike v4l2src, which ignores crop values it cannot apply with a
/// warning, an impossible crop is an error: frames of another size than asked are not what
/// the user wanted.
pub(super) fn rect(bounds: Option<Rect>, sides: Sides) -> Result<Option<Rect>, Uncroppable> {
    if !sides.any() {
        return Ok(None);
    }
    let bounds = bounds.ok_or(Uncroppable::NoBounds)?;
    let too_much = || Uncroppable::TooMuch(bounds);
    let width = bounds
        .width
        .checked_sub(sides.left)
        .and_then(|w| w.checked_sub(sides.right))
        .filter(|&w| w > 0)
        .ok_or_else(too_much)?;
    let height = bounds
        .height
        .checked_sub(sides.top)
        .and_then(|h| h.checked_sub(sides.bottom))
        .filter(|&h| h > 0)
        .ok_or_else(too_much)?;
    let offset = |start: i32, by: u32| i32::try_from(by).ok().and_then(|by| start.checked_add(by));
    Ok(Some(Rect {
        left: offset(bounds.left, sides.left).ok_or_else(too_much)?,
        top: offset(bounds.top, sides.top).ok_or_else(too_much)?,
        width,
        height,
    }))
}

/// The crop bounds of the device's current input; `None` when it cannot crop (or will not
/// say, which is the same to the user).
pub(in crate::rustv4l2src) fn bounds(device: &Device) -> Option<Rect> {
    device.crop_bounds().unwrap_or_else(|e| {
        gst::debug!(CAT, "{}: No crop bounds: {}", device.path().display(), e);
        None
    })
}

/// `rect`, checked against what the device can do, as the error to post.
pub(in crate::rustv4l2src) fn decide(
    path: &str,
    bounds: Option<Rect>,
    sides: Sides,
) -> Result<Option<Rect>, gst::ErrorMessage> {
    rect(bounds, sides).map_err(|why| uncroppable(path, sides, &why))
}

/// Sets the crop rectangle before a format is set: `crop` if any, else the driver's default
/// (best effort: a crop from an earlier capture would otherwise stay, on drivers that keep it
/// from one open to the next).
pub(in crate::rustv4l2src) fn apply(
    device: &Device,
    crop: Option<Rect>,
) -> Result<(), gst::ErrorMessage> {
    let path = device.path().display();
    let Some(crop) = crop else {
        if let Ok(Some(default)) = device.crop_default()
            && let Err(e) = device.set_crop(default)
        {
            gst::debug!(CAT, "{}: Could not reset the crop: {}", path, e);
        }
        return Ok(());
    };
    let got = device.set_crop(crop).map_err(|e| crop_refused(crop, &e))?;
    if got != crop {
        gst::warning!(
            CAT,
            "{}: Asked to crop to {:?}, the driver chose {:?}",
            path,
            crop,
            got
        );
    } else {
        gst::debug!(CAT, "{}: Cropped to {:?}", path, crop);
    }
    Ok(())
}

/// The `crop-*` properties ask for what the device cannot do.
fn uncroppable(path: &str, sides: Sides, why: &Uncroppable) -> gst::ErrorMessage {
    let asked = format!(
        "crop-top={} crop-left={} crop-bottom={} crop-right={}",
        sides.top, sides.left, sides.bottom, sides.right
    );
    match why {
        Uncroppable::NoBounds => gst::error_msg!(
            gst::ResourceError::Settings,
            (
                "Device '{}' cannot crop on its current input (it reports no crop bounds: VIDIOC_G_SELECTION and VIDIOC_CROPCAP fail), so {} cannot be applied. Set the crop-* properties to 0 and crop downstream (videocrop), or select an input that can crop.",
                path,
                asked
            )
        ),
        Uncroppable::TooMuch(bounds) => gst::error_msg!(
            gst::ResourceError::Settings,
            (
                "Device '{}' cannot apply {}: its picture is {}x{} (crop-bounds <{}, {}, {}, {}>), so nothing would be left. Crop less.",
                path,
                asked,
                bounds.width,
                bounds.height,
                bounds.left,
                bounds.top,
                bounds.width,
                bounds.height
            )
        ),
    }
}

/// The driver refused the crop rectangle.
fn crop_refused(rect: v4l2::Rect, e: &v4l2::Error) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "Device '{}' refused to crop to {}x{} at ({}, {}): {}. Check the crop-* properties against crop-bounds.",
            e.device.display(),
            rect.width,
            rect.height,
            rect.left,
            rect.top,
            e
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAL: Rect = Rect {
        left: 0,
        top: 0,
        width: 720,
        height: 576,
    };

    fn sides(top: u32, left: u32, bottom: u32, right: u32) -> Sides {
        Sides {
            top,
            left,
            bottom,
            right,
        }
    }

    #[test]
    fn no_crop_asks_for_nothing_even_of_a_device_that_cannot_crop() {
        assert_eq!(rect(None, Sides::default()), Ok(None));
        assert_eq!(rect(Some(PAL), Sides::default()), Ok(None));
    }

    #[test]
    fn each_side_is_cut_from_the_bounds() {
        assert_eq!(
            rect(Some(PAL), sides(10, 20, 30, 40)),
            Ok(Some(Rect {
                left: 20,
                top: 10,
                width: 660,
                height: 536
            }))
        );
        // Bounds that do not start at 0 move the rectangle with them.
        let offset = Rect {
            left: 8,
            top: -4,
            ..PAL
        };
        assert_eq!(
            rect(Some(offset), sides(4, 2, 0, 0)),
            Ok(Some(Rect {
                left: 10,
                top: 0,
                width: 718,
                height: 572
            }))
        );
    }

    #[test]
    fn a_device_without_bounds_or_a_crop_that_leaves_nothing_is_an_error() {
        assert_eq!(rect(None, sides(0, 0, 1, 0)), Err(Uncroppable::NoBounds));
        for too_much in [
            sides(0, 360, 0, 360),
            sides(576, 0, 0, 0),
            sides(0, 0, 0, u32::MAX),
            sides(300, 0, 300, 0),
        ] {
            assert_eq!(
                rect(Some(PAL), too_much),
                Err(Uncroppable::TooMuch(PAL)),
                "{too_much:?}"
            );
        }
        assert!(rect(Some(PAL), sides(0, 719, 0, 0)).is_ok());
    }
}
