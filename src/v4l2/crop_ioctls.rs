//! The cropping ioctls of a capture node: the part of the picture the device can capture from
//! (`VIDIOC_G_SELECTION` on the crop bounds and default, `VIDIOC_CROPCAP` for drivers that
//! predate the selection API, which also gives the pixel aspect) and choosing a part of it
//! (`VIDIOC_S_SELECTION` on the crop target, `VIDIOC_S_CROP` where only that exists). One safe
//! function per ioctl as in `device.rs`, and the fallbacks between the two APIs built on them.
//! Knows nothing of GStreamer.

use super::device::{Device, retry};
use super::error::{Error, Result};
use super::format::Fract;
use super::sys::*;
use nix::errno::Errno;

/// A rectangle of the picture, in pixels (rows for the height, both fields of a frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    fn from_raw(r: v4l2_rect) -> Rect {
        Rect {
            left: r.left,
            top: r.top,
            width: r.width,
            height: r.height,
        }
    }

    fn to_raw(self) -> v4l2_rect {
        v4l2_rect {
            left: self.left,
            top: self.top,
            width: self.width,
            height: self.height,
        }
    }
}

/// Which crop rectangle `VIDIOC_G_SELECTION` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropTarget {
    /// The one in use.
    Crop,
    /// The one the driver starts with (usually the whole picture).
    Default,
    /// Where every crop rectangle must lie.
    Bounds,
}

impl CropTarget {
    fn raw(self) -> u32 {
        match self {
            CropTarget::Crop => V4L2_SEL_TGT_CROP,
            CropTarget::Default => V4L2_SEL_TGT_CROP_DEFAULT,
            CropTarget::Bounds => V4L2_SEL_TGT_CROP_BOUNDS,
        }
    }
}

/// What `VIDIOC_CROPCAP` tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropCap {
    pub bounds: Rect,
    pub defrect: Rect,
    /// Height over width of one pixel, as the kernel gives it (11/10 for NTSC sampled per
    /// BT.601: pixels taller than wide); `None` when the driver does not say.
    pub pixelaspect: Option<Fract>,
}

/// The errnos of a driver without this ioctl, or of an input that cannot crop (vivid's webcam
/// answers `ENODATA`).
fn cannot(errno: Errno) -> bool {
    matches!(errno, Errno::ENOTTY | Errno::EINVAL | Errno::ENODATA)
}

impl Device {
    /// `VIDIOC_CROPCAP`; `None` when the driver or the current input has nothing to say.
    pub fn cropcap(&self) -> Result<Option<CropCap>> {
        let mut raw = v4l2_cropcap {
            type_: self.buf_type(),
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_cropcap the kernel fills in place.
        match retry(|| unsafe { vidioc_cropcap(self.raw(), &mut raw) }) {
            Ok(_) => {}
            Err(errno) if cannot(errno) => return Ok(None),
            Err(errno) => return Err(self.err("VIDIOC_CROPCAP", errno)),
        }
        let p = raw.pixelaspect;
        Ok(Some(CropCap {
            bounds: Rect::from_raw(raw.bounds),
            defrect: Rect::from_raw(raw.defrect),
            pixelaspect: (p.numerator != 0 && p.denominator != 0)
                .then(|| Fract::new(p.numerator, p.denominator)),
        }))
    }

    /// `VIDIOC_G_SELECTION` of one crop rectangle.
    pub fn g_selection(&self, target: CropTarget) -> Result<Rect> {
        let mut raw = v4l2_selection {
            // Since Linux 4.13 drivers take the node's own buffer type, _MPLANE or not.
            type_: self.buf_type(),
            target: target.raw(),
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_selection the kernel fills in place.
        retry(|| unsafe { vidioc_g_selection(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_SELECTION", e))?;
        Ok(Rect::from_raw(raw.r))
    }

    /// `VIDIOC_S_SELECTION` of the crop rectangle: returns the one the driver chose, which
    /// may differ (aligned, or moved inside the bounds).
    pub fn s_selection(&self, rect: Rect) -> Result<Rect> {
        let mut raw = v4l2_selection {
            type_: self.buf_type(),
            target: V4L2_SEL_TGT_CROP,
            r: rect.to_raw(),
            ..Default::default()
        };
        // SAFETY: `raw` is a valid, initialised v4l2_selection the kernel may update.
        retry(|| unsafe { vidioc_s_selection(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_SELECTION", e))?;
        Ok(Rect::from_raw(raw.r))
    }

    /// `VIDIOC_S_CROP`: the older API, which does not say what the driver chose.
    pub fn s_crop(&self, rect: Rect) -> Result<()> {
        let raw = v4l2_crop {
            type_: self.buf_type(),
            c: rect.to_raw(),
        };
        // SAFETY: `raw` is a valid v4l2_crop the kernel only reads.
        retry(|| unsafe { vidioc_s_crop(self.raw(), &raw) })
            .map_err(|e| self.err("VIDIOC_S_CROP", e))?;
        Ok(())
    }

    /// Where crop rectangles must lie: the selection API's crop bounds, else
    /// `VIDIOC_CROPCAP`'s. `None` when the current input cannot crop: neither answers, or
    /// they give an empty rectangle.
    pub fn crop_bounds(&self) -> Result<Option<Rect>> {
        self.crop_rect_or_cropcap(CropTarget::Bounds, |cap| cap.bounds)
    }

    /// The crop rectangle the driver starts with, found as `crop_bounds` is.
    pub fn crop_default(&self) -> Result<Option<Rect>> {
        self.crop_rect_or_cropcap(CropTarget::Default, |cap| cap.defrect)
    }

    fn crop_rect_or_cropcap(
        &self,
        target: CropTarget,
        from_cropcap: fn(&CropCap) -> Rect,
    ) -> Result<Option<Rect>> {
        let found = match self.g_selection(target) {
            Ok(rect) => Some(rect),
            Err(e) if cannot(e.errno) => self.cropcap()?.map(|cap| from_cropcap(&cap)),
            Err(e) => return Err(e),
        };
        Ok(found.filter(|r| r.width > 0 && r.height > 0))
    }

    /// Crops the picture to `rect`: `VIDIOC_S_SELECTION`, or `VIDIOC_S_CROP` for a driver
    /// without the selection API. Returns the rectangle the driver took (`rect` itself after
    /// `S_CROP`, which does not say).
    pub fn set_crop(&self, rect: Rect) -> Result<Rect> {
        match self.s_selection(rect) {
            Err(Error {
                errno: Errno::ENOTTY,
                ..
            }) => self.s_crop(rect).map(|()| rect),
            done => done,
        }
    }
}
