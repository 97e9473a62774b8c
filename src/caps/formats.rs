//! The one table that says which V4L2 pixel format is which GStreamer format.
//!
//! Every mapping was checked against the memory byte order that `videodev2.h` and the V4L2
//! pixel-format documentation give, not against the names, which disagree: V4L2 names the
//! 32-bit RGB formats after a little-endian word (`XBGR32` is B, G, R, X in memory) while
//! GStreamer names them in byte order (`BGRx`).

use gst_video::VideoFormat;

use crate::v4l2::Fourcc;

/// What a V4L2 pixel format is on the GStreamer side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    /// `video/x-raw` with this `format`.
    Raw(VideoFormat),
    /// Anything else: the caps structure without width, height and framerate, in caps string
    /// syntax, e.g. `"image/jpeg, parsed=(boolean)true"` or
    /// `"video/x-bayer, format=(string)bggr"`.
    Encoded(&'static str),
}

impl Media {
    /// The caps structure of this format, without width, height or framerate.
    pub fn structure(self) -> Option<gst::Structure> {
        match self {
            Media::Raw(format) => Some(
                gst::Structure::builder("video/x-raw")
                    .field("format", format.to_str())
                    .build(),
            ),
            Media::Encoded(s) => s.parse().ok(),
        }
    }

    /// A short name for messages: the GStreamer format name, or the media type.
    pub fn name(self) -> String {
        match self {
            Media::Raw(format) => format.to_str().to_string(),
            Media::Encoded(s) => s.split(',').next().unwrap_or(s).trim().to_string(),
        }
    }
}

/// How the driver hands over the planes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// All planes in one buffer, one after the other (`NV12`, `YU12`, packed formats).
    Contiguous,
    /// One buffer per plane, each with its own `bytesperline` and `sizeimage` (`NM12`,
    /// `YM12`, ...): needs the multi-planar API and one `GstMemory` per plane.
    PerPlane,
}

/// What one captured buffer holds, which decides how it becomes a `GstBuffer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A raw video frame, its planes described by a `GstVideoInfo` (and `GstVideoMeta`).
    Video,
    /// 8-bit Bayer samples, one byte per pixel, in rows. No `GstVideoInfo` describes them:
    /// `bayer2rgb` assumes rows of `width` rounded up to 4 bytes.
    Bayer,
    /// A compressed picture that stands alone (JPEG): the buffer is `bytesused` long.
    Image,
    /// A compressed access unit that may depend on earlier ones (H.264, HEVC): the buffer is
    /// `bytesused` long, and only the driver's keyframes lack `DELTA_UNIT`.
    Stream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatEntry {
    pub fourcc: Fourcc,
    pub media: Media,
    pub memory: Memory,
    pub payload: Payload,
}

impl FormatEntry {
    pub fn per_plane_memory(&self) -> bool {
        self.memory == Memory::PerPlane
    }

    /// Raw video, as opposed to Bayer samples or a compressed format.
    pub fn is_video(&self) -> bool {
        self.payload == Payload::Video
    }

    /// A compressed format (JPEG, H.264, HEVC), which downstream has to decode: at an equal
    /// size and rate, negotiation prefers any other.
    pub fn is_compressed(&self) -> bool {
        matches!(self.payload, Payload::Image | Payload::Stream)
    }

    /// Whether its samples are R'G'B' (so no Y'CbCr matrix applies): RGB formats and Bayer.
    pub fn is_rgb(&self) -> bool {
        match self.media {
            Media::Raw(format) => gst_video::VideoFormatInfo::from_format(format).is_rgb(),
            Media::Encoded(_) => self.payload == Payload::Bayer,
        }
    }
}

const fn raw(code: &[u8; 4], format: VideoFormat) -> FormatEntry {
    FormatEntry {
        fourcc: Fourcc::new(code),
        media: Media::Raw(format),
        memory: Memory::Contiguous,
        payload: Payload::Video,
    }
}

