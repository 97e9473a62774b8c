//! Colorimetry and field order: the V4L2 `colorspace`, `xfer_func`, `ycbcr_enc`,
//! `quantization` and `field` of a format on one side, GStreamer's `colorimetry`,
//! `interlace-mode` and `field-order` caps fields on the other.
//!
//! A V4L2 colorspace names the primaries and, through them, the defaults of the three other
//! colorimetry fields; each of those may override its default. GStreamer spells all four out.
//! The defaults are the ones `videodev2.h` (`V4L2_MAP_*_DEFAULT`) and the colorspace pages of
//! the V4L2 documentation give.

use gst_video::{
    VideoColorMatrix as Matrix, VideoColorPrimaries as Primaries, VideoColorRange as Range,
    VideoColorimetry, VideoFieldOrder, VideoInterlaceMode, VideoTransferFunction as Transfer,
};

use crate::v4l2::{
    V4L2_FIELD_ALTERNATE, V4L2_FIELD_ANY, V4L2_FIELD_BOTTOM, V4L2_FIELD_INTERLACED,
    V4L2_FIELD_INTERLACED_BT, V4L2_FIELD_INTERLACED_TB, V4L2_FIELD_NONE, V4L2_FIELD_SEQ_BT,
    V4L2_FIELD_SEQ_TB, V4L2_FIELD_TOP, V4L2_STD_525_60,
};

// `enum v4l2_colorspace`.
pub const COLORSPACE_DEFAULT: u32 = 0;
pub const COLORSPACE_SMPTE170M: u32 = 1;
pub const COLORSPACE_SMPTE240M: u32 = 2;
pub const COLORSPACE_REC709: u32 = 3;
/// Deprecated, never set by drivers.
pub const COLORSPACE_BT878: u32 = 4;
pub const COLORSPACE_470_SYSTEM_M: u32 = 5;
pub const COLORSPACE_470_SYSTEM_BG: u32 = 6;
pub const COLORSPACE_JPEG: u32 = 7;
pub const COLORSPACE_SRGB: u32 = 8;
pub const COLORSPACE_OPRGB: u32 = 9;
pub const COLORSPACE_BT2020: u32 = 10;
pub const COLORSPACE_RAW: u32 = 11;
pub const COLORSPACE_DCI_P3: u32 = 12;

// `enum v4l2_xfer_func`.
pub const XFER_FUNC_DEFAULT: u32 = 0;
pub const XFER_FUNC_709: u32 = 1;
pub const XFER_FUNC_SRGB: u32 = 2;
pub const XFER_FUNC_OPRGB: u32 = 3;
pub const XFER_FUNC_SMPTE240M: u32 = 4;
pub const XFER_FUNC_NONE: u32 = 5;
pub const XFER_FUNC_DCI_P3: u32 = 6;
pub const XFER_FUNC_SMPTE2084: u32 = 7;

// `enum v4l2_ycbcr_encoding`.
pub const YCBCR_ENC_DEFAULT: u32 = 0;
pub const YCBCR_ENC_601: u32 = 1;
pub const YCBCR_ENC_709: u32 = 2;
pub const YCBCR_ENC_XV601: u32 = 3;
pub const YCBCR_ENC_XV709: u32 = 4;
pub const YCBCR_ENC_SYCC: u32 = 5;
pub const YCBCR_ENC_BT2020: u32 = 6;
pub const YCBCR_ENC_BT2020_CONST_LUM: u32 = 7;
pub const YCBCR_ENC_SMPTE240M: u32 = 8;

// `enum v4l2_quantization`.
pub const QUANTIZATION_DEFAULT: u32 = 0;
pub const QUANTIZATION_FULL_RANGE: u32 = 1;
pub const QUANTIZATION_LIM_RANGE: u32 = 2;

/// The four colorimetry fields of a `v4l2_pix_format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2Colorimetry {
    pub colorspace: u32,
    pub xfer_func: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
}

