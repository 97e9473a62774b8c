//! Translation between the two worlds: V4L2 pixel formats, frame sizes and frame intervals on
//! one side, GStreamer caps, `VideoInfo` and `VideoMeta` layouts on the other.
//!
//! This layer is pure logic. It reads the plain data `crate::v4l2` fills in (`ProbedFormat`,
//! `PixFormat`) and answers in GStreamer types; it never opens a device, issues an ioctl or
//! touches the element's state, so all of it is unit-tested without hardware.
//!
//! - [`formats`]: the one fourcc <-> GStreamer format table.
//! - [`probed_to_caps`]: what the device enumerated, as the caps the element offers.
//! - [`choose`]: which listed format and size to capture when downstream leaves a choice (the
//!   largest that reaches 30 fps), looking at [`candidates`] in an order that keeps probing
//!   low; [`fixate`]: the size and rate within the chosen caps.
//! - [`caps_to_request`]: fixed caps back to the fourcc, size and interval to set.
//! - [`Layout`]: where the driver puts each plane, for `GstVideoMeta`; [`Framing`]: how a
//!   buffer of any format becomes a `GstBuffer`; [`field_flags`], [`meta_offsets`] and
//!   [`picture_bytes`]: what one captured frame's buffer says of itself.
//! - [`bitstream`]: which H.264/H.265 access units are keyframes, when the driver does not say.
//! - [`colorimetry`]: V4L2 colorspace and field order <-> GStreamer colorimetry and
//!   interlacing, and the pixel aspect ratio.
//! - [`caps_pixel_aspect_ratio`], [`restrict_size`]: the pixel aspect ratio the caps carry
//!   (`pixel-aspect-ratio`, `force-aspect-ratio`), and the one size of a cropped capture.

pub mod bitstream;
pub mod colorimetry;
pub mod formats;

mod candidates;
mod fixate;
mod frame;
mod geometry;
mod layout;
mod probe;
mod request;
mod summary;

pub use candidates::{Candidate, SMOOTH_RATE, candidates, choose, size_caps};
pub use colorimetry::pixel_aspect_ratio;
pub use fixate::fixate;
pub use formats::{FORMATS, FormatEntry, Media, Memory, Payload, entry, fourccs, video_format};
pub use frame::{field_flags, meta_offsets, picture_bytes};
pub use geometry::{
    Native, caps_pixel_aspect_ratio, parse_pixel_aspect_ratio, restrict_size, restrict_to_native,
};
pub use layout::{Framing, Layout};
pub use probe::{MAX_SIZE, any_size_caps, probed_to_caps, probed_to_caps_with_par, template_caps};
pub use request::{CaptureRequest, caps_to_request, settle};
pub use summary::summary;
