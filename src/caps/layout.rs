//! Where the planes of a captured frame are, as `GstVideoMeta` wants to hear it, and how a
//! buffer of a format without planes (Bayer, compressed) is handed on.

use gst_video::VideoInfo;

use super::bitstream::NalSyntax;
use super::formats::{FormatEntry, Payload, entry};
use crate::v4l2::{Fourcc, PixFormat};

const H264: Fourcc = Fourcc::new(b"H264");
const HEVC: Fourcc = Fourcc::new(b"HEVC");

/// How the element turns one dequeued buffer into a `GstBuffer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Raw video: the planes are where the [`Layout`] says.
    Video(Layout),
    /// 8-bit Bayer: `height` rows of `stride` bytes. GStreamer has no `GstVideoMeta` for
    /// Bayer; `bayer2rgb` reads rows of `packed_stride` bytes (the width rounded up to 4), so
    /// a driver stride other than that needs a copy.
    Bayer {
        height: usize,
        stride: usize,
        packed_stride: usize,
    },
    /// Compressed: one image or access unit per buffer, `bytesused` long. With
    /// `delta_units`, a buffer that is not a keyframe depends on earlier ones; `syntax` says
    /// how to find keyframes in the stream when the driver does not flag them.
    Compressed {
        delta_units: bool,
        syntax: Option<NalSyntax>,
    },
}

impl Framing {
    /// How buffers of `entry`'s format arrive, given the `PixFormat` the driver settled on
    /// and the negotiated caps as `info`. Fails, with a message for the user, when the driver's
    /// answer cannot hold a frame.
    pub fn new(pix: &PixFormat, entry: &FormatEntry, info: &VideoInfo) -> Result<Framing, String> {
        match entry.payload {
            Payload::Video => Layout::new(pix, info).map(Framing::Video),
            Payload::Image | Payload::Stream => Ok(Framing::Compressed {
                delta_units: entry.payload == Payload::Stream,
                syntax: match entry.fourcc {
                    H264 => Some(NalSyntax::H264),
                    HEVC => Some(NalSyntax::H265),
                    _ => None,
                },
            }),
            Payload::Bayer => {
                let (width, height) = (pix.width as usize, pix.height as usize);
                if (pix.width, pix.height) != (info.width(), info.height()) {
                    return Err(format!(
                        "The driver chose {}x{} for {} instead of {}x{}",
                        pix.width,
                        pix.height,
                        pix.fourcc,
                        info.width(),
                        info.height()
                    ));
                }
                let plane = pix.planes.first().ok_or("The driver gave no plane")?;
                let stride = match plane.bytesperline {
                    0 => width,
                    bpl => bpl as usize,
                };
                let need = stride * height;
                if stride < width || (plane.sizeimage != 0 && (plane.sizeimage as usize) < need) {
                    return Err(format!(
                        "The driver's layout for {} at {}x{} is too small: rows of {} bytes, \
                         {} bytes in all",
                        pix.fourcc, pix.width, pix.height, stride, plane.sizeimage
                    ));
                }
                Ok(Framing::Bayer {
                    height,
                    stride,
                    packed_stride: width.next_multiple_of(4),
                })
            }
        }
    }

    /// The bytes of one frame as downstream reads it, for a buffer pool of copies; `None`
    /// for compressed data, whose size changes from frame to frame.
    pub fn frame_size(&self, info: &VideoInfo) -> Option<usize> {
        match self {
            Framing::Video(_) => Some(info.size()),
            Framing::Bayer {
                height,
                packed_stride,
                ..
            } => Some(packed_stride * height),
            Framing::Compressed { .. } => None,
        }
    }

    /// Whether a buffer is a `DELTA_UNIT`: a compressed access unit the driver did not flag as
    /// a keyframe (`V4L2_BUF_FLAG_KEYFRAME`). JPEG images, Bayer and raw frames never are.
    pub fn is_delta_unit(&self, keyframe: bool) -> bool {
        matches!(
            self,
            Framing::Compressed {
                delta_units: true,
                ..
            }
        ) && !keyframe
    }