/// The driver's colorimetry as GStreamer's. `is_rgb` for R'G'B' samples (no matrix applies,
/// and their default range is full); `height` picks the BT.2020 transfer GStreamer names for
/// UHD. `None` when the colorspace is one GStreamer has no primaries for, or unset.
pub fn to_gst(c: &V4l2Colorimetry, is_rgb: bool, height: u32) -> Option<VideoColorimetry> {
    // The colorspace's primaries and the defaults of the three other fields.
    let (primaries, default_transfer, default_matrix) = match c.colorspace {
        COLORSPACE_SMPTE170M => (Primaries::Smpte170m, Transfer::Bt601, Matrix::Bt601),
        COLORSPACE_REC709 => (Primaries::Bt709, Transfer::Bt709, Matrix::Bt709),
        // sYCC is BT.601 Y'CbCr over sRGB.
        COLORSPACE_SRGB | COLORSPACE_JPEG => (Primaries::Bt709, Transfer::Srgb, Matrix::Bt601),
        COLORSPACE_OPRGB => (Primaries::Adobergb, Transfer::Adobergb, Matrix::Bt601),
        COLORSPACE_BT2020 => (Primaries::Bt2020, bt2020_transfer(height), Matrix::Bt2020),
        COLORSPACE_SMPTE240M => (Primaries::Smpte240m, Transfer::Smpte240m, Matrix::Smpte240m),
        // Analogue TV: BT.709's transfer function, BT.601's matrix.
        COLORSPACE_470_SYSTEM_M => (Primaries::Bt470m, Transfer::Bt709, Matrix::Bt601),
        COLORSPACE_470_SYSTEM_BG => (Primaries::Bt470bg, Transfer::Bt709, Matrix::Bt601),
        // DCI-P3 (SMPTE RP 431-2) with its gamma 2.6, which GStreamer has no name for.
        COLORSPACE_DCI_P3 => (Primaries::Smpterp431, Transfer::Unknown, Matrix::Bt709),
        // "Raw" sensor data: explicitly nothing known.
        COLORSPACE_RAW => {
            return Some(VideoColorimetry::new(
                Range::Unknown,
                if is_rgb { Matrix::Rgb } else { Matrix::Unknown },
                Transfer::Unknown,
                Primaries::Unknown,
            ));
        }
        _ => return None,
    };

    let transfer = match c.xfer_func {
        XFER_FUNC_DEFAULT => default_transfer,
        // One curve that GStreamer names after each standard using it.
        XFER_FUNC_709 => match c.colorspace {
            COLORSPACE_SMPTE170M => Transfer::Bt601,
            COLORSPACE_BT2020 => bt2020_transfer(height),
            _ => Transfer::Bt709,
        },
        XFER_FUNC_SRGB => Transfer::Srgb,
        XFER_FUNC_OPRGB => Transfer::Adobergb,
        XFER_FUNC_SMPTE240M => Transfer::Smpte240m,
        XFER_FUNC_NONE => Transfer::Gamma10,
        XFER_FUNC_SMPTE2084 => Transfer::Smpte2084,
        _ => Transfer::Unknown,
    };

    let matrix = if is_rgb {
        Matrix::Rgb
    } else {
        match c.ycbcr_enc {
            YCBCR_ENC_DEFAULT => default_matrix,
            // xvYCC and sYCC reuse the BT.601/709 matrices over a wider range of values.
            YCBCR_ENC_601 | YCBCR_ENC_XV601 | YCBCR_ENC_SYCC => Matrix::Bt601,
            YCBCR_ENC_709 | YCBCR_ENC_XV709 => Matrix::Bt709,
            // GStreamer has no constant-luminance BT.2020; the closest is the usual one.
            YCBCR_ENC_BT2020 | YCBCR_ENC_BT2020_CONST_LUM => Matrix::Bt2020,
            YCBCR_ENC_SMPTE240M => Matrix::Smpte240m,
            _ => Matrix::Unknown,
        }
    };

    let range = match c.quantization {
        QUANTIZATION_FULL_RANGE => Range::Range0_255,
        QUANTIZATION_LIM_RANGE => Range::Range16_235,
        // V4L2_MAP_QUANTIZATION_DEFAULT: full for R'G'B' (but limited for BT.2020 R'G'B'),
        // for JPEG and for xvYCC, limited otherwise.
        QUANTIZATION_DEFAULT => {
            let full = if is_rgb {
                c.colorspace != COLORSPACE_BT2020
            } else {
                c.colorspace == COLORSPACE_JPEG
                    || matches!(c.ycbcr_enc, YCBCR_ENC_XV601 | YCBCR_ENC_XV709)
            };
            if full {
                Range::Range0_255
            } else {
                Range::Range16_235
            }
        }
        _ => Range::Unknown,
    };

    Some(VideoColorimetry::new(range, matrix, transfer, primaries))
}

