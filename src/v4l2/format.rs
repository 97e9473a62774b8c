//! What a device says it can capture, as plain data: pixel formats, frame sizes and frame
//! intervals, in the kernel's terms. Filled in by probing (`Device::probe`), read by the
//! caps translation layer. Knows nothing of GStreamer.

use std::fmt;

/// A V4L2 pixel format code (`v4l2_fourcc(a, b, c, d)`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fourcc(pub u32);

impl Fourcc {
    pub const fn new(code: &[u8; 4]) -> Self {
        Fourcc(
            code[0] as u32
                | (code[1] as u32) << 8
                | (code[2] as u32) << 16
                | (code[3] as u32) << 24,
        )
    }

    pub fn bytes(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

impl fmt::Debug for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bytes() {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A time per frame, in seconds (`v4l2_fract`): 1/30 means 30 frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fract {
    pub numerator: u32,
    pub denominator: u32,
}

impl Fract {
    pub const fn new(numerator: u32, denominator: u32) -> Self {
        Fract {
            numerator,
            denominator,
        }
    }
}

/// The frame sizes a driver enumerates for one pixel format (`VIDIOC_ENUM_FRAMESIZES`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameSizes {
    Discrete(Vec<(u32, u32)>),
    /// `V4L2_FRMSIZE_TYPE_STEPWISE`; `CONTINUOUS` is the same with steps of 1.
    Stepwise(SizeRange),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeRange {
    pub min_width: u32,
    pub max_width: u32,
    pub step_width: u32,
    pub min_height: u32,
    pub max_height: u32,
    pub step_height: u32,
}

/// The frame intervals a driver enumerates for one format and size (`VIDIOC_ENUM_FRAMEINTERVALS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameIntervals {
    /// The driver does not enumerate intervals (many simple drivers don't): any rate goes.
    Unknown,
    Discrete(Vec<Fract>),
    /// `V4L2_FRMIVAL_TYPE_STEPWISE`; `CONTINUOUS` arrives as this with the step the kernel reports (1/1).
    Stepwise {
        min: Fract,
        max: Fract,
        step: Fract,
    },
}

/// One frame size (or a range of them) with the intervals the driver offers there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbedSize {
    Discrete {
        width: u32,
        height: u32,
        intervals: FrameIntervals,
    },
    /// For a range of sizes the intervals are those the driver gives at the largest size
    /// (the slowest case), which every size in the range can do.
    Range {
        range: SizeRange,
        intervals: FrameIntervals,
    },
}

/// One pixel format as the driver enumerates it (`VIDIOC_ENUM_FMT`), with its sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedFormat {
    pub fourcc: Fourcc,
    /// `V4L2_FMT_FLAG_*` (compressed, emulated, ...).
    pub flags: u32,
    pub description: String,
    /// Empty when the driver does not enumerate sizes.
    pub sizes: Vec<ProbedSize>,
}

/// The capture format the driver settled on (`VIDIOC_G_FMT`/`S_FMT`), single- or multi-planar
/// alike: a single-planar format is one plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub fourcc: Fourcc,
    /// `V4L2_FIELD_*`
    pub field: u32,
    pub colorspace: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
    pub planes: Vec<PlaneFormat>,
}

/// What to ask `VIDIOC_S_FMT` / `VIDIOC_TRY_FMT` for. A zero `field` (`V4L2_FIELD_ANY`) or
/// colorimetry field (`*_DEFAULT`) leaves the choice to the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormatRequest {
    pub fourcc: Fourcc,
    pub width: u32,
    pub height: u32,
    /// `V4L2_FIELD_*`
    pub field: u32,
    pub colorspace: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

impl FormatRequest {
    /// This format and size; field and colorimetry as the driver likes.
    pub fn new(fourcc: Fourcc, width: u32, height: u32) -> Self {
        FormatRequest {
            fourcc,
            width,
            height,
            ..Default::default()
        }
    }

    /// Whether any colorimetry field asks for something.
    pub fn has_colorimetry(&self) -> bool {
        self.colorspace != 0 || self.ycbcr_enc != 0 || self.quantization != 0 || self.xfer_func != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneFormat {
    pub bytesperline: u32,
    pub sizeimage: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trips_through_text() {
        let yuyv = Fourcc::new(b"YUYV");
        assert_eq!(yuyv.0, 0x5659_5559);
        assert_eq!(yuyv.to_string(), "YUYV");
        assert_eq!(Fourcc(0x0000_2020).to_string(), "  ??");
    }
}