    /// Whether downstream can read the driver's buffers as they are. Raw video whose layout
    /// differs from GStreamer's default can be, through `GstVideoMeta`, when `video_meta`.
    pub fn readable_as_is(&self, info: &VideoInfo, video_meta: bool) -> bool {
        match self {
            Framing::Video(layout) => video_meta || layout.matches_default(info),
            Framing::Bayer {
                stride,
                packed_stride,
                ..
            } => stride == packed_stride,
            Framing::Compressed { .. } => true,
        }
    }
}

/// The plane layout of the frames the driver fills, from the format it settled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Video planes (GStreamer's count: NV12 has 2, I420 3, YUY2 1).
    pub n_planes: usize,
    /// Where each video plane starts, counted from the start of the buffer's data across
    /// all its memories in order, as `GstVideoMeta` counts.
    pub offsets: [usize; 4],
    /// Bytes from one row of a plane to the next.
    pub strides: [i32; 4],
    /// The memory (V4L2 plane of a multi-planar buffer) each video plane lies in.
    pub memory_plane_of: [usize; 4],
    /// Memories per buffer: 1, or one per plane for the per-plane formats (`NM12`, `YM12`).
    pub n_memories: usize,
    /// Bytes per buffer, as v4l2src counts them: the sum of the driver's `sizeimage`s.
    pub size: usize,
}

impl Layout {
    /// The layout of `info`'s frames given the `PixFormat` the driver settled on after `S_FMT`.
    ///
    /// A one-buffer format takes plane 0's stride from `bytesperline` and derives the other
    /// planes' strides from it as the V4L2 spec does (a 4:2:0/4:2:2 chroma plane is half as
    /// wide in bytes, NV12's CbCr plane as wide, NV24's twice as wide), each plane following
    /// the previous one. A per-plane format takes each plane's stride from its own
    /// `bytesperline`, and its offset from the `sizeimage`s before it: so memory `i` of a
    /// buffer must be exactly `pix.planes[i].sizeimage` bytes long for the offsets to hold.
    ///
    /// Fails, with a message for the user, when the driver's answer cannot hold the frame
    /// (rows or planes too short, another size, a plane count that does not fit the format).
    pub fn new(pix: &PixFormat, info: &VideoInfo) -> Result<Layout, String> {
        let finfo = info.format_info();
        let name = info.format().to_str();
        if finfo.n_planes() == 0 || finfo.n_components() == 0 || finfo.is_tiled() {
            return Err(format!("No plane layout for {name} ({})", pix.fourcc));
        }
        // One buffer holds one field for `alternate`, and V4L2 then counts a field's rows.
        if (pix.width, pix.height) != (info.width(), info.field_height()) {
            return Err(format!(
                "The driver chose {}x{} for {name} ({}) instead of {}x{}",
                pix.width,
                pix.height,
                pix.fourcc,
                info.width(),
                info.field_height()
            ));
        }
        let n_planes = finfo.n_planes() as usize;
        let n_memories = match entry(pix.fourcc) {
            Some(e) if e.per_plane_memory() => n_planes,
            _ => 1,
        };
        if pix.planes.len() != n_memories {
            return Err(format!(
                "The driver gave {} memory planes for {name} ({}), which needs {n_memories}",
                pix.planes.len(),
                pix.fourcc
            ));
        }
        let planes: Vec<PlaneGeometry> =
            (0..n_planes).map(|p| PlaneGeometry::of(info, p)).collect();
        let mut layout = Layout {
            n_planes,
            offsets: [0; 4],
            strides: [0; 4],
            memory_plane_of: [0; 4],
            n_memories,
            size: 0,
        };
        let too_short = |what: &str, got: u64, need: u64| {
            format!(
                "The driver's layout for {name} ({}) at {}x{} is too small: {what} is {got} \
                 bytes, {need} needed",
                pix.fourcc, pix.width, pix.height
            )
        };

        match n_memories {
            1 => {
                let plane = pix.planes[0];
                let bpl = match plane.bytesperline {
                    0 => planes[0].min_row,
                    bpl => u64::from(bpl),
                };
                if bpl < planes[0].min_row {
                    return Err(too_short("a row", bpl, planes[0].min_row));
                }
                let mut offset = 0;
                for (p, g) in planes.iter().enumerate() {
                    let stride = if p == 0 {
                        bpl
                    } else {
                        // As v4l2src extrapolates: scale by the subsampling, rounding up,
                        // and by how many bytes a sample of this plane takes.
                        let w_sub = g.w_sub.min(31);
                        bpl.div_ceil(1 << w_sub) * g.pixel_stride / planes[0].pixel_stride
                    };
                    layout.offsets[p] = to_usize(offset)?;
                    layout.strides[p] = i32::try_from(stride)
                        .map_err(|_| format!("Stride {stride} of {name} is too large"))?;
                    offset += stride * g.height;
                }
                let sizeimage = match plane.sizeimage {
                    0 => offset,
                    size => u64::from(size),
                };
                if sizeimage < offset {
                    return Err(too_short("the image", sizeimage, offset));
                }
                layout.size = to_usize(sizeimage)?;
            }
            _ => {
                let mut offset = 0;
                for (p, (g, plane)) in planes.iter().zip(&pix.planes).enumerate() {
                    let stride = match plane.bytesperline {
                        0 => g.min_row,
                        bpl => u64::from(bpl),
                    };
                    if stride < g.min_row {
                        return Err(too_short(&format!("a row of plane {p}"), stride, g.min_row));
                    }
                    let need = stride * g.height;
                    let sizeimage = match plane.sizeimage {
                        0 => need,
                        size => u64::from(size),
                    };
                    if sizeimage < need {
                        return Err(too_short(&format!("plane {p}"), sizeimage, need));
                    }
                    layout.offsets[p] = to_usize(offset)?;
                    layout.strides[p] = i32::try_from(stride)
                        .map_err(|_| format!("Stride {stride} of {name} is too large"))?;
                    layout.memory_plane_of[p] = p;
                    offset += sizeimage;
                }
                layout.size = to_usize(offset)?;
            }
        }
        Ok(layout)
    }