fn bt2020_transfer(height: u32) -> Transfer {
    // The same curve; GStreamer's "bt2020" colorimetry says 12 bits, as UHD uses.
    if height >= 2160 {
        Transfer::Bt202012
    } else {
        Transfer::Bt202010
    }
}

/// GStreamer's colorimetry as what to ask the driver for. A part GStreamer leaves unknown is
/// `*_DEFAULT`, for the driver to choose.
pub fn from_gst(c: &VideoColorimetry) -> V4l2Colorimetry {
    let colorspace = match c.primaries() {
        // Two colorspaces share these primaries; the range tells them apart.
        Primaries::Bt709 if c.range() == Range::Range16_235 => COLORSPACE_REC709,
        Primaries::Bt709 => COLORSPACE_SRGB,
        Primaries::Smpte170m => COLORSPACE_SMPTE170M,
        Primaries::Smpte240m => COLORSPACE_SMPTE240M,
        Primaries::Bt470m => COLORSPACE_470_SYSTEM_M,
        Primaries::Bt470bg => COLORSPACE_470_SYSTEM_BG,
        Primaries::Bt2020 => COLORSPACE_BT2020,
        Primaries::Adobergb => COLORSPACE_OPRGB,
        Primaries::Smpterp431 => COLORSPACE_DCI_P3,
        // What jpegdec says about a JPEG: full-range BT.601 and nothing else.
        Primaries::Unknown
            if c.range() == Range::Range0_255
                && c.matrix() == Matrix::Bt601
                && c.transfer() == Transfer::Unknown =>
        {
            COLORSPACE_JPEG
        }
        _ => COLORSPACE_DEFAULT,
    };
    let xfer_func = match c.transfer() {
        Transfer::Bt709 | Transfer::Bt601 | Transfer::Bt202010 | Transfer::Bt202012 => {
            XFER_FUNC_709
        }
        Transfer::Srgb => XFER_FUNC_SRGB,
        Transfer::Adobergb => XFER_FUNC_OPRGB,
        Transfer::Smpte240m => XFER_FUNC_SMPTE240M,
        Transfer::Gamma10 => XFER_FUNC_NONE,
        Transfer::Smpte2084 => XFER_FUNC_SMPTE2084,
        _ => XFER_FUNC_DEFAULT,
    };
    let ycbcr_enc = match c.matrix() {
        // FCC's matrix is BT.601's, to three digits.
        Matrix::Bt601 | Matrix::Fcc => YCBCR_ENC_601,
        Matrix::Bt709 => YCBCR_ENC_709,
        Matrix::Bt2020 => YCBCR_ENC_BT2020,
        Matrix::Smpte240m => YCBCR_ENC_SMPTE240M,
        // R'G'B' has no encoding to ask for.
        _ => YCBCR_ENC_DEFAULT,
    };
    let quantization = match c.range() {
        Range::Range0_255 => QUANTIZATION_FULL_RANGE,
        Range::Range16_235 => QUANTIZATION_LIM_RANGE,
        _ => QUANTIZATION_DEFAULT,
    };
    V4l2Colorimetry {
        colorspace,
        xfer_func,
        ycbcr_enc,
        quantization,
    }
}