const fn raw_per_plane(code: &[u8; 4], format: VideoFormat) -> FormatEntry {
    FormatEntry {
        fourcc: Fourcc::new(code),
        media: Media::Raw(format),
        memory: Memory::PerPlane,
        payload: Payload::Video,
    }
}

const fn encoded(code: &[u8; 4], caps: &'static str, payload: Payload) -> FormatEntry {
    FormatEntry {
        fourcc: Fourcc::new(code),
        media: Media::Encoded(caps),
        memory: Memory::Contiguous,
        payload,
    }
}

const JPEG: &str = "image/jpeg, parsed=(boolean)true";

/// `v4l2_fourcc_be()`: the same code with the big-endian flag (bit 31).
const fn big_endian(code: &[u8; 4]) -> Fourcc {
    Fourcc(Fourcc::new(code).0 | 1 << 31)
}

/// Every pixel format this element can capture.
///
/// Entries with the same GStreamer format sit next to each other ([`fourccs`] relies on it),
/// in order of preference: one-buffer (`Contiguous`) entries before per-plane ones, current
/// fourccs before deprecated ones. The byte order each line relies on is in its comment.
pub const FORMATS: &[FormatEntry] = &[
    // Packed 4:2:2, 4:4:4.
    raw(b"YUYV", VideoFormat::Yuy2), // Y0 Cb Y1 Cr
    raw(b"UYVY", VideoFormat::Uyvy), // Cb Y0 Cr Y1
    raw(b"YVYU", VideoFormat::Yvyu), // Y0 Cr Y1 Cb
    raw(b"VYUY", VideoFormat::Vyuy), // Cr Y0 Cb Y1
    raw(b"YUV3", VideoFormat::V308), // YUV24: Y Cb Cr
    raw(b"AYUV", VideoFormat::Ayuv), // AYUV32: A Y Cb Cr
    raw(b"VUYA", VideoFormat::Vuya), // VUYA32: Cr Cb Y A
    // Planar: Y plane, then the two chroma planes in the order the name gives.
    raw(b"YU12", VideoFormat::I420), // YUV420: Y, Cb, Cr at 1/2 x 1/2
    raw_per_plane(b"YM12", VideoFormat::I420), // YUV420M
    raw(b"YV12", VideoFormat::Yv12), // YVU420: Y, Cr, Cb at 1/2 x 1/2
    raw_per_plane(b"YM21", VideoFormat::Yv12), // YVU420M
    raw(b"422P", VideoFormat::Y42b), // YUV422P: Y, Cb, Cr at 1/2 x 1
    raw_per_plane(b"YM16", VideoFormat::Y42b), // YUV422M
    raw_per_plane(b"YM24", VideoFormat::Y444), // YUV444M: Y, Cb, Cr at 1 x 1
    raw(b"411P", VideoFormat::Y41b), // YUV411P: Y, Cb, Cr at 1/4 x 1
    raw(b"YUV9", VideoFormat::Yuv9), // YUV410: Y, Cb, Cr at 1/4 x 1/4
    raw(b"YVU9", VideoFormat::Yvu9), // YVU410: Y, Cr, Cb at 1/4 x 1/4
    // Semi-planar: Y plane, then one plane of interleaved chroma pairs.
    raw(b"NV12", VideoFormat::Nv12),           // Y, CbCr at 1/2 x 1/2
    raw_per_plane(b"NM12", VideoFormat::Nv12), // NV12M
    raw(b"NV21", VideoFormat::Nv21),           // Y, CrCb at 1/2 x 1/2
    raw_per_plane(b"NM21", VideoFormat::Nv21), // NV21M
    raw(b"NV16", VideoFormat::Nv16),           // Y, CbCr at 1/2 x 1
    raw_per_plane(b"NM16", VideoFormat::Nv16), // NV16M
    raw(b"NV61", VideoFormat::Nv61),           // Y, CrCb at 1/2 x 1
    raw_per_plane(b"NM61", VideoFormat::Nv61), // NV61M
    raw(b"NV24", VideoFormat::Nv24),           // Y, CbCr at 1 x 1
    raw(b"P010", VideoFormat::P01010le),       // as NV12, 16-bit LE samples, 10 high bits used
    // 16-bit RGB: V4L2 stores a little-endian word, GStreamer means a host-endian one.
    #[cfg(target_endian = "little")]
    raw(b"RGBP", VideoFormat::Rgb16), // RGB565: word rrrrrggg gggbbbbb
    #[cfg(target_endian = "little")]
    raw(b"XR15", VideoFormat::Rgb15), // XRGB555: word xrrrrrgg gggbbbbb
    #[cfg(target_endian = "little")]
    raw(b"RGBO", VideoFormat::Rgb15), // RGB555 (deprecated): as XR15
    // 24- and 32-bit RGB, bytes in memory order.
    raw(b"RGB3", VideoFormat::Rgb),  // RGB24: R G B
    raw(b"BGR3", VideoFormat::Bgr),  // BGR24: B G R
    raw(b"BX24", VideoFormat::Xrgb), // XRGB32: X R G B
    raw(b"RGB4", VideoFormat::Xrgb), // RGB32 (deprecated): X R G B
    raw(b"BA24", VideoFormat::Argb), // ARGB32: A R G B
    raw(b"XB24", VideoFormat::Rgbx), // RGBX32: R G B X
    raw(b"AB24", VideoFormat::Rgba), // RGBA32: R G B A
    raw(b"XR24", VideoFormat::Bgrx), // XBGR32: B G R X
    raw(b"BGR4", VideoFormat::Bgrx), // BGR32 (deprecated): B G R X
    raw(b"AR24", VideoFormat::Bgra), // ABGR32: B G R A
    raw(b"RX24", VideoFormat::Xbgr), // BGRX32: X B G R
    raw(b"RA24", VideoFormat::Abgr), // BGRA32: A B G R
    // Greyscale.
    raw(b"GREY", VideoFormat::Gray8),
    raw(b"Y16 ", VideoFormat::Gray16Le),
    FormatEntry {
        fourcc: big_endian(b"Y16 "),
        media: Media::Raw(VideoFormat::Gray16Be),
        memory: Memory::Contiguous,
        payload: Payload::Video,
    },
    // 8-bit Bayer, named after the colours of the first two rows' first two samples.
    encoded(
        b"BA81",
        "video/x-bayer, format=(string)bggr",
        Payload::Bayer,
    ), // SBGGR8
    encoded(
        b"GBRG",
        "video/x-bayer, format=(string)gbrg",
        Payload::Bayer,
    ), // SGBRG8
    encoded(
        b"GRBG",
        "video/x-bayer, format=(string)grbg",
        Payload::Bayer,
    ), // SGRBG8
    encoded(
        b"RGGB",
        "video/x-bayer, format=(string)rggb",
        Payload::Bayer,
    ), // SRGGB8
    // Compressed. Each V4L2 buffer is one whole JPEG image or one access unit, which is what
    // `parsed=true` and `alignment=au` promise, as v4l2src says too. MJPG (webcams) and JPEG
    // (v4l2loopback fed by v4l2sink, some capture cards) are the same bytes on the wire.
    encoded(b"MJPG", JPEG, Payload::Image),
    encoded(b"JPEG", JPEG, Payload::Image),
    encoded(
        b"H264",
        "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au",
        Payload::Stream,
    ),
    encoded(
        b"HEVC",
        "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au",
        Payload::Stream,
    ),
    // Not here, on purpose: 10- to 16-bit Bayer (GStreamer's bayer2rgb reads 8-bit only in
    // 1.22); H264 without start codes (AVC1) needs codec_data from elsewhere; RGB555X/XRGB555X/RGB565X are big-endian words, which no GStreamer
    // format describes on a little-endian host (v4l2src maps the first two to BGR15, which
    // swaps the colours instead of the bytes); NV42, YM61 and YM42 have no GStreamer format;
    // the tiled formats (NM12 tiles, MM21, ...) need a tile-aware layout.
];

