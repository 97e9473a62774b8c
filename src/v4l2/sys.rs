//! Raw kernel ABI from `linux/videodev2.h`, written out by hand for x86_64 / aarch64 (LP64).
//! Every structure carries a compile-time size assertion, so a layout mistake fails the build
//! instead of corrupting an ioctl. Nothing here is safe to call; `device.rs` wraps it.

#![allow(non_camel_case_types)]

use std::mem::size_of;

// Buffer types and memory kinds.
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
pub const V4L2_MEMORY_MMAP: u32 = 1;
pub const V4L2_MEMORY_USERPTR: u32 = 2;
pub const V4L2_MEMORY_DMABUF: u32 = 4;

// Device capabilities (`v4l2_capability.capabilities` / `device_caps`).
pub const V4L2_CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub const V4L2_CAP_VIDEO_OUTPUT: u32 = 0x0000_0002;
pub const V4L2_CAP_VIDEO_OVERLAY: u32 = 0x0000_0004;
pub const V4L2_CAP_VBI_CAPTURE: u32 = 0x0000_0010;
pub const V4L2_CAP_VBI_OUTPUT: u32 = 0x0000_0020;
pub const V4L2_CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
pub const V4L2_CAP_VIDEO_OUTPUT_MPLANE: u32 = 0x0000_2000;
pub const V4L2_CAP_TUNER: u32 = 0x0001_0000;
pub const V4L2_CAP_AUDIO: u32 = 0x0002_0000;
pub const V4L2_CAP_READWRITE: u32 = 0x0100_0000;
pub const V4L2_CAP_STREAMING: u32 = 0x0400_0000;
pub const V4L2_CAP_DEVICE_CAPS: u32 = 0x8000_0000;

// Frame size / interval enumeration kinds.
pub const V4L2_FRMSIZE_TYPE_DISCRETE: u32 = 1;
pub const V4L2_FRMSIZE_TYPE_CONTINUOUS: u32 = 2;
pub const V4L2_FRMSIZE_TYPE_STEPWISE: u32 = 3;
pub const V4L2_FRMIVAL_TYPE_DISCRETE: u32 = 1;

// `v4l2_buffer.flags`.
pub const V4L2_BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
pub const V4L2_BUF_FLAG_PFRAME: u32 = 0x0000_0010;
pub const V4L2_BUF_FLAG_BFRAME: u32 = 0x0000_0020;
pub const V4L2_BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub const V4L2_BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
pub const V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;
/// Which moment of the frame the timestamp marks: its end (EOF, 0) or the start of its exposure.
pub const V4L2_BUF_FLAG_TSTAMP_SRC_MASK: u32 = 0x0007_0000;
pub const V4L2_BUF_FLAG_TSTAMP_SRC_SOE: u32 = 0x0001_0000;

// `enum v4l2_field`.
pub const V4L2_FIELD_ANY: u32 = 0;
pub const V4L2_FIELD_NONE: u32 = 1;
pub const V4L2_FIELD_TOP: u32 = 2;
pub const V4L2_FIELD_BOTTOM: u32 = 3;
pub const V4L2_FIELD_INTERLACED: u32 = 4;
pub const V4L2_FIELD_SEQ_TB: u32 = 5;
pub const V4L2_FIELD_SEQ_BT: u32 = 6;
pub const V4L2_FIELD_ALTERNATE: u32 = 7;
pub const V4L2_FIELD_INTERLACED_TB: u32 = 8;
pub const V4L2_FIELD_INTERLACED_BT: u32 = 9;

/// `v4l2_std_id` bits of the 525-line, 60 Hz standards (NTSC, PAL-M, PAL-60): the ones
/// whose interlaced frames start with the bottom field.
pub const V4L2_STD_525_60: u64 = 0x0000_f900;

/// `v4l2_pix_format.priv`: says the fields after it (flags, ycbcr_enc, quantization,
/// xfer_func) are filled in. Without it the kernel zeroes them before the driver sees them.
pub const V4L2_PIX_FMT_PRIV_MAGIC: u32 = 0xfeed_cafe;
/// `v4l2_pix_format.flags`: ask a capture driver to convert to the requested colorimetry
/// rather than only report its own.
pub const V4L2_PIX_FMT_FLAG_SET_CSC: u32 = 0x0000_0002;

/// `v4l2_captureparm.capability`: the driver honours `timeperframe`.
pub const V4L2_CAP_TIMEPERFRAME: u32 = 0x1000;