/// Whether the colorimetry the driver produces (`got`) is what caps asked for: any part the
/// caps leave unknown matches, and jpegdec's "full-range BT.601, nothing else known" matches
/// the JPEG colorspace it describes.
pub fn matches(asked: &VideoColorimetry, got: &VideoColorimetry) -> bool {
    fn pick<T: PartialEq>(asked: T, got: T, unknown: T) -> T {
        if asked == unknown { got } else { asked }
    }
    let filled = VideoColorimetry::new(
        pick(asked.range(), got.range(), Range::Unknown),
        pick(asked.matrix(), got.matrix(), Matrix::Unknown),
        pick(asked.transfer(), got.transfer(), Transfer::Unknown),
        pick(asked.primaries(), got.primaries(), Primaries::Unknown),
    );
    filled == *got
        || (filled.range() == Range::Range0_255
            && filled.matrix() == Matrix::Bt601
            && asked.transfer() == Transfer::Unknown
            && asked.primaries() == Primaries::Unknown
            && got.transfer() == Transfer::Srgb
            && got.primaries() == Primaries::Bt709)
}

/// How a V4L2 `field` is said in caps. Only the layouts GStreamer has a mode for are
/// representable: both fields interleaved line by line in one buffer, or one field per buffer
/// (`alternate`, whose buffers are flagged top or bottom field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    pub mode: VideoInterlaceMode,
    pub order: VideoFieldOrder,
}

/// Which field comes first in a `V4L2_FIELD_INTERLACED` frame: the spec leaves it to the TV
/// standard (`VIDIOC_G_STD`): the bottom field in the 525-line standards (NTSC, PAL-M), the
/// top one in all others. Unknown without a standard, or with one of each kind.
pub fn interlaced_order(std: Option<u64>) -> VideoFieldOrder {
    match std {
        Some(s) if s != 0 && s & !V4L2_STD_525_60 == 0 => VideoFieldOrder::BottomFieldFirst,
        Some(s) if s != 0 && s & V4L2_STD_525_60 == 0 => VideoFieldOrder::TopFieldFirst,
        _ => VideoFieldOrder::Unknown,
    }
}

/// The caps fields of a V4L2 field order, or why there are none: `V4L2_FIELD_SEQ_TB/BT` (one
/// field after the other in a buffer) would need GStreamer's `fields` mode, which takes one
/// `GstVideoMeta` per field and which neither v4l2src nor common elements handle; `TOP` or
/// `BOTTOM` alone is half the picture.
pub fn fields_to_gst(field: u32) -> Result<Fields, String> {
    let (mode, order) = match field {
        V4L2_FIELD_NONE => (VideoInterlaceMode::Progressive, VideoFieldOrder::Unknown),
        // Which field comes first depends on the TV standard; the driver does not say here.
        V4L2_FIELD_INTERLACED => (VideoInterlaceMode::Interleaved, VideoFieldOrder::Unknown),
        V4L2_FIELD_INTERLACED_TB => (
            VideoInterlaceMode::Interleaved,
            VideoFieldOrder::TopFieldFirst,
        ),
        V4L2_FIELD_INTERLACED_BT => (
            VideoInterlaceMode::Interleaved,
            VideoFieldOrder::BottomFieldFirst,
        ),
        V4L2_FIELD_ALTERNATE => (VideoInterlaceMode::Alternate, VideoFieldOrder::Unknown),
        V4L2_FIELD_SEQ_TB | V4L2_FIELD_SEQ_BT => {
            return Err(
                "the driver delivers both fields one after the other in each buffer \
                 (V4L2_FIELD_SEQ_TB/BT), which GStreamer caps cannot describe"
                    .into(),
            );
        }
        V4L2_FIELD_TOP | V4L2_FIELD_BOTTOM => {
            return Err("the driver delivers only one of the two fields".into());
        }
        other => return Err(format!("the driver reports an unknown field order {other}")),
    };
    Ok(Fields { mode, order })
}

