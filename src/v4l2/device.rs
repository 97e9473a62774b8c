//! An open V4L2 capture node and one safe function per ioctl, named after it.
//! Each wraps exactly one kernel call (repeated when a signal interrupts it) and returns `Error`
//! naming that call and the device.

use super::error::{Error, Result};
use super::format::{
    FormatRequest, Fourcc, Fract, FrameIntervals, FrameSizes, PixFormat, PlaneFormat, ProbedFormat,
    ProbedSize, SizeRange,
};
use super::sys::*;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, stat};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a path could not be opened as a capture device; each is a different user mistake.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing at that path.
    NotFound,
    /// The path exists but is not a character device (a regular file, a folder).
    NotADevice,
    /// A character device that does not answer `VIDIOC_QUERYCAP` (`/dev/null`, a tty).
    NotV4l2,
    /// A V4L2 node that cannot capture video with streaming I/O (an output node, a radio...).
    NotCapture { card: String, device_caps: u32 },
    /// Opening or querying failed for another reason (permissions, a driver error).
    Io(Error),
}

/// What `VIDIOC_QUERYCAP` tells about the node.
#[derive(Clone, Debug)]
pub struct Capability {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    /// The node's own capabilities (`device_caps` when the driver reports them).
    pub device_caps: u32,
}

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Clone, Debug)]
pub struct FormatDesc {
    pub fourcc: Fourcc,
    pub flags: u32,
    pub description: String,
}

/// Where each plane of a driver buffer lives in the device's mmap space (`VIDIOC_QUERYBUF`).
#[derive(Clone, Debug)]
pub(super) struct BufferPlanes {
    /// (mmap offset, length) for each memory plane.
    pub planes: Vec<(u32, u32)>,
}

/// What `VIDIOC_DQBUF` said about a buffer: plain data that gives no access to the buffer
/// (the `DqBuffer` token of `Queue::dequeue` does, and reads as one of these).
#[derive(Clone, Copy, Debug)]
pub struct Dequeued {
    pub index: u32,
    pub flags: u32,
    pub field: u32,
    pub sequence: u32,
    /// The driver's capture time; on `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC` buffers it is
    /// `CLOCK_MONOTONIC`.
    pub timestamp: Duration,
    pub n_planes: usize,
    /// (bytesused, data_offset) per memory plane.
    pub planes: [(u32, u32); VIDEO_MAX_PLANES],
}

impl Dequeued {
    pub fn has_monotonic_timestamp(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
    }

    /// Whether the timestamp marks the start of the frame's exposure (UVC) rather than the end
    /// of the frame (`V4L2_BUF_FLAG_TSTAMP_SRC_EOF`, the default: vivid, most CSI and PCI
    /// drivers).
    pub fn stamped_at_start(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_TSTAMP_SRC_MASK == V4L2_BUF_FLAG_TSTAMP_SRC_SOE
    }

    pub fn is_error(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_ERROR != 0
    }

    pub fn is_keyframe(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_KEYFRAME != 0
    }

    /// Whether the driver says what kind of frame this is (key, P or B). Many don't
    /// (uvcvideo, v4l2loopback), and then no flag means nothing.
    pub fn has_frame_type(&self) -> bool {
        self.flags & (V4L2_BUF_FLAG_KEYFRAME | V4L2_BUF_FLAG_PFRAME | V4L2_BUF_FLAG_BFRAME) != 0
    }
}

/// A dmabuf fd exported by `VIDIOC_EXPBUF`. Only `Device::expbuf` makes one, and a duplicate of
/// it (`try_clone`) refers to the same dmabuf, so holding a `DmaBufFd` proves the fd is a dmabuf:
/// what a dmabuf allocator requires of the fds it wraps.
///
/// The exported buffer stays allocated for as long as any fd refers to it, even after the queue
/// was freed (`VIDIOC_REQBUFS(0)`): vb2 keeps the memory of exported buffers alive.
#[derive(Debug)]
pub struct DmaBufFd(OwnedFd);

impl DmaBufFd {
    /// A new fd (close-on-exec) for the same dmabuf, owned by the caller.
    pub fn try_clone(&self) -> std::result::Result<DmaBufFd, Errno> {
        self.0
            .try_clone()
            .map(DmaBufFd)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))
    }
}

impl AsFd for DmaBufFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<DmaBufFd> for OwnedFd {
    fn from(fd: DmaBufFd) -> OwnedFd {
        fd.0
    }
}

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