// Control ids.
pub const V4L2_CID_BASE: u32 = 0x0098_0900;
pub const V4L2_CID_BRIGHTNESS: u32 = V4L2_CID_BASE;
pub const V4L2_CID_CONTRAST: u32 = V4L2_CID_BASE + 1;
pub const V4L2_CID_SATURATION: u32 = V4L2_CID_BASE + 2;
pub const V4L2_CID_HUE: u32 = V4L2_CID_BASE + 3;
pub const V4L2_CID_HFLIP: u32 = V4L2_CID_BASE + 20;
pub const V4L2_CID_VFLIP: u32 = V4L2_CID_BASE + 21;
/// Deprecated in the kernel headers, but what GstVideoOrientation's centre calls reach.
pub const V4L2_CID_HCENTER: u32 = V4L2_CID_BASE + 22;
pub const V4L2_CID_VCENTER: u32 = V4L2_CID_BASE + 23;
pub const V4L2_CID_MIN_BUFFERS_FOR_CAPTURE: u32 = V4L2_CID_BASE + 39;
pub const V4L2_CTRL_FLAG_NEXT_CTRL: u32 = 0x8000_0000;
pub const V4L2_CTRL_FLAG_DISABLED: u32 = 0x0001;

pub const VIDEO_MAX_PLANES: usize = 8;

// Selection targets (`V4L2_SEL_TGT_*`) of the crop rectangle.
pub const V4L2_SEL_TGT_CROP: u32 = 0x0000;
pub const V4L2_SEL_TGT_CROP_DEFAULT: u32 = 0x0001;
pub const V4L2_SEL_TGT_CROP_BOUNDS: u32 = 0x0002;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}
const _: () = assert!(size_of::<v4l2_capability>() == 104);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_fmtdesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}
const _: () = assert!(size_of::<v4l2_fmtdesc>() == 64);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_frmsize_discrete {
    pub width: u32,
    pub height: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_frmsize_stepwise {
    pub min_width: u32,
    pub max_width: u32,
    pub step_width: u32,
    pub min_height: u32,
    pub max_height: u32,
    pub step_height: u32,
}

/// `v4l2_frmsizeenum`. The kernel's union of discrete/stepwise is kept as the larger member;
/// `discrete()` reads its first two fields, which is where the union puts them.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_frmsizeenum {
    pub index: u32,
    pub pixel_format: u32,
    pub type_: u32,
    pub stepwise: v4l2_frmsize_stepwise,
    pub reserved: [u32; 2],
}
const _: () = assert!(size_of::<v4l2_frmsizeenum>() == 44);