/// The V4L2 field order to ask for caps that say `mode` (and `order`).
pub fn fields_from_gst(mode: VideoInterlaceMode, order: VideoFieldOrder) -> u32 {
    match (mode, order) {
        (VideoInterlaceMode::Progressive, _) => V4L2_FIELD_NONE,
        (VideoInterlaceMode::Alternate, _) => V4L2_FIELD_ALTERNATE,
        (_, VideoFieldOrder::TopFieldFirst) => V4L2_FIELD_INTERLACED_TB,
        (_, VideoFieldOrder::BottomFieldFirst) => V4L2_FIELD_INTERLACED_BT,
        (VideoInterlaceMode::Interleaved, _) => V4L2_FIELD_INTERLACED,
        // `mixed` and `fields` have no V4L2 counterpart: let the driver choose.
        _ => V4L2_FIELD_ANY,
    }
}

/// GStreamer's pixel aspect ratio (width over height of one pixel) from the one
/// `VIDIOC_CROPCAP` reports, which is height over width: NTSC's 11/10 is 10/11 in caps.
pub fn pixel_aspect_ratio(cropcap: Option<crate::v4l2::Fract>) -> gst::Fraction {
    match cropcap {
        Some(f) if f.numerator > 0 && f.denominator > 0 => {
            match (i32::try_from(f.denominator), i32::try_from(f.numerator)) {
                (Ok(n), Ok(d)) => gst::Fraction::new(n, d),
                _ => gst::Fraction::new(1, 1),
            }
        }
        _ => gst::Fraction::new(1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4l2(colorspace: u32, xfer_func: u32, ycbcr_enc: u32, quantization: u32) -> V4l2Colorimetry {
        V4l2Colorimetry {
            colorspace,
            xfer_func,
            ycbcr_enc,
            quantization,
        }
    }

    fn named(s: &str) -> VideoColorimetry {
        s.parse().unwrap()
    }

    fn yuv(c: V4l2Colorimetry) -> String {
        to_gst(&c, false, 480).unwrap().to_string()
    }

    #[test]
    fn colorspace_defaults_give_gstreamers_named_colorimetries() {
        gst::init().unwrap();
        assert_eq!(yuv(v4l2(COLORSPACE_SMPTE170M, 0, 0, 0)), "bt601");
        assert_eq!(yuv(v4l2(COLORSPACE_REC709, 0, 0, 0)), "bt709");
        assert_eq!(yuv(v4l2(COLORSPACE_SMPTE240M, 0, 0, 0)), "smpte240m");
        assert_eq!(
            to_gst(&v4l2(COLORSPACE_BT2020, 0, 0, 0), false, 2160)
                .unwrap()
                .to_string(),
            "bt2020"
        );
        assert_eq!(
            to_gst(&v4l2(COLORSPACE_BT2020, 0, 0, 0), false, 1080).unwrap(),
            named("bt2020-10")
        );
        assert_eq!(
            to_gst(&v4l2(COLORSPACE_SRGB, 0, 0, 0), true, 480)
                .unwrap()
                .to_string(),
            "sRGB"
        );
        // JPEG: full-range BT.601 over sRGB.
        let jpeg = to_gst(&v4l2(COLORSPACE_JPEG, 0, 0, 0), false, 480).unwrap();
        assert_eq!(
            (
                jpeg.range(),
                jpeg.matrix(),
                jpeg.transfer(),
                jpeg.primaries()
            ),
            (
                Range::Range0_255,
                Matrix::Bt601,
                Transfer::Srgb,
                Primaries::Bt709
            )
        );
        // Y'CbCr in the sRGB colorspace is limited range unless the driver says otherwise:
        // what vivid's webcam input reports for YUYV.
        let srgb_yuv = to_gst(&v4l2(COLORSPACE_SRGB, 0, 0, 0), false, 480).unwrap();
        assert_eq!(srgb_yuv.range(), Range::Range16_235);
        assert_eq!(srgb_yuv.matrix(), Matrix::Bt601);
        let pal = to_gst(&v4l2(COLORSPACE_470_SYSTEM_BG, 0, 0, 0), false, 576).unwrap();
        assert_eq!(
            (pal.primaries(), pal.transfer(), pal.matrix()),
            (Primaries::Bt470bg, Transfer::Bt709, Matrix::Bt601)
        );
        assert_eq!(to_gst(&v4l2(COLORSPACE_DEFAULT, 0, 0, 0), false, 480), None);
        assert_eq!(to_gst(&v4l2(COLORSPACE_BT878, 0, 0, 0), false, 480), None);
        assert_eq!(to_gst(&v4l2(99, 0, 0, 0), false, 480), None);
    }

    #[test]
    fn overrides_of_each_field() {
        gst::init().unwrap();
        let c = to_gst(
            &v4l2(
                COLORSPACE_REC709,
                XFER_FUNC_SRGB,
                YCBCR_ENC_601,
                QUANTIZATION_FULL_RANGE,
            ),
            false,
            720,
        )
        .unwrap();
        assert_eq!(
            (c.range(), c.matrix(), c.transfer(), c.primaries()),
            (
                Range::Range0_255,
                Matrix::Bt601,
                Transfer::Srgb,
                Primaries::Bt709
            )
        );
        let transfer = |xfer, colorspace| {
            to_gst(&v4l2(colorspace, xfer, 0, 0), false, 480)
                .unwrap()
                .transfer()
        };
        assert_eq!(
            transfer(XFER_FUNC_709, COLORSPACE_SMPTE170M),
            Transfer::Bt601
        );
        assert_eq!(transfer(XFER_FUNC_709, COLORSPACE_SRGB), Transfer::Bt709);
        assert_eq!(
            transfer(XFER_FUNC_709, COLORSPACE_BT2020),
            Transfer::Bt202010
        );
        assert_eq!(transfer(XFER_FUNC_NONE, COLORSPACE_SRGB), Transfer::Gamma10);
        assert_eq!(
            transfer(XFER_FUNC_OPRGB, COLORSPACE_SRGB),
            Transfer::Adobergb
        );
        assert_eq!(
            transfer(XFER_FUNC_SMPTE2084, COLORSPACE_BT2020),
            Transfer::Smpte2084
        );
        assert_eq!(
            transfer(XFER_FUNC_DCI_P3, COLORSPACE_DCI_P3),
            Transfer::Unknown
        );
        let matrix = |enc| {
            to_gst(&v4l2(COLORSPACE_REC709, 0, enc, 0), false, 480)
                .unwrap()
                .matrix()
        };
        assert_eq!(matrix(YCBCR_ENC_XV601), Matrix::Bt601);
        assert_eq!(matrix(YCBCR_ENC_XV709), Matrix::Bt709);
        assert_eq!(matrix(YCBCR_ENC_BT2020_CONST_LUM), Matrix::Bt2020);
        assert_eq!(matrix(YCBCR_ENC_SMPTE240M), Matrix::Smpte240m);
        // xvYCC defaults to full range; R'G'B' ignores the encoding and is full range, except
        // BT.2020 R'G'B'.
        let range = |colorspace, enc, rgb| {
            to_gst(&v4l2(colorspace, 0, enc, 0), rgb, 480)
                .unwrap()
                .range()
        };
        assert_eq!(
            range(COLORSPACE_REC709, YCBCR_ENC_XV709, false),
            Range::Range0_255
        );
        assert_eq!(range(COLORSPACE_REC709, 0, true), Range::Range0_255);
        assert_eq!(range(COLORSPACE_BT2020, 0, true), Range::Range16_235);
        let rgb = to_gst(&v4l2(COLORSPACE_REC709, 0, YCBCR_ENC_601, 0), true, 480).unwrap();
        assert_eq!(rgb.matrix(), Matrix::Rgb);
        let raw = to_gst(&v4l2(COLORSPACE_RAW, 0, 0, 0), true, 480).unwrap();
        assert_eq!(
            (raw.range(), raw.transfer(), raw.primaries()),
            (Range::Unknown, Transfer::Unknown, Primaries::Unknown)
        );
    }

    #[test]
    fn gstreamer_colorimetry_to_v4l2() {
        gst::init().unwrap();
        assert_eq!(
            from_gst(&named("bt601")),
            v4l2(
                COLORSPACE_SMPTE170M,
                XFER_FUNC_709,
                YCBCR_ENC_601,
                QUANTIZATION_LIM_RANGE
            )
        );
        assert_eq!(
            from_gst(&named("bt709")),
            v4l2(
                COLORSPACE_REC709,
                XFER_FUNC_709,
                YCBCR_ENC_709,
                QUANTIZATION_LIM_RANGE
            )
        );
        assert_eq!(
            from_gst(&named("sRGB")),
            v4l2(
                COLORSPACE_SRGB,
                XFER_FUNC_SRGB,
                YCBCR_ENC_DEFAULT,
                QUANTIZATION_FULL_RANGE
            )
        );
        assert_eq!(
            from_gst(&named("bt2020")),
            v4l2(
                COLORSPACE_BT2020,
                XFER_FUNC_709,
                YCBCR_ENC_BT2020,
                QUANTIZATION_LIM_RANGE
            )
        );
        assert_eq!(
            from_gst(&named("1:4:0:0")),
            v4l2(
                COLORSPACE_JPEG,
                XFER_FUNC_DEFAULT,
                YCBCR_ENC_601,
                QUANTIZATION_FULL_RANGE
            )
        );
        assert_eq!(
            from_gst(&named("smpte240m")).colorspace,
            COLORSPACE_SMPTE240M
        );
        // Nothing known: nothing asked.
        assert_eq!(from_gst(&named("0:0:0:0")), V4l2Colorimetry::default());
        // GStreamer's HDR10 colorimetry keeps its curve.
        assert_eq!(from_gst(&named("bt2100-pq")).xfer_func, XFER_FUNC_SMPTE2084);
    }

    /// Every V4L2 colorspace, read, asked for again and read back, is the same colorimetry:
    /// what the element asks a driver for is what it would report.
    #[test]
    fn round_trips_both_ways() {
        gst::init().unwrap();
        for colorspace in [
            COLORSPACE_SMPTE170M,
            COLORSPACE_REC709,
            COLORSPACE_SRGB,
            COLORSPACE_JPEG,
            COLORSPACE_OPRGB,
            COLORSPACE_BT2020,
            COLORSPACE_SMPTE240M,
            COLORSPACE_470_SYSTEM_M,
            COLORSPACE_470_SYSTEM_BG,
        ] {
            for rgb in [false, true] {
                for height in [480, 2160] {
                    let gst = to_gst(&v4l2(colorspace, 0, 0, 0), rgb, height).unwrap();
                    let back = to_gst(&from_gst(&gst), rgb, height).unwrap();
                    assert_eq!(
                        back, gst,
                        "colorspace {colorspace} rgb {rgb} height {height}"
                    );
                }
            }
        }
        for name in ["bt601", "bt709", "bt2020", "smpte240m", "sRGB", "bt2100-pq"] {
            let c = named(name);
            let rgb = c.matrix() == Matrix::Rgb;
            assert_eq!(to_gst(&from_gst(&c), rgb, 2160).unwrap(), c, "{name}");
        }
    }

    #[test]
    fn matching_fills_in_what_caps_leave_unknown() {
        gst::init().unwrap();
        let bt709 = named("bt709");
        assert!(matches(&bt709, &bt709));
        assert!(matches(&named("2:3:0:0"), &bt709));
        assert!(!matches(&named("bt601"), &bt709));
        // jpegdec's colorimetry against a driver's JPEG colorspace.
        let jpeg = to_gst(&v4l2(COLORSPACE_JPEG, 0, 0, 0), false, 480).unwrap();
        assert!(matches(&named("1:4:0:0"), &jpeg));
        assert!(!matches(&named("1:4:0:0"), &bt709));
    }

    #[test]
    fn field_orders() {
        gst::init().unwrap();
        let f = |field| fields_to_gst(field).map(|f| (f.mode, f.order));
        assert_eq!(
            f(V4L2_FIELD_NONE),
            Ok((VideoInterlaceMode::Progressive, VideoFieldOrder::Unknown))
        );
        assert_eq!(
            f(V4L2_FIELD_INTERLACED),
            Ok((VideoInterlaceMode::Interleaved, VideoFieldOrder::Unknown))
        );
        assert_eq!(
            f(V4L2_FIELD_INTERLACED_TB),
            Ok((
                VideoInterlaceMode::Interleaved,
                VideoFieldOrder::TopFieldFirst
            ))
        );
        assert_eq!(
            f(V4L2_FIELD_INTERLACED_BT),
            Ok((
                VideoInterlaceMode::Interleaved,
                VideoFieldOrder::BottomFieldFirst
            ))
        );
        assert_eq!(
            f(V4L2_FIELD_ALTERNATE),
            Ok((VideoInterlaceMode::Alternate, VideoFieldOrder::Unknown))
        );
        for unsupported in [
            V4L2_FIELD_SEQ_TB,
            V4L2_FIELD_SEQ_BT,
            V4L2_FIELD_TOP,
            V4L2_FIELD_BOTTOM,
            V4L2_FIELD_ANY,
            42,
        ] {
            assert!(f(unsupported).is_err(), "{unsupported}");
        }
        // And back: what caps ask for is what the driver reports.
        for field in [
            V4L2_FIELD_NONE,
            V4L2_FIELD_INTERLACED,
            V4L2_FIELD_INTERLACED_TB,
            V4L2_FIELD_INTERLACED_BT,
            V4L2_FIELD_ALTERNATE,
        ] {
            let fields = fields_to_gst(field).unwrap();
            assert_eq!(fields_from_gst(fields.mode, fields.order), field);
        }
        assert_eq!(
            fields_from_gst(VideoInterlaceMode::Mixed, VideoFieldOrder::Unknown),
            V4L2_FIELD_ANY
        );
        // PAL (vivid's S-Video default, 0xff) and NTSC-M.
        assert_eq!(interlaced_order(Some(0xff)), VideoFieldOrder::TopFieldFirst);
        assert_eq!(
            interlaced_order(Some(0x1000)),
            VideoFieldOrder::BottomFieldFirst
        );
        assert_eq!(interlaced_order(Some(0x10ff)), VideoFieldOrder::Unknown);
        assert_eq!(interlaced_order(None), VideoFieldOrder::Unknown);
    }

    #[test]
    fn pixel_aspect_ratio_is_the_inverse_of_cropcaps() {
        use crate::v4l2::Fract;
        gst::init().unwrap();
        assert_eq!(
            pixel_aspect_ratio(Some(Fract::new(11, 10))),
            gst::Fraction::new(10, 11)
        );
        assert_eq!(
            pixel_aspect_ratio(Some(Fract::new(54, 59))),
            gst::Fraction::new(59, 54)
        );
        assert_eq!(pixel_aspect_ratio(None), gst::Fraction::new(1, 1));
        assert_eq!(
            pixel_aspect_ratio(Some(Fract::new(0, 1))),
            gst::Fraction::new(1, 1)
        );
    }
}
