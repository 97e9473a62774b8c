//! The V4L2 kernel interface: raw structures, one safe function per ioctl, the device, the
//! buffer queue and the poller. Knows nothing of GStreamer; the element reaches the kernel
//! only through this module.

pub mod format;

pub use format::{
    Fourcc, Fract, FrameIntervals, FrameSizes, PixFormat, PlaneFormat, ProbedFormat, ProbedSize,
    SizeRange,
};