impl v4l2_frmsizeenum {
    pub fn discrete(&self) -> v4l2_frmsize_discrete {
        v4l2_frmsize_discrete {
            width: self.stepwise.min_width,
            height: self.stepwise.max_width,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct v4l2_fract {
    pub numerator: u32,
    pub denominator: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_frmival_stepwise {
    pub min: v4l2_fract,
    pub max: v4l2_fract,
    pub step: v4l2_fract,
}

/// `v4l2_frmivalenum`; as above, the union is its larger member and a discrete interval sits
/// where `stepwise.min` is.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_frmivalenum {
    pub index: u32,
    pub pixel_format: u32,
    pub width: u32,
    pub height: u32,
    pub type_: u32,
    pub stepwise: v4l2_frmival_stepwise,
    pub reserved: [u32; 2],
}
const _: () = assert!(size_of::<v4l2_frmivalenum>() == 52);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_pix_format {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}
const _: () = assert!(size_of::<v4l2_pix_format>() == 48);

#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_plane_pix_format {
    pub sizeimage: u32,
    pub bytesperline: u32,
    pub reserved: [u16; 6],
}
const _: () = assert!(size_of::<v4l2_plane_pix_format>() == 20);

#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_pix_format_mplane {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub colorspace: u32,
    pub plane_fmt: [v4l2_plane_pix_format; VIDEO_MAX_PLANES],
    pub num_planes: u8,
    pub flags: u8,
    pub ycbcr_enc: u8,
    pub quantization: u8,
    pub xfer_func: u8,
    pub reserved: [u8; 7],
}
const _: () = assert!(size_of::<v4l2_pix_format_mplane>() == 192);

/// `v4l2_format`. The kernel's union `fmt` holds, among others, `v4l2_window` with pointers,
/// so it is 8-byte aligned and starts at offset 8; `raw` is its 200 bytes. The four bytes in
/// between are padding in C; here they are a field, so that they are zero rather than
/// uninitialised when the struct goes to the kernel (memcheck flags S_FMT otherwise).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_format {
    pub type_: u32,
    pub padding: u32,
    pub fmt: v4l2_format_union,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_format_union {
    pub pix: v4l2_pix_format,
    pub pix_mp: v4l2_pix_format_mplane,
    pub raw: [u8; 200],
    pub align: [u64; 25],
}
const _: () = assert!(size_of::<v4l2_format>() == 208);
const _: () = assert!(std::mem::offset_of!(v4l2_format, fmt) == 8);

impl v4l2_format {
    pub fn new(type_: u32) -> Self {
        v4l2_format {
            type_,
            padding: 0,
            fmt: v4l2_format_union { raw: [0; 200] },
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_captureparm {
    pub capability: u32,
    pub capturemode: u32,
    pub timeperframe: v4l2_fract,
    pub extendedmode: u32,
    pub readbuffers: u32,
    pub reserved: [u32; 4],
}
const _: () = assert!(size_of::<v4l2_captureparm>() == 40);

/// `v4l2_streamparm`: only the capture member of the 200-byte union is used.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_streamparm {
    pub type_: u32,
    pub capture: v4l2_captureparm,
    pub rest: [u8; 160],
}
const _: () = assert!(size_of::<v4l2_streamparm>() == 204);

impl v4l2_streamparm {
    pub fn new(type_: u32) -> Self {
        v4l2_streamparm {
            type_,
            capture: v4l2_captureparm::default(),
            rest: [0; 160],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_requestbuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}
const _: () = assert!(size_of::<v4l2_requestbuffers>() == 20);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_timecode {
    pub type_: u32,
    pub flags: u32,
    pub frames: u8,
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub userbits: [u8; 4],
}
const _: () = assert!(size_of::<v4l2_timecode>() == 16);

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `v4l2_buffer.m` / `v4l2_plane.m`: an mmap offset, a user pointer, a plane array or a dmabuf fd.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_buffer_m {
    pub offset: u32,
    pub userptr: usize,
    pub planes: *mut v4l2_plane,
    pub fd: i32,
}

impl Default for v4l2_buffer_m {
    fn default() -> Self {
        v4l2_buffer_m { userptr: 0 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub timestamp: timeval,
    pub timecode: v4l2_timecode,
    pub sequence: u32,
    pub memory: u32,
    pub m: v4l2_buffer_m,
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
}
const _: () = assert!(size_of::<v4l2_buffer>() == 88);

#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_plane_m {
    pub mem_offset: u32,
    pub userptr: usize,
    pub fd: i32,
}

impl Default for v4l2_plane_m {
    fn default() -> Self {
        v4l2_plane_m { userptr: 0 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_plane {
    pub bytesused: u32,
    pub length: u32,
    pub m: v4l2_plane_m,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}
const _: () = assert!(size_of::<v4l2_plane>() == 64);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_rect {
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
}
const _: () = assert!(size_of::<v4l2_rect>() == 16);

/// `v4l2_selection`: one rectangle (`target`: crop, its default or its bounds) of a buffer type.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_selection {
    pub type_: u32,
    pub target: u32,
    pub flags: u32,
    pub r: v4l2_rect,
    pub reserved: [u32; 9],
}
const _: () = assert!(size_of::<v4l2_selection>() == 64);

/// `v4l2_crop`: the crop rectangle of the older API (`VIDIOC_S_CROP`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_crop {
    pub type_: u32,
    pub c: v4l2_rect,
}
const _: () = assert!(size_of::<v4l2_crop>() == 20);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_cropcap {
    pub type_: u32,
    pub bounds: v4l2_rect,
    pub defrect: v4l2_rect,
    pub pixelaspect: v4l2_fract,
}
const _: () = assert!(size_of::<v4l2_cropcap>() == 44);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_queryctrl {
    pub id: u32,
    pub type_: u32,
    pub name: [u8; 32],
    pub minimum: i32,
    pub maximum: i32,
    pub step: i32,
    pub default_value: i32,
    pub flags: u32,
    pub reserved: [u32; 2],
}
const _: () = assert!(size_of::<v4l2_queryctrl>() == 68);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_control {
    pub id: u32,
    pub value: i32,
}
const _: () = assert!(size_of::<v4l2_control>() == 8);

/// `v4l2_exportbuffer`: asks for one plane of one buffer as a dmabuf fd (`VIDIOC_EXPBUF`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct v4l2_exportbuffer {
    pub type_: u32,
    pub index: u32,
    pub plane: u32,
    /// `open(2)` flags for the new fd: `O_CLOEXEC` and the access mode.
    pub flags: u32,
    pub fd: i32,
    pub reserved: [u32; 11],
}
const _: () = assert!(size_of::<v4l2_exportbuffer>() == 64);

nix::ioctl_read!(vidioc_querycap, b'V', 0, v4l2_capability);
nix::ioctl_readwrite!(vidioc_enum_fmt, b'V', 2, v4l2_fmtdesc);
nix::ioctl_readwrite!(vidioc_g_fmt, b'V', 4, v4l2_format);
nix::ioctl_readwrite!(vidioc_s_fmt, b'V', 5, v4l2_format);
nix::ioctl_readwrite!(vidioc_reqbufs, b'V', 8, v4l2_requestbuffers);
nix::ioctl_readwrite!(vidioc_querybuf, b'V', 9, v4l2_buffer);
nix::ioctl_readwrite!(vidioc_qbuf, b'V', 15, v4l2_buffer);
nix::ioctl_readwrite!(vidioc_expbuf, b'V', 16, v4l2_exportbuffer);
nix::ioctl_readwrite!(vidioc_dqbuf, b'V', 17, v4l2_buffer);
nix::ioctl_write_ptr!(vidioc_streamon, b'V', 18, i32);
nix::ioctl_write_ptr!(vidioc_streamoff, b'V', 19, i32);
nix::ioctl_readwrite!(vidioc_g_parm, b'V', 21, v4l2_streamparm);
nix::ioctl_readwrite!(vidioc_s_parm, b'V', 22, v4l2_streamparm);
nix::ioctl_readwrite!(vidioc_g_ctrl, b'V', 27, v4l2_control);
nix::ioctl_readwrite!(vidioc_s_ctrl, b'V', 28, v4l2_control);
nix::ioctl_read!(vidioc_g_std, b'V', 23, u64);
nix::ioctl_readwrite!(vidioc_queryctrl, b'V', 36, v4l2_queryctrl);
nix::ioctl_readwrite!(vidioc_cropcap, b'V', 58, v4l2_cropcap);
nix::ioctl_write_ptr!(vidioc_s_crop, b'V', 60, v4l2_crop);
nix::ioctl_readwrite!(vidioc_try_fmt, b'V', 64, v4l2_format);
nix::ioctl_readwrite!(vidioc_enum_framesizes, b'V', 74, v4l2_frmsizeenum);
nix::ioctl_readwrite!(vidioc_enum_frameintervals, b'V', 75, v4l2_frmivalenum);
nix::ioctl_readwrite!(vidioc_g_selection, b'V', 94, v4l2_selection);
nix::ioctl_readwrite!(vidioc_s_selection, b'V', 95, v4l2_selection);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    // The offsets userspace and the kernel most often disagree on when a struct is hand-written.
    #[test]
    fn layouts_match_the_kernel_abi() {
        assert_eq!(offset_of!(v4l2_format, fmt), 8);
        assert_eq!(offset_of!(v4l2_buffer, timestamp), 24);
        assert_eq!(offset_of!(v4l2_buffer, sequence), 56);
        assert_eq!(offset_of!(v4l2_buffer, m), 64);
        assert_eq!(offset_of!(v4l2_buffer, length), 72);
        assert_eq!(offset_of!(v4l2_plane, data_offset), 16);
        assert_eq!(offset_of!(v4l2_pix_format_mplane, num_planes), 180);
        assert_eq!(offset_of!(v4l2_frmivalenum, stepwise), 20);
        assert_eq!(offset_of!(v4l2_exportbuffer, fd), 16);
        assert_eq!(offset_of!(v4l2_selection, r), 12);
        assert_eq!(offset_of!(v4l2_crop, c), 4);
    }

    #[test]
    fn ioctl_numbers_match_videodev2() {
        // Values as the kernel headers expand them on x86_64.
        assert_eq!(
            nix::request_code_readwrite!(b'V', 2, size_of::<v4l2_fmtdesc>()),
            0xc040_5602
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 5, size_of::<v4l2_format>()),
            0xc0d0_5605
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 17, size_of::<v4l2_buffer>()),
            0xc058_5611
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 16, size_of::<v4l2_exportbuffer>()),
            0xc040_5610
        );
        assert_eq!(
            nix::request_code_write!(b'V', 18, size_of::<i32>()),
            0x4004_5612
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 58, size_of::<v4l2_cropcap>()),
            0xc02c_563a
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 94, size_of::<v4l2_selection>()),
            0xc040_565e
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 95, size_of::<v4l2_selection>()),
            0xc040_565f
        );
        assert_eq!(
            nix::request_code_write!(b'V', 60, size_of::<v4l2_crop>()),
            0x4014_563c
        );
    }
}