/// The table entry for a V4L2 pixel format.
pub fn entry(fourcc: Fourcc) -> Option<&'static FormatEntry> {
    FORMATS.iter().find(|e| e.fourcc == fourcc)
}

/// The GStreamer raw video format of a V4L2 pixel format, if there is one.
pub fn video_format(fourcc: Fourcc) -> Option<VideoFormat> {
    match entry(fourcc)?.media {
        Media::Raw(format) => Some(format),
        Media::Encoded(_) => None,
    }
}

/// Every V4L2 pixel format that yields this GStreamer format, preferred first. Several may:
/// the caller picks one the device enumerated.
pub fn fourccs(format: VideoFormat) -> &'static [FormatEntry] {
    fourccs_of(Media::Raw(format))
}

/// [`fourccs`] for any media, encoded ones included.
pub fn fourccs_of(media: Media) -> &'static [FormatEntry] {
    let Some(start) = FORMATS.iter().position(|e| e.media == media) else {
        return &[];
    };
    let len = FORMATS[start..]
        .iter()
        .take_while(|e| e.media == media)
        .count();
    &FORMATS[start..start + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_round_trips() {
        gst::init().unwrap();
        for e in FORMATS {
            let Media::Raw(format) = e.media else {
                continue;
            };
            assert_eq!(video_format(e.fourcc), Some(format), "{}", e.fourcc);
            assert!(
                fourccs(format).contains(e),
                "{} missing from fourccs({format:?})",
                e.fourcc
            );
            // The format survives a trip through caps.
            let s = e.media.structure().unwrap();
            let back = VideoFormat::from_string(s.get::<&str>("format").unwrap());
            assert_eq!(back, format);
        }
    }

    #[test]
    fn fourccs_are_unique_and_formats_grouped() {
        for (i, a) in FORMATS.iter().enumerate() {
            for b in &FORMATS[i + 1..] {
                assert_ne!(a.fourcc, b.fourcc, "duplicate fourcc");
            }
            // Every entry of this media is in the one run fourccs_of() returns.
            let run = fourccs_of(a.media);
            let count = FORMATS.iter().filter(|e| e.media == a.media).count();
            assert_eq!(run.len(), count, "{} not grouped", a.fourcc);
        }
    }

    #[test]
    fn one_buffer_entries_come_first() {
        for e in FORMATS {
            let run = fourccs_of(e.media);
            let first_per_plane = run.iter().position(|e| e.per_plane_memory());
            if let Some(i) = first_per_plane {
                assert!(run[i..].iter().all(|e| e.per_plane_memory()));
            }
        }
    }

    #[test]
    fn per_plane_entries_have_several_planes() {
        gst::init().unwrap();
        for e in FORMATS.iter().filter(|e| e.per_plane_memory()) {
            let Media::Raw(format) = e.media else {
                continue;
            };
            assert!(gst_video::VideoFormatInfo::from_format(format).n_planes() > 1);
        }
    }

    #[test]
    fn byte_order_of_32_bit_rgb() {
        assert_eq!(video_format(Fourcc::new(b"XR24")), Some(VideoFormat::Bgrx));
        assert_eq!(video_format(Fourcc::new(b"AR24")), Some(VideoFormat::Bgra));
        assert_eq!(video_format(Fourcc::new(b"BX24")), Some(VideoFormat::Xrgb));
        assert_eq!(video_format(Fourcc::new(b"BA24")), Some(VideoFormat::Argb));
        assert_eq!(video_format(Fourcc::new(b"XB24")), Some(VideoFormat::Rgbx));
        assert_eq!(video_format(Fourcc::new(b"AB24")), Some(VideoFormat::Rgba));
        assert_eq!(video_format(Fourcc::new(b"RX24")), Some(VideoFormat::Xbgr));
        assert_eq!(video_format(Fourcc::new(b"RA24")), Some(VideoFormat::Abgr));
        assert_eq!(video_format(Fourcc::new(b"RGB4")), Some(VideoFormat::Xrgb));
        assert_eq!(video_format(Fourcc::new(b"BGR4")), Some(VideoFormat::Bgrx));
        assert_eq!(video_format(Fourcc::new(b"RGB3")), Some(VideoFormat::Rgb));
        assert_eq!(video_format(Fourcc::new(b"BGR3")), Some(VideoFormat::Bgr));
    }

    #[test]
    fn gray16_big_endian_has_the_flag() {
        assert_eq!(big_endian(b"Y16 ").0, 0xa036_3159);
        assert_eq!(
            video_format(Fourcc(0xa036_3159)),
            Some(VideoFormat::Gray16Be)
        );
        assert_eq!(
            video_format(Fourcc::new(b"Y16 ")),
            Some(VideoFormat::Gray16Le)
        );
    }

    #[test]
    fn several_fourccs_for_one_format() {
        let i420: Vec<_> = fourccs(VideoFormat::I420)
            .iter()
            .map(|e| e.fourcc)
            .collect();
        assert_eq!(i420, [Fourcc::new(b"YU12"), Fourcc::new(b"YM12")]);
        assert!(entry(Fourcc::new(b"YM12")).unwrap().per_plane_memory());
        assert!(!entry(Fourcc::new(b"YU12")).unwrap().per_plane_memory());
        assert!(fourccs(VideoFormat::Nv1264z32).is_empty());
    }

    #[test]
    fn unknown_and_deliberately_missing_fourccs() {
        for code in [
            b"RGBQ", b"RGBR", b"NV42", b"YM61", b"TM12", b"Y10 ", b"BG10", b"AVC1",
        ] {
            assert_eq!(entry(Fourcc::new(code)), None, "{}", Fourcc::new(code));
        }
    }

    #[test]
    fn compressed_and_bayer_entries() {
        gst::init().unwrap();
        let caps_of = |code: &[u8; 4]| {
            let e = entry(Fourcc::new(code)).unwrap();
            let s = e.media.structure().unwrap().to_string();
            (s.trim_end_matches(';').to_string(), e.payload)
        };
        assert_eq!(
            caps_of(b"MJPG"),
            ("image/jpeg, parsed=(boolean)true".into(), Payload::Image)
        );
        assert_eq!(caps_of(b"JPEG"), caps_of(b"MJPG"));
        assert_eq!(
            caps_of(b"H264"),
            (
                "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au".into(),
                Payload::Stream
            )
        );
        assert_eq!(
            caps_of(b"HEVC"),
            (
                "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au".into(),
                Payload::Stream
            )
        );
        for (code, order) in [
            (b"BA81", "bggr"),
            (b"GBRG", "gbrg"),
            (b"GRBG", "grbg"),
            (b"RGGB", "rggb"),
        ] {
            assert_eq!(
                caps_of(code),
                (
                    format!("video/x-bayer, format=(string){order}"),
                    Payload::Bayer
                )
            );
            assert!(entry(Fourcc::new(code)).unwrap().is_rgb());
        }
        // MJPG first: a device listing both gets the webcam fourcc.
        let jpeg: Vec<_> = fourccs_of(entry(Fourcc::new(b"JPEG")).unwrap().media)
            .iter()
            .map(|e| e.fourcc)
            .collect();
        assert_eq!(jpeg, [Fourcc::new(b"MJPG"), Fourcc::new(b"JPEG")]);
        assert_eq!(video_format(Fourcc::new(b"MJPG")), None);
        assert!(!entry(Fourcc::new(b"H264")).unwrap().is_rgb());
        assert!(entry(Fourcc::new(b"RGB3")).unwrap().is_rgb());
        assert!(!entry(Fourcc::new(b"YUYV")).unwrap().is_rgb());
    }

    #[test]
    fn encoded_media_parse() {
        gst::init().unwrap();
        let jpeg = Media::Encoded("image/jpeg, parsed=(boolean)true");
        let s = jpeg.structure().unwrap();
        assert_eq!(s.name(), "image/jpeg");
        assert_eq!(jpeg.name(), "image/jpeg");
        assert_eq!(Media::Raw(VideoFormat::Yuy2).name(), "YUY2");
    }
}
