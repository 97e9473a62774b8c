//! The format ioctls of a capture node: what it can capture (`VIDIOC_ENUM_FMT`,
//! `VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`) and what it captures
//! (`VIDIOC_G_FMT`/`S_FMT`/`TRY_FMT`, `VIDIOC_G_PARM`/`S_PARM`, `VIDIOC_G_STD`), one safe
//! function per ioctl as in `device.rs`, and the probing of formats, sizes and rates built on
//! them. The plain data they fill in is `format.rs`; cropping is `crop_ioctls.rs`. Knows
//! nothing of GStreamer, nor of buffers.

use super::device::{Device, c_string, retry};
use super::error::Result;
use super::format::{
    FormatRequest, Fourcc, Fract, FrameIntervals, FrameSizes, PixFormat, PlaneFormat, ProbedFormat,
    ProbedSize, SizeRange,
};
use super::sys::*;
use nix::errno::Errno;

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Clone, Debug)]
pub struct FormatDesc {
    pub fourcc: Fourcc,
    pub flags: u32,
    pub description: String,
}

impl Device {
    /// `VIDIOC_ENUM_FMT`; `None` past the last format.
    pub fn enum_fmt(&self, index: u32) -> Result<Option<FormatDesc>> {
        let mut raw = v4l2_fmtdesc {
            index,
            type_: self.buf_type(),
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_fmtdesc the kernel fills in place.
        match retry(|| unsafe { vidioc_enum_fmt(self.raw(), &mut raw) }) {
            Ok(_) => Ok(Some(FormatDesc {
                fourcc: Fourcc(raw.pixelformat),
                flags: raw.flags,
                description: c_string(&raw.description),
            })),
            Err(Errno::EINVAL) => Ok(None),
            Err(errno) => Err(self.err("VIDIOC_ENUM_FMT", errno)),
        }
    }

    /// `VIDIOC_ENUM_FRAMESIZES`, all entries; `None` when the driver does not enumerate sizes.
    pub fn enum_framesizes(&self, fourcc: Fourcc) -> Result<Option<FrameSizes>> {
        let mut discrete = Vec::new();
        for index in 0.. {
            let mut raw = v4l2_frmsizeenum {
                index,
                pixel_format: fourcc.0,
                ..Default::default()
            };
            // SAFETY: `raw` is a valid v4l2_frmsizeenum the kernel fills in place.
            match retry(|| unsafe { vidioc_enum_framesizes(self.raw(), &mut raw) }) {
                Ok(_) => {}
                Err(Errno::EINVAL) | Err(Errno::ENOTTY) => break,
                Err(errno) => return Err(self.err("VIDIOC_ENUM_FRAMESIZES", errno)),
            }
            match raw.type_ {
                V4L2_FRMSIZE_TYPE_DISCRETE => {
                    let d = raw.discrete();
                    discrete.push((d.width, d.height));
                }
                V4L2_FRMSIZE_TYPE_STEPWISE | V4L2_FRMSIZE_TYPE_CONTINUOUS => {
                    let s = raw.stepwise;
                    return Ok(Some(FrameSizes::Stepwise(SizeRange {
                        min_width: s.min_width,
                        max_width: s.max_width,
                        step_width: s.step_width.max(1),
                        min_height: s.min_height,
                        max_height: s.max_height,
                        step_height: s.step_height.max(1),
                    })));
                }
                _ => break,
            }
        }
        Ok((!discrete.is_empty()).then_some(FrameSizes::Discrete(discrete)))
    }

    /// `VIDIOC_ENUM_FRAMEINTERVALS` for one format and size, all entries.
    pub fn enum_frameintervals(
        &self,
        fourcc: Fourcc,
        width: u32,
        height: u32,
    ) -> Result<FrameIntervals> {
        let mut discrete = Vec::new();
        for index in 0.. {
            let mut raw = v4l2_frmivalenum {
                index,
                pixel_format: fourcc.0,
                width,
                height,
                ..Default::default()
            };
            // SAFETY: `raw` is a valid v4l2_frmivalenum the kernel fills in place.
            match retry(|| unsafe { vidioc_enum_frameintervals(self.raw(), &mut raw) }) {
                Ok(_) => {}
                Err(Errno::EINVAL) | Err(Errno::ENOTTY) => break,
                Err(errno) => return Err(self.err("VIDIOC_ENUM_FRAMEINTERVALS", errno)),
            }
            let s = raw.stepwise;
            let fract = |f: v4l2_fract| Fract::new(f.numerator, f.denominator);
            if raw.type_ == V4L2_FRMIVAL_TYPE_DISCRETE {
                if s.min.numerator != 0 && s.min.denominator != 0 {
                    discrete.push(fract(s.min));
                }
            } else {
                return Ok(FrameIntervals::Stepwise {
                    min: fract(s.min),
                    max: fract(s.max),
                    step: fract(s.step),
                });
            }
        }
        Ok(if discrete.is_empty() {
            FrameIntervals::Unknown
        } else {
            FrameIntervals::Discrete(discrete)
        })
    }

    /// The formats the device lists (`VIDIOC_ENUM_FMT` only), their sizes not listed yet
    /// (empty): [`list_sizes`](Self::list_sizes) lists a format's when it is needed. A device
    /// lists dozens of formats and each format's sizes cost one ioctl per size, while
    /// negotiation mostly needs one format's.
    pub fn enum_formats(&self) -> Result<Vec<ProbedFormat>> {
        let mut formats = Vec::new();
        for index in 0.. {
            let Some(desc) = self.enum_fmt(index)? else {
                break;
            };
            formats.push(ProbedFormat {
                fourcc: desc.fourcc,
                flags: desc.flags,
                description: desc.description,
                sizes: Vec::new(),
            });
        }
        Ok(formats)
    }

    /// The frame sizes of one format (`VIDIOC_ENUM_FRAMESIZES`), empty when the driver does
    /// not enumerate them; the intervals are left `Unknown` for `fill_intervals` to fill where
    /// needed.
    pub fn list_sizes(&self, fourcc: Fourcc) -> Result<Vec<ProbedSize>> {
        Ok(match self.enum_framesizes(fourcc)? {
            None => Vec::new(),
            Some(FrameSizes::Discrete(list)) => list
                .into_iter()
                .map(|(width, height)| ProbedSize::Discrete {
                    width,
                    height,
                    intervals: FrameIntervals::Unknown,
                })
                .collect(),
            Some(FrameSizes::Stepwise(range)) => vec![ProbedSize::Range {
                range,
                intervals: FrameIntervals::Unknown,
            }],
        })
    }

    /// The formats the device lists and, for those `wanted` accepts, their frame sizes; the
    /// intervals are left `Unknown` for `fill_intervals` to fill where needed. This is the
    /// cheap part of probing: one ioctl per format and per size, and no `VIDIOC_TRY_FMT`.
    pub fn list_formats(&self, wanted: impl Fn(Fourcc) -> bool) -> Result<Vec<ProbedFormat>> {
        let mut formats = self.enum_formats()?;
        for format in formats.iter_mut().filter(|f| wanted(f.fourcc)) {
            format.sizes = self.list_sizes(format.fourcc)?;
        }
        Ok(formats)
    }

    /// The intervals of one listed size: at that size, or for a range at its largest size (the
    /// slowest, which every size in the range can do).
    pub fn probe_intervals(&self, fourcc: Fourcc, size: &ProbedSize) -> Result<FrameIntervals> {
        match size {
            ProbedSize::Discrete { width, height, .. } => {
                self.enum_frameintervals(fourcc, *width, *height)
            }
            ProbedSize::Range { range, .. } => {
                self.enum_frameintervals(fourcc, range.max_width, range.max_height)
            }
        }
    }

    /// Fills in the frame intervals of one listed size. A driver that enumerates none is asked
    /// for its current rate (`VIDIOC_G_PARM`), as v4l2src does; without one they stay `Unknown`.
    pub fn fill_intervals(&self, fourcc: Fourcc, size: &mut ProbedSize) -> Result<()> {
        let mut found = self.probe_intervals(fourcc, size)?;
        if found == FrameIntervals::Unknown
            && let Ok(Some(current)) = self.g_parm()
        {
            found = FrameIntervals::Discrete(vec![current]);
        }
        match size {
            ProbedSize::Discrete { intervals, .. } | ProbedSize::Range { intervals, .. } => {
                *intervals = found
            }
        }
        Ok(())
    }

    fn format_from_raw(&self, raw: &v4l2_format) -> PixFormat {
        if self.is_multiplanar() {
            // SAFETY: for a _MPLANE buffer type the kernel fills the `pix_mp` member.
            let mp = unsafe { raw.fmt.pix_mp };
            let n = (mp.num_planes as usize).clamp(1, VIDEO_MAX_PLANES);
            let planes = mp.plane_fmt[..n]
                .iter()
                .map(|p| PlaneFormat {
                    bytesperline: p.bytesperline,
                    sizeimage: p.sizeimage,
                })
                .collect();
            PixFormat {
                width: mp.width,
                height: mp.height,
                fourcc: Fourcc(mp.pixelformat),
                field: mp.field,
                colorspace: mp.colorspace,
                ycbcr_enc: mp.ycbcr_enc as u32,
                quantization: mp.quantization as u32,
                xfer_func: mp.xfer_func as u32,
                planes,
            }
        } else {
            // SAFETY: for a single-planar buffer type the kernel fills the `pix` member.
            let pix = unsafe { raw.fmt.pix };
            PixFormat {
                width: pix.width,
                height: pix.height,
                fourcc: Fourcc(pix.pixelformat),
                field: pix.field,
                colorspace: pix.colorspace,
                ycbcr_enc: pix.ycbcr_enc,
                quantization: pix.quantization,
                xfer_func: pix.xfer_func,
                planes: vec![PlaneFormat {
                    bytesperline: pix.bytesperline,
                    sizeimage: pix.sizeimage,
                }],
            }
        }
    }

    fn format_to_raw(&self, request: &FormatRequest) -> v4l2_format {
        let mut raw = v4l2_format::new(self.buf_type());
        // Asking a capture driver for a colorimetry means asking it to convert; a request
        // without one leaves the flag off, so the driver reports what it produces.
        let csc = if request.has_colorimetry() {
            V4L2_PIX_FMT_FLAG_SET_CSC
        } else {
            0
        };
        if self.is_multiplanar() {
            raw.fmt.pix_mp = v4l2_pix_format_mplane {
                width: request.width,
                height: request.height,
                pixelformat: request.fourcc.0,
                field: request.field,
                colorspace: request.colorspace,
                flags: csc as u8,
                ycbcr_enc: request.ycbcr_enc as u8,
                quantization: request.quantization as u8,
                xfer_func: request.xfer_func as u8,
                ..Default::default()
            };
        } else {
            raw.fmt.pix = v4l2_pix_format {
                width: request.width,
                height: request.height,
                pixelformat: request.fourcc.0,
                field: request.field,
                colorspace: request.colorspace,
                priv_: V4L2_PIX_FMT_PRIV_MAGIC,
                flags: csc,
                ycbcr_enc: request.ycbcr_enc,
                quantization: request.quantization,
                xfer_func: request.xfer_func,
                ..Default::default()
            };
        }
        raw
    }

    /// `VIDIOC_G_FMT`
    pub fn g_fmt(&self) -> Result<PixFormat> {
        let mut raw = v4l2_format::new(self.buf_type());
        // SAFETY: `raw` is a valid v4l2_format for this node's buffer type.
        retry(|| unsafe { vidioc_g_fmt(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_FMT", e))?;
        Ok(self.format_from_raw(&raw))
    }

    /// `VIDIOC_S_FMT`: returns what the driver actually set, which may differ from the request.
    pub fn s_fmt(&self, request: &FormatRequest) -> Result<PixFormat> {
        let mut raw = self.format_to_raw(request);
        // SAFETY: `raw` is a valid, initialised v4l2_format for this node's buffer type.
        retry(|| unsafe { vidioc_s_fmt(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_FMT", e))?;
        Ok(self.format_from_raw(&raw))
    }

    /// `VIDIOC_TRY_FMT`: what `s_fmt` would set, without setting it.
    pub fn try_fmt(&self, request: &FormatRequest) -> Result<PixFormat> {
        let mut raw = self.format_to_raw(request);
        // SAFETY: as for `s_fmt`.
        retry(|| unsafe { vidioc_try_fmt(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_TRY_FMT", e))?;
        Ok(self.format_from_raw(&raw))
    }

    /// `VIDIOC_G_STD`: the analogue TV standard of the current input (`V4L2_STD_*` bits);
    /// `None` for inputs without one (webcams, HDMI).
    pub fn g_std(&self) -> Result<Option<u64>> {
        let mut raw: u64 = 0;
        // SAFETY: the kernel writes one v4l2_std_id (u64).
        match retry(|| unsafe { vidioc_g_std(self.raw(), &mut raw) }) {
            Ok(_) => Ok((raw != 0).then_some(raw)),
            Err(Errno::ENOTTY) | Err(Errno::ENODATA) | Err(Errno::EINVAL) => Ok(None),
            Err(errno) => Err(self.err("VIDIOC_G_STD", errno)),
        }
    }

    /// `VIDIOC_G_PARM`: the time per frame, when the driver supports setting it.
    pub fn g_parm(&self) -> Result<Option<Fract>> {
        let mut raw = v4l2_streamparm::new(self.buf_type());
        // SAFETY: `raw` is a valid v4l2_streamparm the kernel fills in place.
        retry(|| unsafe { vidioc_g_parm(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_PARM", e))?;
        let t = raw.capture.timeperframe;
        Ok(
            (raw.capture.capability & V4L2_CAP_TIMEPERFRAME != 0 && t.denominator != 0)
                .then(|| Fract::new(t.numerator, t.denominator)),
        )
    }

    /// `VIDIOC_S_PARM`: asks for a time per frame and returns the one the driver chose.
    pub fn s_parm(&self, interval: Fract) -> Result<Fract> {
        let mut raw = v4l2_streamparm::new(self.buf_type());
        raw.capture.timeperframe = v4l2_fract {
            numerator: interval.numerator,
            denominator: interval.denominator,
        };
        // SAFETY: `raw` is a valid, initialised v4l2_streamparm.
        retry(|| unsafe { vidioc_s_parm(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_PARM", e))?;
        let t = raw.capture.timeperframe;
        Ok(Fract::new(t.numerator, t.denominator))
    }
}
