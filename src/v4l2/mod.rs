//! The V4L2 kernel interface: raw structures, one safe function per ioctl, the device, the
//! buffer queue, the poller, and the kernel's hot-plug events for video4linux. Knows nothing of
//! GStreamer; the element and the device provider reach the kernel only through this module.
//! All unsafe code of the crate lives here, but for two places that need GStreamer: handing a
//! `DmaBufFd` to GStreamer's dmabuf allocator sits in the element
//! (`rustv4l2src/stream/lend.rs`, `dmabuf_memory`), which can only get such an fd from here;
//! and the C interfaces the element implements through vtables filled in by hand,
//! GstColorBalance, GstVideoOrientation and GstTuner (whose types only the v4l2 plugin
//! registers), are `rustv4l2src/interfaces/`.

mod buffer_ioctls;
pub mod controls;
mod crop_ioctls;
mod deadline;
pub mod device;
pub mod error;
pub mod format;
mod format_ioctls;
pub mod hotplug;
pub mod identity;
mod import;
pub mod input_ioctls;
pub mod lease;
mod mapping;
pub mod poller;
pub mod queue;
mod read_io;
mod source_ioctls;
mod sys;
mod userptr;

pub use buffer_ioctls::{Dequeued, DmaBufFd};
pub use controls::{ControlError, ControlInfo, ControlRangeError};
pub use crop_ioctls::{CropCap, CropTarget, Rect};
pub use device::{Capability, Device, OpenError};
pub use error::{Error, Result};
pub use format::{
    FormatRequest, Fourcc, Fract, FrameIntervals, FrameSizes, PixFormat, PlaneFormat, ProbedFormat,
    ProbedSize, SizeRange,
};
pub use hotplug::Hotplug;
pub use identity::{Identity, UsbDevice};
pub use import::{ImportPlane, ImportQueue};
pub use input_ioctls::{
    Input, Standard, V4L2_IN_CAP_DV_TIMINGS, V4L2_IN_CAP_STD, V4L2_IN_ST_NO_PICTURE,
    V4L2_INPUT_TYPE_CAMERA, V4L2_INPUT_TYPE_TUNER,
};
pub use lease::{Lease, LeasedPlane};
#[cfg(test)]
pub(crate) use mapping::frame_range;
pub use poller::{Awaited, Poller, Wait};
pub use queue::{DqBuffer, Plane, PlaneDmaBuf, Queue, ReadPlane, Reread, Taken};
pub use read_io::Reader;
pub use source_ioctls::{Detected, DvTimings, Event, SignalLoss, SourceChange};
pub use sys::{
    V4L2_CAP_AUDIO, V4L2_CAP_TUNER, V4L2_CAP_VBI_CAPTURE, V4L2_CAP_VBI_OUTPUT,
    V4L2_CAP_VIDEO_CAPTURE, V4L2_CAP_VIDEO_CAPTURE_MPLANE, V4L2_CAP_VIDEO_OUTPUT,
    V4L2_CAP_VIDEO_OUTPUT_MPLANE, V4L2_CAP_VIDEO_OVERLAY, V4L2_CID_BRIGHTNESS, V4L2_CID_CONTRAST,
    V4L2_CID_HCENTER, V4L2_CID_HFLIP, V4L2_CID_HUE, V4L2_CID_SATURATION, V4L2_CID_VCENTER,
    V4L2_CID_VFLIP, V4L2_CTRL_FLAG_DISABLED, V4L2_FIELD_ALTERNATE, V4L2_FIELD_ANY,
    V4L2_FIELD_BOTTOM, V4L2_FIELD_INTERLACED, V4L2_FIELD_INTERLACED_BT, V4L2_FIELD_INTERLACED_TB,
    V4L2_FIELD_NONE, V4L2_FIELD_SEQ_BT, V4L2_FIELD_SEQ_TB, V4L2_FIELD_TOP, V4L2_STD_525_60,
};