    /// Whether GStreamer's default layout for `info` (`info.offset()`, `info.stride()`) puts
    /// every plane where this one does, i.e. whether a consumer that ignores `GstVideoMeta`
    /// reads the frame right. A buffer of several memories is read right too, but only after
    /// GStreamer merges them with a copy: attach the meta anyway when `n_memories > 1`.
    pub fn matches_default(&self, info: &VideoInfo) -> bool {
        let n = self.n_planes;
        info.n_planes() as usize == n
            && info.offset()[..n] == self.offsets[..n]
            && info.stride()[..n] == self.strides[..n]
    }

    /// `info` with this layout's offsets, strides and size, so that `size()` and frame
    /// mapping match the buffers the driver fills.
    pub fn video_info(&self, info: &VideoInfo) -> Result<VideoInfo, String> {
        let n = self.n_planes;
        VideoInfo::builder_from_info(info)
            .offset(&self.offsets[..n])
            .stride(&self.strides[..n])
            .size(self.size)
            .build()
            .map_err(|e| format!("Cannot describe the driver's layout: {e}"))
    }

    /// The offsets and strides for `gst_video::VideoMeta::add_full`.
    pub fn meta_offsets_strides(&self) -> (&[usize], &[i32]) {
        (
            &self.offsets[..self.n_planes],
            &self.strides[..self.n_planes],
        )
    }
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("A frame of {v} bytes does not fit in memory"))
}

/// One video plane's shape, from GStreamer's description of the format.
struct PlaneGeometry {
    /// Rows.
    height: u64,
    /// Bytes of one row without padding.
    min_row: u64,
    /// Bytes per sample of the plane's first component (2 for NV12's CbCr pairs).
    pixel_stride: u64,
    /// Horizontal subsampling, as a shift.
    w_sub: u32,
}