#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: PathBuf,
    capability: Capability,
    buf_type: u32,
}

/// Runs a system call again for as long as a signal interrupts it (`EINTR`): a signal
/// delivered to the capturing thread (a profiler's, a debugger's, the application's own) says
/// nothing about the device, and every call here is safe to repeat when it did not happen.
pub(super) fn retry<T>(mut call: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            done => return done,
        }
    }
}

/// A driver's `timeval` as a `Duration`: a negative time (a driver bug) is 0, and microseconds
/// out of 0..1_000_000 are clamped, so nothing wraps or panics.
fn timeval_duration(sec: i64, usec: i64) -> Duration {
    let nanos = usec.clamp(0, 999_999).saturating_mul(1000);
    Duration::new(
        u64::try_from(sec).unwrap_or(0),
        u32::try_from(nanos).unwrap_or(0),
    )
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Device {
    /// Opens a capture node non-blocking (the element waits in poll, never in DQBUF) and checks
    /// that it can stream video in.
    pub fn open(path: &Path) -> std::result::Result<Device, OpenError> {
        let st = match stat(path) {
            Ok(st) => st,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Err(OpenError::NotFound),
            Err(errno) => return Err(OpenError::Io(Error::new("stat", path, errno))),
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
            return Err(OpenError::NotADevice);
        }
        let fd = retry(|| {
            open(
                path,
                OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(|errno| OpenError::Io(Error::new("open", path, errno)))?;

        let mut raw = v4l2_capability::default();
        // SAFETY: `raw` is a correctly sized, writable v4l2_capability; the fd is open.
        match retry(|| unsafe { vidioc_querycap(fd.as_raw_fd(), &mut raw) }) {
            Ok(_) => {}
            Err(Errno::ENOTTY) | Err(Errno::EINVAL) => return Err(OpenError::NotV4l2),
            Err(errno) => return Err(OpenError::Io(Error::new("VIDIOC_QUERYCAP", path, errno))),
        }
        let device_caps = if raw.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
            raw.device_caps
        } else {
            raw.capabilities
        };
        let capability = Capability {
            driver: c_string(&raw.driver),
            card: c_string(&raw.card),
            bus_info: c_string(&raw.bus_info),
            device_caps,
        };
        let buf_type = if device_caps & V4L2_CAP_VIDEO_CAPTURE != 0 {
            V4L2_BUF_TYPE_VIDEO_CAPTURE
        } else if device_caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
            V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
        } else {
            return Err(OpenError::NotCapture {
                card: capability.card,
                device_caps,
            });
        };
        if device_caps & V4L2_CAP_STREAMING == 0 {
            return Err(OpenError::NotCapture {
                card: capability.card,
                device_caps,
            });
        }
        Ok(Device {
            fd,
            path: path.to_owned(),
            capability,
            buf_type,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    pub fn is_multiplanar(&self) -> bool {
        self.buf_type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
    }

    pub fn buf_type(&self) -> u32 {
        self.buf_type
    }

    fn err(&self, call: &'static str, errno: Errno) -> Error {
        Error::new(call, &self.path, errno)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `VIDIOC_ENUM_FMT`; `None` past the last format.
    pub fn enum_fmt(&self, index: u32) -> Result<Option<FormatDesc>> {
        let mut raw = v4l2_fmtdesc {
            index,
            type_: self.buf_type,
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

    /// The formats the device lists and, for those `wanted` accepts, their frame sizes; the
    /// intervals are left `Unknown` for `probe_intervals` to fill where needed. This is the
    /// cheap part of probing: one ioctl per format and per size, and no `VIDIOC_TRY_FMT`.
    pub fn list_formats(&self, wanted: impl Fn(Fourcc) -> bool) -> Result<Vec<ProbedFormat>> {
        let mut formats = Vec::new();
        for index in 0.. {
            let Some(desc) = self.enum_fmt(index)? else {
                break;
            };
            let sizes = if !wanted(desc.fourcc) {
                Vec::new()
            } else {
                match self.enum_framesizes(desc.fourcc)? {
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
                }
            };
            formats.push(ProbedFormat {
                fourcc: desc.fourcc,
                flags: desc.flags,
                description: desc.description,
                sizes,
            });
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
        let mut raw = v4l2_format::new(self.buf_type);
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
        let mut raw = v4l2_format::new(self.buf_type);
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

    /// `VIDIOC_CROPCAP`: the pixel aspect as the kernel gives it, height over width (11/10 for
    /// NTSC sampled per BT.601: pixels taller than wide). `None` when the driver does not say,
    /// which means square pixels.
    pub fn cropcap(&self) -> Result<Option<Fract>> {
        let mut raw = v4l2_cropcap {
            type_: self.buf_type,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_cropcap the kernel fills in place.
        match retry(|| unsafe { vidioc_cropcap(self.raw(), &mut raw) }) {
            Ok(_) => {}
            // No cropping on this input (vivid's webcam answers ENODATA), or none at all.
            Err(Errno::ENOTTY) | Err(Errno::EINVAL) | Err(Errno::ENODATA) => return Ok(None),
            Err(errno) => return Err(self.err("VIDIOC_CROPCAP", errno)),
        }
        let p = raw.pixelaspect;
        Ok(
            (p.numerator != 0 && p.denominator != 0)
                .then(|| Fract::new(p.numerator, p.denominator)),
        )
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
        let mut raw = v4l2_streamparm::new(self.buf_type);
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
        let mut raw = v4l2_streamparm::new(self.buf_type);
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

    // The buffer ioctls below are for `Queue` alone (`pub(super)`): with a buffer index in hand,
    // safe code elsewhere could queue a buffer that a `DqBuffer` or a lent `Plane` still reads or
    // writes, or free and reallocate the buffers under a running queue.

    /// `VIDIOC_REQBUFS` with mmap memory; returns the count the driver granted. Zero frees.
    pub(super) fn reqbufs(&self, count: u32) -> Result<u32> {
        let mut raw = v4l2_requestbuffers {
            count,
            type_: self.buf_type,
            memory: V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_requestbuffers.
        retry(|| unsafe { vidioc_reqbufs(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_REQBUFS", e))?;
        Ok(raw.count)
    }

    /// Fills a v4l2_buffer for `index`, pointing multi-planar buffers at `planes`.
    fn buffer_for(&self, index: u32, planes: &mut [v4l2_plane; VIDEO_MAX_PLANES]) -> v4l2_buffer {
        let mut raw = v4l2_buffer {
            index,
            type_: self.buf_type,
            memory: V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        if self.is_multiplanar() {
            raw.m.planes = planes.as_mut_ptr();
            raw.length = VIDEO_MAX_PLANES as u32;
        }
        raw
    }

    /// `VIDIOC_QUERYBUF`: where buffer `index` lives in the mmap space.
    pub(super) fn querybuf(&self, index: u32) -> Result<BufferPlanes> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(index, &mut planes);
        // SAFETY: `raw` is valid; for multi-planar nodes `raw.m.planes` points at `planes`,
        // VIDEO_MAX_PLANES entries that outlive the call.
        retry(|| unsafe { vidioc_querybuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_QUERYBUF", e))?;
        let planes = if self.is_multiplanar() {
            let n = (raw.length as usize).min(VIDEO_MAX_PLANES);
            // SAFETY: for MMAP memory the kernel fills `mem_offset` of each plane.
            planes[..n]
                .iter()
                .map(|p| (unsafe { p.m.mem_offset }, p.length))
                .collect()
        } else {
            // SAFETY: for MMAP memory the kernel fills `offset`.
            vec![(unsafe { raw.m.offset }, raw.length)]
        };
        Ok(BufferPlanes { planes })
    }

    /// `VIDIOC_QBUF`: gives buffer `index` back to the driver to fill.
    pub(super) fn qbuf(&self, index: u32) -> Result<()> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(index, &mut planes);
        // SAFETY: as for `querybuf`.
        retry(|| unsafe { vidioc_qbuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_QBUF", e))?;
        Ok(())
    }

    /// `VIDIOC_EXPBUF`: plane `plane` of buffer `index` as a new dmabuf fd. Read-write as
    /// v4l2src asks for it, so that a consumer may map it as it could map the mmap'd plane.
    pub(super) fn expbuf(&self, index: u32, plane: u32) -> Result<DmaBufFd> {
        let mut raw = v4l2_exportbuffer {
            type_: self.buf_type,
            index,
            plane,
            flags: (OFlag::O_CLOEXEC | OFlag::O_RDWR).bits() as u32,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid, initialised v4l2_exportbuffer the kernel fills in place.
        retry(|| unsafe { vidioc_expbuf(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_EXPBUF", e))?;
        if raw.fd < 0 {
            return Err(self.err("VIDIOC_EXPBUF", Errno::EBADF));
        }
        // SAFETY: on success the kernel installed `raw.fd` as a new descriptor in this process's
        // table; nothing else knows it, so it is ours to own and close.
        Ok(DmaBufFd(unsafe { OwnedFd::from_raw_fd(raw.fd) }))
    }

    /// `VIDIOC_DQBUF`, non-blocking: `Ok(None)` when no buffer is ready (`EAGAIN`).
    pub(super) fn dqbuf(&self) -> Result<Option<Dequeued>> {
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES];
        let mut raw = self.buffer_for(0, &mut planes);
        // SAFETY: as for `querybuf`.
        match retry(|| unsafe { vidioc_dqbuf(self.raw(), &mut raw) }) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => return Ok(None),
            Err(errno) => return Err(self.err("VIDIOC_DQBUF", errno)),
        }
        let mut out = Dequeued {
            index: raw.index,
            flags: raw.flags,
            field: raw.field,
            sequence: raw.sequence,
            timestamp: timeval_duration(raw.timestamp.tv_sec, raw.timestamp.tv_usec),
            n_planes: 1,
            planes: [(0, 0); VIDEO_MAX_PLANES],
        };
        if self.is_multiplanar() {
            out.n_planes = (raw.length as usize).clamp(1, VIDEO_MAX_PLANES);
            for (dst, p) in out.planes.iter_mut().zip(&planes[..out.n_planes]) {
                *dst = (p.bytesused, p.data_offset);
            }
        } else {
            out.planes[0] = (raw.bytesused, 0);
        }
        Ok(Some(out))
    }

    /// `VIDIOC_STREAMON`
    pub(super) fn streamon(&self) -> Result<()> {
        let type_ = self.buf_type as i32;
        // SAFETY: the kernel reads one int.
        retry(|| unsafe { vidioc_streamon(self.raw(), &type_) })
            .map_err(|e| self.err("VIDIOC_STREAMON", e))?;
        Ok(())
    }

    /// `VIDIOC_STREAMOFF`: also takes back every queued buffer.
    pub(super) fn streamoff(&self) -> Result<()> {
        let type_ = self.buf_type as i32;
        // SAFETY: the kernel reads one int.
        retry(|| unsafe { vidioc_streamoff(self.raw(), &type_) })
            .map_err(|e| self.err("VIDIOC_STREAMOFF", e))?;
        Ok(())
    }

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
}

#[cfg(test)]
impl Device {
    /// A single-planar capture "device" on `/dev/null`, for tests of the layers above the
    /// ioctls without a driver: every ioctl on it fails with `ENOTTY`.
    pub(super) fn null() -> Device {
        let path = Path::new("/dev/null");
        let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).expect("/dev/null");
        Device {
            fd,
            path: path.to_owned(),
            capability: Capability {
                driver: "null".to_owned(),
                card: "null".to_owned(),
                bus_info: String::new(),
                device_caps: V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING,
            },
            buf_type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        }
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Now on `CLOCK_MONOTONIC`, the clock of `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC` buffer timestamps.
pub fn monotonic_now() -> Duration {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => Duration::new(
            ts.tv_sec().max(0) as u64,
            ts.tv_nsec().clamp(0, 999_999_999) as u32,
        ),
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::{retry, timeval_duration};
    use nix::errno::Errno;
    use std::time::Duration;

    #[test]
    fn timevals_never_wrap() {
        assert_eq!(timeval_duration(3, 250_000), Duration::from_millis(3250));
        assert_eq!(timeval_duration(-1, 5), Duration::from_micros(5));
        assert_eq!(timeval_duration(1, -5), Duration::from_secs(1));
        assert_eq!(
            timeval_duration(i64::MAX, i64::MAX),
            Duration::new(i64::MAX as u64, 999_999_000)
        );
    }

    #[test]
    fn retry_repeats_only_interrupted_calls() {
        let mut calls = 0;
        let got = retry(|| {
            calls += 1;
            if calls < 3 {
                Err(Errno::EINTR)
            } else {
                Ok(calls)
            }
        });
        assert_eq!((got, calls), (Ok(3), 3));

        let mut calls = 0;
        let got: nix::Result<()> = retry(|| {
            calls += 1;
            Err(Errno::EAGAIN)
        });
        assert_eq!((got, calls), (Err(Errno::EAGAIN), 1));

        let mut calls = 0;
        assert_eq!(
            retry(|| {
                calls += 1;
                Ok::<_, Errno>(7)
            }),
            Ok(7)
        );
        assert_eq!(calls, 1);
    }
}
