//! The io-modes beside `mmap` and `dmabuf`, as v4l2src has them: `userptr` (buffers the element
//! allocates, filled by the driver and lent as they are, `v4l2/userptr.rs`), `rw` (each frame
//! `read()` into a buffer of a system-memory pool: a copy by nature, `v4l2/read_io.rs`); what
//! each needs at allocation, and the capture of one frame by `read()`. `dmabuf-import` is
//! `import.rs`'s.

use super::capture::{Capture, Failure, fail};
use super::reading::Reading;
use super::session::Session;
use crate::caps;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::{IoMode, TimeoutAction};
use crate::rustv4l2src::face::stats::FrameCounts;
use crate::rustv4l2src::shared::{CAT, lock};
use crate::v4l2::{self, Device, Queue, Reader, Wait};
use gst::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// The queue for `mode` (`mmap`, `auto`, `dmabuf` or `userptr`): driver buffers mapped (and
/// exported for `dmabuf`), or memory of ours the driver fills (`userptr`), one allocation per
/// plane of the current format's `sizeimage`.
pub(super) fn allocate_queue(
    device: &Arc<Device>,
    count: u32,
    mode: IoMode,
) -> Result<Arc<Queue>, gst::ErrorMessage> {
    if mode != IoMode::Userptr {
        return Queue::allocate(Arc::clone(device), count, mode == IoMode::Dmabuf)
            .map_err(|e| errors::allocation_error(&e));
    }
    let refused = |e: &v4l2::Error| {
        gst::error_msg!(
            gst::ResourceError::Settings,
            (
                "Device '{}' cannot capture into memory of the element (io-mode=userptr): {}. Use io-mode=mmap.",
                device.path().display(),
                e
            )
        )
    };
    let format = device.g_fmt().map_err(|e| refused(&e))?;
    let sizes: Vec<u32> = format.planes.iter().map(|p| p.sizeimage).collect();
    Queue::allocate_userptr(Arc::clone(device), count, &sizes).map_err(|e| refused(&e))
}

impl Session {
    /// `io-mode=rw`: a second file on the device to `read()` frames from, once; the driver
    /// must say it supports `read()`, and vb2 reads single-plane formats only.
    pub(super) fn start_reading(&mut self) -> Result<(), gst::ErrorMessage> {
        let Some(device) = self.device().cloned() else {
            return Err(no_format());
        };
        let path = device.path().display().to_string();
        let stream = self.stream_mut().ok_or_else(no_format)?;
        if stream.reading.is_some() {
            return Ok(());
        }
        if !device.can_read() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Device '{}' does not support read() (no V4L2_CAP_READWRITE), which io-mode=rw needs. Use io-mode=mmap.",
                    path
                )
            ));
        }
        let format = device
            .g_fmt()
            .map_err(|e| errors::device_error("reading the format", &e))?;
        if format.planes.len() != 1 {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Device '{}' cannot read() format {} of {} memory planes (io-mode=rw reads one plane per frame). Use io-mode=mmap, or a single-plane format.",
                    path,
                    format.fourcc,
                    format.planes.len()
                )
            ));
        }
        let frame_size = format.planes[0].sizeimage;
        let reader = Reader::open(&device)
            .map_err(|e| errors::device_error("opening it again for read()", &e))?;
        stream.reading = Some(Reading {
            reader: Arc::new(reader),
            size: frame_size,
            pool: None,
            count: 0,
        });
        stream.readable_as_is = stream.framing.readable_as_is(&stream.info, false);
        stream.video_meta = false;
        gst::debug!(CAT, "{}: Reading frames of {} bytes", path, frame_size);
        Ok(())
    }
}

fn no_format() -> gst::ErrorMessage {
    gst::error_msg!(
        gst::CoreError::Negotiation,
        ("Allocation was asked for before caps were negotiated")
    )
}

/// A pool of system-memory buffers of `size` bytes, for frames read or copied.
fn system_pool(caps: &gst::Caps, size: u32) -> Result<gst::BufferPool, gst::FlowError> {
    let pool = gst::BufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(caps), size, 0, 0);
    pool.set_config(config).map_err(|_| gst::FlowError::Error)?;
    pool.set_active(true).map_err(|_| gst::FlowError::Error)?;
    Ok(pool)
}