impl PlaneGeometry {
    fn of(info: &VideoInfo, plane: usize) -> PlaneGeometry {
        let finfo = info.format_info();
        let n_components = finfo.n_components() as usize;
        // The first component stored in this plane (YV12's plane 1 holds component 2, V).
        let c = (0..n_components)
            .find(|&c| finfo.plane()[c] as usize == plane)
            .unwrap_or(0);
        let pixel_stride = u64::from(finfo.pixel_stride()[c].unsigned_abs()).max(1);
        let width = u64::from(finfo.scale_width(c as u8, info.width()));
        PlaneGeometry {
            height: u64::from(finfo.scale_height(c as u8, info.field_height())),
            min_row: width * pixel_stride,
            pixel_stride,
            w_sub: finfo.w_sub()[c],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::formats::{FORMATS, Media};
    use crate::v4l2::{Fourcc, PlaneFormat};
    use gst_video::VideoFormat;

    fn info(format: VideoFormat, width: u32, height: u32) -> VideoInfo {
        VideoInfo::builder(format, width, height).build().unwrap()
    }

    fn pix(code: &[u8; 4], width: u32, height: u32, planes: &[(u32, u32)]) -> PixFormat {
        PixFormat {
            width,
            height,
            fourcc: Fourcc::new(code),
            field: 1,
            colorspace: 0,
            ycbcr_enc: 0,
            quantization: 0,
            xfer_func: 0,
            planes: planes
                .iter()
                .map(|&(bytesperline, sizeimage)| PlaneFormat {
                    bytesperline,
                    sizeimage,
                })
                .collect(),
        }
    }

    #[test]
    fn yuyv_640x480() {
        gst::init().unwrap();
        let info = info(VideoFormat::Yuy2, 640, 480);
        let l = Layout::new(&pix(b"YUYV", 640, 480, &[(1280, 614400)]), &info).unwrap();
        assert_eq!(l.n_planes, 1);
        assert_eq!(l.meta_offsets_strides(), (&[0][..], &[1280][..]));
        assert_eq!((l.n_memories, l.size), (1, 614400));
        assert!(l.matches_default(&info));
    }

    #[test]
    fn yu12_640x480_packed_and_padded() {
        gst::init().unwrap();
        let info = info(VideoFormat::I420, 640, 480);
        let l = Layout::new(&pix(b"YU12", 640, 480, &[(640, 460800)]), &info).unwrap();
        assert_eq!(l.offsets[..3], [0, 307200, 384000]);
        assert_eq!(l.strides[..3], [640, 320, 320]);
        assert!(l.matches_default(&info));

        let l = Layout::new(&pix(b"YU12", 640, 480, &[(704, 506880)]), &info).unwrap();
        assert_eq!(l.offsets[..3], [0, 704 * 480, 704 * 480 + 352 * 240]);
        assert_eq!(l.strides[..3], [704, 352, 352]);
        assert_eq!(l.memory_plane_of[..3], [0, 0, 0]);
        assert!(!l.matches_default(&info));
        let adjusted = l.video_info(&info).unwrap();
        assert_eq!(adjusted.size(), 506880);
        assert_eq!(adjusted.stride(), &[704, 352, 352]);
        assert_eq!(adjusted.offset(), &[0, 337920, 422400]);
        assert!(l.matches_default(&adjusted));
    }

    #[test]
    fn yv12_chroma_planes_follow_memory_order() {
        gst::init().unwrap();
        let info = info(VideoFormat::Yv12, 640, 480);
        let l = Layout::new(&pix(b"YV12", 640, 480, &[(768, 768 * 720)]), &info).unwrap();
        assert_eq!(l.offsets[..3], [0, 768 * 480, 768 * 480 + 384 * 240]);
        assert_eq!(l.strides[..3], [768, 384, 384]);
    }

    #[test]
    fn nv12_1080p() {
        gst::init().unwrap();
        let info = info(VideoFormat::Nv12, 1920, 1080);
        let l = Layout::new(&pix(b"NV12", 1920, 1080, &[(1920, 3110400)]), &info).unwrap();
        assert_eq!(l.offsets[..2], [0, 2073600]);
        assert_eq!(l.strides[..2], [1920, 1920]);
        assert!(l.matches_default(&info));
        // Padded rows: the CbCr plane is as wide as the Y plane.
        let l = Layout::new(&pix(b"NV12", 1920, 1080, &[(2048, 2048 * 1620)]), &info).unwrap();
        assert_eq!(l.offsets[..2], [0, 2048 * 1080]);
        assert_eq!(l.strides[..2], [2048, 2048]);
        assert!(!l.matches_default(&info));
    }

    #[test]
    fn nv24_chroma_is_twice_as_wide() {
        gst::init().unwrap();
        let info = info(VideoFormat::Nv24, 640, 480);
        let l = Layout::new(&pix(b"NV24", 640, 480, &[(640, 640 * 480 * 3)]), &info).unwrap();
        assert_eq!(l.strides[..2], [640, 1280]);
        assert!(l.matches_default(&info));
    }

    #[test]
    fn nv12m_two_memories() {
        gst::init().unwrap();
        let info = info(VideoFormat::Nv12, 1920, 1080);
        let l = Layout::new(
            &pix(b"NM12", 1920, 1080, &[(1920, 2073600), (1920, 1036800)]),
            &info,
        )
        .unwrap();
        assert_eq!(l.offsets[..2], [0, 2073600]);
        assert_eq!(l.strides[..2], [1920, 1920]);
        assert_eq!(l.memory_plane_of[..2], [0, 1]);
        assert_eq!((l.n_memories, l.size), (2, 3110400));
        assert!(l.matches_default(&info));

        // The driver rounds the Y plane up to a page: the CbCr plane starts later.
        let l = Layout::new(
            &pix(b"NM12", 1920, 1080, &[(1920, 2076672), (1920, 1036800)]),
            &info,
        )
        .unwrap();
        assert_eq!(l.offsets[..2], [0, 2076672]);
        assert!(!l.matches_default(&info));
        assert_eq!(l.video_info(&info).unwrap().size(), 2076672 + 1036800);
    }

    #[test]
    fn rgb3_odd_width_is_not_rounded() {
        gst::init().unwrap();
        let info = info(VideoFormat::Rgb, 638, 480);
        assert_eq!(info.stride()[0], 1916);
        let l = Layout::new(&pix(b"RGB3", 638, 480, &[(1914, 1914 * 480)]), &info).unwrap();
        assert_eq!(l.strides[0], 1914);
        assert!(!l.matches_default(&info));
        let adjusted = l.video_info(&info).unwrap();
        assert_eq!((adjusted.stride()[0], adjusted.size()), (1914, 1914 * 480));
    }

    #[test]
    fn odd_width_chroma_rounds_up() {
        gst::init().unwrap();
        let info = info(VideoFormat::I420, 639, 479);
        let l = Layout::new(&pix(b"YU12", 639, 479, &[(639, 0)]), &info).unwrap();
        assert_eq!(l.strides[..3], [639, 320, 320]);
        assert_eq!(l.offsets[..3], [0, 639 * 479, 639 * 479 + 320 * 240]);
        assert_eq!(l.size, 639 * 479 + 2 * 320 * 240);
    }

    #[test]
    fn driver_answers_that_cannot_hold_a_frame() {
        gst::init().unwrap();
        let i420 = info(VideoFormat::I420, 640, 480);
        let err = Layout::new(&pix(b"YU12", 640, 480, &[(600, 460800)]), &i420).unwrap_err();
        assert_eq!(
            err,
            "The driver's layout for I420 (YU12) at 640x480 is too small: a row is 600 bytes, \
             640 needed"
        );
        assert!(Layout::new(&pix(b"YU12", 640, 480, &[(640, 400000)]), &i420).is_err());
        assert!(Layout::new(&pix(b"YU12", 320, 240, &[(320, 115200)]), &i420).is_err());
        let err = Layout::new(&pix(b"YM12", 640, 480, &[(640, 307200)]), &i420).unwrap_err();
        assert!(
            err.contains("1 memory planes for I420 (YM12), which needs 3"),
            "{err}"
        );
        let nv12 = info(VideoFormat::Nv12, 640, 480);
        let err = Layout::new(
            &pix(b"NM12", 640, 480, &[(640, 307200), (640, 1000)]),
            &nv12,
        )
        .unwrap_err();
        assert!(
            err.contains("plane 1 is 1000 bytes, 153600 needed"),
            "{err}"
        );
        let err = Layout::new(&pix(b"NM12", 640, 480, &[]), &nv12).unwrap_err();
        assert!(err.contains("0 memory planes"), "{err}");
        let err = Layout::new(
            &pix(b"NV12", 640, 480, &[(640, 307200), (640, 153600)]),
            &nv12,
        )
        .unwrap_err();
        assert!(err.contains("which needs 1"), "{err}");
    }

    /// A driver that packs rows tightly gives GStreamer's default layout, for every format
    /// of the table (at a size where GStreamer's rounding changes nothing).
    #[test]
    fn packed_rows_match_the_default_for_every_entry() {
        gst::init().unwrap();
        for e in FORMATS {
            let Media::Raw(format) = e.media else {
                continue;
            };
            let info = info(format, 640, 480);
            let n = info.n_planes() as usize;
            let planes: Vec<(u32, u32)> = if e.per_plane_memory() {
                (0..n)
                    .map(|p| {
                        let g = PlaneGeometry::of(&info, p);
                        let stride = info.stride()[p] as u32;
                        (stride, stride * g.height as u32)
                    })
                    .collect()
            } else {
                vec![(info.stride()[0] as u32, info.size() as u32)]
            };
            let code = e.fourcc.bytes();
            let l = Layout::new(&pix(&code, 640, 480, &planes), &info).unwrap();
            assert!(l.matches_default(&info), "{} {format:?}: {l:?}", e.fourcc);
            assert_eq!(l.size, info.size(), "{}", e.fourcc);
            assert_eq!(l.n_memories, if e.per_plane_memory() { n } else { 1 });
        }
    }

    #[test]
    fn bayer_and_compressed_framing() {
        gst::init().unwrap();
        let caps = |s: &str| s.parse::<gst::Caps>().unwrap();
        let bayer = caps("video/x-bayer, format=bggr, width=640, height=360, framerate=30/1");
        let info = VideoInfo::from_caps(&bayer).unwrap();
        let e = crate::caps::entry(Fourcc::new(b"BA81")).unwrap();
        let f = Framing::new(&pix(b"BA81", 640, 360, &[(640, 640 * 360)]), e, &info).unwrap();
        assert_eq!(
            f,
            Framing::Bayer {
                height: 360,
                stride: 640,
                packed_stride: 640
            }
        );
        assert!(f.readable_as_is(&info, false));
        assert_eq!(f.frame_size(&info), Some(640 * 360));
        // bayer2rgb reads rows of the width rounded up to 4: a tight 638-byte row needs a copy.
        let odd = caps("video/x-bayer, format=bggr, width=638, height=360, framerate=30/1");
        let odd = VideoInfo::from_caps(&odd).unwrap();
        let f = Framing::new(&pix(b"BA81", 638, 360, &[(638, 638 * 360)]), e, &odd).unwrap();
        assert!(!f.readable_as_is(&odd, true));
        assert_eq!(f.frame_size(&odd), Some(640 * 360));
        assert!(Framing::new(&pix(b"BA81", 640, 360, &[(600, 0)]), e, &info).is_err());
        assert!(Framing::new(&pix(b"BA81", 320, 180, &[(320, 0)]), e, &info).is_err());

        let jpeg = caps("image/jpeg, width=640, height=360, framerate=30/1");
        let info = VideoInfo::from_caps(&jpeg).unwrap();
        let mjpg = crate::caps::entry(Fourcc::new(b"MJPG")).unwrap();
        let f = Framing::new(&pix(b"MJPG", 640, 360, &[(0, 921600)]), mjpg, &info).unwrap();
        assert_eq!(
            f,
            Framing::Compressed {
                delta_units: false,
                syntax: None
            }
        );
        assert_eq!(f.frame_size(&info), None);
        let h264 = crate::caps::entry(Fourcc::new(b"H264")).unwrap();
        let f = Framing::new(&pix(b"H264", 640, 360, &[(0, 921600)]), h264, &info).unwrap();
        assert_eq!(
            f,
            Framing::Compressed {
                delta_units: true,
                syntax: Some(NalSyntax::H264)
            }
        );
        assert!(f.is_delta_unit(false));
        assert!(!f.is_delta_unit(true));
        let jpeg = Framing::Compressed {
            delta_units: false,
            syntax: None,
        };
        assert!(!jpeg.is_delta_unit(false));
        let bayer = Framing::Bayer {
            height: 2,
            stride: 4,
            packed_stride: 4,
        };
        assert!(!bayer.is_delta_unit(false));
    }

    #[test]
    fn alternate_fields_count_field_rows() {
        gst::init().unwrap();
        let info = VideoInfo::builder(VideoFormat::Yuy2, 720, 576)
            .interlace_mode(gst_video::VideoInterlaceMode::Alternate)
            .build()
            .unwrap();
        let l = Layout::new(&pix(b"YUYV", 720, 288, &[(1440, 1440 * 288)]), &info).unwrap();
        assert_eq!(l.size, 1440 * 288);
        assert!(l.matches_default(&info));
        assert!(Layout::new(&pix(b"YUYV", 720, 576, &[(1440, 1440 * 576)]), &info).is_err());
    }
}
