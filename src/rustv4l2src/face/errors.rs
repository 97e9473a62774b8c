//! The sentences users read on the bus: each way opening, configuring or streaming from a device
//! can fail, as a GStreamer error naming the device, the cause and what to try. Builders only:
//! whoever holds an element lock returns these and posts them after letting go.

use crate::v4l2::{self, OpenError};

/// Opening the device failed.
pub(in crate::rustv4l2src) fn open_error(path: &str, err: OpenError) -> gst::ErrorMessage {
    match err {
        OpenError::NotFound => gst::error_msg!(
            gst::ResourceError::NotFound,
            (
                "Device '{}' does not exist. Check the 'device' property (v4l2-ctl --list-devices lists capture devices).",
                path
            )
        ),
        OpenError::NotADevice => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "'{}' is not a device file, so it cannot be a V4L2 capture device. Point 'device' at a /dev/videoN node.",
                path
            )
        ),
        OpenError::NotV4l2 => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "'{}' is a device but not a V4L2 device (it does not answer VIDIOC_QUERYCAP). Point 'device' at a /dev/videoN node.",
                path
            )
        ),
        OpenError::NotCapture { card, device_caps } => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "Device '{}' ({}) cannot capture video with streaming I/O (device caps {:#010x}); it may be an output or metadata node. Pick another /dev/videoN.",
                path,
                card,
                device_caps
            )
        ),
        OpenError::Io(e) if e.errno == nix::errno::Errno::EACCES => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "No permission to open '{}': {}. Add your user to the 'video' group.",
                path,
                e
            )
        ),
        OpenError::Io(e) if e.is_busy() => gst::error_msg!(
            gst::ResourceError::Busy,
            ("Device '{}' is busy: {}", path, e)
        ),
        OpenError::Io(e) => gst::error_msg!(
            gst::ResourceError::OpenRead,
            ("Could not open device '{}': {}", path, e)
        ),
    }
}

/// Opening the application's descriptor (`device-fd`) failed.
pub(in crate::rustv4l2src) fn fd_open_error(fd: i32, err: OpenError) -> gst::ErrorMessage {
    match err {
        OpenError::Io(e) if e.call == "F_DUPFD_CLOEXEC" => gst::error_msg!(
            gst::ResourceError::OpenRead,
            (
                "device-fd {} is not an open file descriptor of this process ({}). Pass the descriptor of an open /dev/videoN node, and keep it open until the element is in NULL.",
                fd,
                e
            )
        ),
        other => open_error(&format!("device-fd {fd}"), other),
    }
}

/// The device offers nothing the element can map to caps.
pub(in crate::rustv4l2src) fn no_format(
    path: &str,
    listed: &[v4l2::ProbedFormat],
) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        (
            "Device '{}' offers no format this element can capture (it lists: {}).",
            path,
            listed
                .iter()
                .map(|f| f.fourcc.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    )
}

/// A failed ioctl while configuring or streaming; `what` says what the element was doing.
pub(in crate::rustv4l2src) fn device_error(what: &str, e: &v4l2::Error) -> gst::ErrorMessage {
    let path = e.device.display();
    if e.is_busy() {
        gst::error_msg!(
            gst::ResourceError::Busy,
            (
                "Device '{}' is busy ({} failed: another application is probably capturing from it). Close it and try again.",
                path,
                e.call
            )
        )
    } else if e.is_disconnect() {
        gst::error_msg!(
            gst::ResourceError::Read,
            ("Device '{}' was disconnected while {}: {}", path, what, e)
        )
    } else {
        gst::error_msg!(
            gst::ResourceError::Settings,
            ("Failed {} on '{}': {}", what, path, e)
        )
    }
}

/// Allocating the buffers failed; exporting them is the usual culprit in `io-mode=dmabuf`.
pub(in crate::rustv4l2src) fn allocation_error(e: &v4l2::Error) -> gst::ErrorMessage {
    if e.call == "VIDIOC_EXPBUF" {
        gst::error_msg!(
            gst::ResourceError::Settings,
            (
                "Device '{}' cannot export its buffers as DMABUF for io-mode=dmabuf: {}. Use io-mode=mmap.",
                e.device.display(),
                e
            )
        )
    } else {
        device_error("allocating capture buffers", e)
    }
}

/// Caps the device cannot capture, or that the driver answered with something else.
pub(in crate::rustv4l2src) fn negotiation(
    path: &str,
    caps: &gst::Caps,
    reason: &str,
) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::CoreError::Negotiation,
        ("Device '{}' cannot capture {}: {}", path, caps, reason)
    )
}

/// The device went away (`reason`: what the kernel answered).
pub(in crate::rustv4l2src) fn disconnected(path: &str, reason: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::NotFound,
        (
            "Device '{}' was disconnected ({}). Reconnect it and restart the pipeline.",
            path,
            reason
        )
    )
}

/// Poll reported an error on the device; `dequeued` is what a dequeue then said.
pub(in crate::rustv4l2src) fn stream_failure(
    path: &str,
    dequeued: Result<(), v4l2::Error>,
) -> gst::ErrorMessage {
    match dequeued {
        Err(e) if e.is_disconnect() => disconnected(path, &e.to_string()),
        Err(e) => gst::error_msg!(
            gst::ResourceError::Read,
            (
                "Device '{}' failed its stream ({}): the driver stopped streaming. Restart the \
                 pipeline, or set reconnect=true to have the element restart the stream.",
                path,
                e
            )
        ),
        Ok(()) => gst::error_msg!(
            gst::ResourceError::Read,
            (
                "Device '{}' reported an error on its stream (the driver stopped streaming). \
                 Restart the pipeline, or set reconnect=true to have the element restart the \
                 stream.",
                path
            )
        ),
    }
}

/// The stream failed more often than a restart can help (`reconnect`).
pub(in crate::rustv4l2src) fn restarts_exhausted(
    path: &str,
    reason: &str,
    restarts: usize,
    within: std::time::Duration,
) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Read,
        (
            "Device '{}' failed its stream again ({}) after {} restarts within {} s; giving up.",
            path,
            reason,
            restarts,
            within.as_secs()
        )
    )
}

/// No frame within `timeout`.
pub(in crate::rustv4l2src) fn timed_out(path: &str, timeout_ms: u32) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Read,
        (
            "Device '{}' delivered no frame for {} ms (the 'timeout' property). Is the source connected and producing video?",
            path,
            timeout_ms
        )
    )
}

/// The source on a capture card's input has no picture, and `no-signal=error`.
pub(in crate::rustv4l2src) fn no_signal(path: &str, reason: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Read,
        (
            "The source on device '{}' has no usable signal ({}). Check the cable and the source, or set no-signal=gap to wait for it.",
            path,
            reason
        )
    )
}
