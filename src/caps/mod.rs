//! Translation between V4L2 formats and GStreamer caps.