impl Capture<'_> {
    /// `io-mode=rw`: waits for a frame and `read()`s it into a buffer of the stream's pool.
    pub(super) fn read_frame(&self, reader: &Reader) -> Result<gst::Buffer, Failure> {
        let knobs = self.knobs;
        let file = reader.file();
        let path = file.path().display().to_string();
        let pool = {
            let mut session = lock(self.session);
            let stream = session.stream_mut().ok_or(gst::FlowError::Flushing)?;
            let caps = stream.caps.clone();
            let reading = stream.reading.as_mut().ok_or(gst::FlowError::Flushing)?;
            match &reading.pool {
                Some(pool) => pool.clone(),
                None => {
                    let pool = system_pool(&caps, reading.size)?;
                    gst::info!(
                        gst::CAT_PERFORMANCE,
                        obj = self.element,
                        "io-mode=rw: every frame of '{}' is copied by read() into system memory",
                        path
                    );
                    reading.pool = Some(pool.clone());
                    pool
                }
            }
        };
        let mut buffer = pool.acquire_buffer(None)?;
        let timeout =
            (knobs.timeout_ms > 0).then(|| Duration::from_millis(knobs.timeout_ms.into()));
        loop {
            let waited = self.poller.wait(file, file.path(), timeout);
            match waited {
                // The reading file subscribes to no events: an event is nothing to read.
                Ok(Wait::Ready | Wait::Event | Wait::DeviceError) => {}
                Ok(Wait::Flushing) => return Err(gst::FlowError::Flushing.into()),
                Ok(Wait::TimedOut) if knobs.timeout_action == TimeoutAction::Eos => {
                    return Err(gst::FlowError::Eos.into());
                }
                Ok(Wait::TimedOut) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::timed_out(&path, knobs.timeout_ms),
                    ));
                }
                Err(e) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::device_error("waiting for a frame", &e),
                    ));
                }
            }
            let read = {
                let out = buffer.get_mut().ok_or(gst::FlowError::Error)?;
                let mut map = out.map_writable().map_err(|_| gst::FlowError::Error)?;
                reader.read(&mut map)
            };
            match read {
                Ok(Some(n)) => {
                    buffer.get_mut().ok_or(gst::FlowError::Error)?.set_size(n);
                    break;
                }
                Ok(None) if !matches!(waited, Ok(Wait::DeviceError)) => {}
                // Poll flagged an error and read() has none to tell: the driver stopped.
                Ok(None) => {
                    let msg = errors::stream_failure(&path, Ok(()));
                    return Err(fail(gst::FlowError::Error, msg));
                }
                Err(e) => {
                    let msg = errors::stream_failure(&path, Err(e.clone()));
                    if e.is_disconnect() {
                        lock(self.session).lose(msg.clone());
                        if knobs.reconnect {
                            return Err(Failure::lost(path, e.to_string()));
                        }
                    }
                    return Err(fail(gst::FlowError::Error, msg));
                }
            }
        }
        self.stamp_read(buffer)
    }

    /// Timestamps, offsets and meta of a frame read: the driver gives no capture time with
    /// `read()`, so the PTS is "now, less one frame period".
    fn stamp_read(&self, mut buffer: gst::Buffer) -> Result<gst::Buffer, Failure> {
        let mut session = lock(self.session);
        let Some(stream) = session.stream_mut() else {
            return Err(gst::FlowError::Flushing.into());
        };
        let (pts, age) = self.frame_time(stream, None);
        let reading = stream.reading.as_mut().ok_or(gst::FlowError::Flushing)?;
        let offset = reading.count;
        reading.count += 1;
        {
            let out = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            out.set_pts(pts);
            out.set_duration(stream.frame_duration);
            out.set_offset(offset);
            out.set_offset_end(offset.saturating_add(1));
            if let caps::Framing::Bayer { .. } = stream.framing
                && let Some(rows) = caps::picture_bytes(&stream.framing, out.size())
            {
                out.set_size(rows);
            }
        }
        if !stream.readable_as_is {
            // The driver's strides are not GStreamer's and read() gives no room for a meta
            // that downstream does not read anyway: a second copy, into the default layout.
            buffer = super::lend::copy_out(
                buffer,
                &stream.info,
                &stream.framing,
                &stream.caps,
                &mut stream.copy_pool,
            )?;
        }
        drop(session);
        let counts = FrameCounts {
            lost: 0,
            dropped: 0,
            corrupted: 0,
            copied: true,
            refused: 0,
        };
        lock(self.stats).record(&counts, age);
        gst::trace!(
            CAT,
            obj = self.element,
            "Read frame {} pts {}",
            offset,
            pts.display()
        );
        Ok(buffer)
    }
}
