//! The capture loop: wait for a frame, dequeue it, and wrap it as a GstBuffer without copying,
//! with its timestamps, offsets, flags and meta. Takes the session's lock twice per frame, for
//! a moment each, and never while waiting; posts to the bus only after letting go of it. With
//! `reconnect`, a device that goes away is not an error but a `Captured::Lost` for the element
//! to act on (`reconnect.rs`).

use super::lend;
use super::session::{Session, Stream};
use super::timeline::{self, StampPoint};
use crate::caps;
use crate::rustv4l2src::face::errors;
use crate::rustv4l2src::face::settings::TimeoutAction;
use crate::rustv4l2src::face::stats::{FrameCounts, Stats};
use crate::rustv4l2src::shared::{CAT, lock};
use crate::v4l2::{self, Device, Poller, Queue, Wait};
use gst::prelude::*;
use std::borrow::Borrow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The settings one frame request reads, copied out of the element's settings.
#[derive(Debug, Clone, Copy)]
pub(in crate::rustv4l2src) struct Knobs {
    pub timeout_ms: u32,
    pub timeout_action: TimeoutAction,
    pub copy_threshold: u32,
    pub low_latency: bool,
    pub reconnect: bool,
}

/// What a frame request gave.
pub(in crate::rustv4l2src) enum Captured {
    Buffer(gst::Buffer),
    /// The device went away (only with `reconnect`): the session is `Lost`, nothing was
    /// posted. `reason` says what the kernel answered.
    Lost {
        path: String,
        reason: String,
    },
    /// The driver says the source on its input changed (a capture card's resolution or
    /// signal): the stream goes on as it was until the element looks (`signal.rs`).
    SourceChanged,
    /// The source has no signal (`signal.rs` waits for it); nothing was posted.
    NoSignal,
    /// The driver declared the stream failed while the device is still there (only with
    /// `reconnect`): the session still holds the stream, nothing was posted (`restart.rs`).
    StreamFailed {
        path: String,
        reason: String,
    },
}

/// What the loop needs of the element.
pub(in crate::rustv4l2src) struct Capture<'a> {
    pub element: &'a gst::Element,
    pub session: &'a Mutex<Session>,
    pub stats: &'a Mutex<Stats>,
    pub poller: Arc<Poller>,
    pub knobs: Knobs,
}

/// How a frame request failed: the flow return, and what to post once no lock is held.
pub(super) struct Failure {
    flow: gst::FlowError,
    error: Option<gst::ErrorMessage>,
    /// Not an error after all: what the element is told instead.
    instead: Option<Instead>,
}

/// What ended a frame request without a frame or an error.
enum Instead {
    /// The device went away and `reconnect` is on: the path and the reason (boxed: a rare case
    /// that should not make every failure bigger).
    Lost(Box<(String, String)>),
    SourceChanged,
    NoSignal,
    /// The stream failed and `reconnect` is on: the path and the reason (boxed as `Lost`).
    StreamFailed(Box<(String, String)>),
}

impl From<gst::FlowError> for Failure {
    fn from(flow: gst::FlowError) -> Self {
        Failure {
            flow,
            error: None,
            instead: None,
        }
    }
}

impl From<Instead> for Failure {
    fn from(instead: Instead) -> Self {
        Failure {
            flow: gst::FlowError::Flushing,
            error: None,
            instead: Some(instead),
        }
    }
}

pub(super) fn fail(flow: gst::FlowError, error: gst::ErrorMessage) -> Failure {
    Failure {
        flow,
        error: Some(error),
        instead: None,
    }
}

impl Failure {
    /// The device at `path` went away, as `reason` says, and `reconnect` is on.
    pub(super) fn lost(path: String, reason: String) -> Failure {
        Instead::Lost(Box::new((path, reason))).into()
    }
}

/// The frames one frame request gave back to the driver instead of pushing them. It lives in
/// `run`'s frame and is lent to the steps that fill and read it: the arrays are half a
/// kilobyte, which moving a result through each step copied several times per frame.
struct Returned {
    /// Sequence numbers of frames flagged corrupt and given back meanwhile.
    corrupted: GivenBack,
    /// Sequence numbers of older frames `low-latency` gave back for the one pushed.
    skipped: GivenBack,
}

/// Sequence numbers of frames given back in one frame request, kept without allocating: as
/// many as V4L2 has buffers at most; past that (a driver flagging frame after frame corrupt)
/// only counted, and the sequence jump then reads as frames lost.
pub(super) struct GivenBack {
    sequences: [u32; GivenBack::CAPACITY],
    kept: usize,
    pub count: u64,
}

impl GivenBack {
    /// VIDEO_MAX_FRAME: the most buffers a V4L2 queue has.
    const CAPACITY: usize = 64;

    pub(super) fn new() -> Self {
        GivenBack {
            sequences: [0; GivenBack::CAPACITY],
            kept: 0,
            count: 0,
        }
    }

    pub(super) fn push(&mut self, sequence: u32) {
        if let Some(slot) = self.sequences.get_mut(self.kept) {
            *slot = sequence;
            self.kept += 1;
        }
        self.count = self.count.saturating_add(1);
    }

    fn as_slice(&self) -> &[u32] {
        &self.sequences[..self.kept]
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Capture<'_> {
    /// Waits for the next frame and wraps it as a GstBuffer.
    pub fn next_buffer(&self) -> Result<Captured, gst::FlowError> {
        match self.run() {
            Ok(buffer) => Ok(Captured::Buffer(buffer)),
            Err(Failure {
                instead: Some(instead),
                ..
            }) => Ok(match instead {
                Instead::Lost(lost) => {
                    let (path, reason) = *lost;
                    Captured::Lost { path, reason }
                }
                Instead::SourceChanged => Captured::SourceChanged,
                Instead::NoSignal => Captured::NoSignal,
                Instead::StreamFailed(failed) => {
                    let (path, reason) = *failed;
                    Captured::StreamFailed { path, reason }
                }
            }),
            Err(failure) => {
                if let Some(msg) = failure.error {
                    self.element.post_error_message(msg);
                }
                Err(failure.flow)
            }
        }
    }

    /// The device went away, as `e` says: the session lets go of it, and the failure is an
    /// error, or with `reconnect` a loss for the element to wait out.
    pub(super) fn disconnected(&self, device: &Device, e: v4l2::Error) -> Failure {
        let path = self.path(device).into_owned();
        let reason = e.to_string();
        let msg = errors::disconnected(&path, &reason);
        lock(self.session).lose(msg.clone());
        if self.knobs.reconnect {
            Failure::lost(path, reason)
        } else {
            fail(gst::FlowError::Error, msg)
        }
    }

    /// The driver failed the stream (`e`: what a dequeue answered; `None`: poll said
    /// POLLERR and a dequeue found nothing wrong). A device that went away meanwhile (a USB
    /// camera's queue fails as it is unplugged, before its node goes) is a disconnect; else,
    /// with `reconnect`, a restart for the element to do, and without it the error.
    pub(super) fn stream_failed(&self, device: &Device, e: Option<v4l2::Error>) -> Failure {
        if device.is_disconnected() {
            let e = e.unwrap_or_else(|| {
                v4l2::Error::new("VIDIOC_QUERYCAP", device.path(), nix::errno::Errno::ENODEV)
            });
            return self.disconnected(device, e);
        }
        let path = self.path(device).into_owned();
        let reason = match &e {
            Some(e) => e.to_string(),
            None => "poll reported an error on the device".to_string(),
        };
        if self.knobs.reconnect {
            return Instead::StreamFailed(Box::new((path, reason))).into();
        }
        let msg = errors::stream_failure(&path, e.map_or(Ok(()), Err));
        lock(self.session).lose(msg.clone());
        fail(gst::FlowError::Error, msg)
    }

    fn run(&self) -> Result<gst::Buffer, Failure> {
        let queue = {
            let mut session = lock(self.session);
            if session.signal_absent() {
                return Err(Instead::NoSignal.into());
            }
            // io-mode=rw reads frames instead of streaming them.
            if let Some(reader) = session
                .stream()
                .and_then(|s| Some(Arc::clone(&s.reading.as_ref()?.reader)))
            {
                drop(session);
                return self.read_frame(&reader);
            }
            // io-mode=dmabuf-import captures into downstream's buffers.
            if session.stream().is_some_and(|s| s.import.is_some()) {
                drop(session);
                return self.import_frame();
            }
            match session.stream_on() {
                Ok(queue) => queue,
                Err(msg) => {
                    let device = session.device().cloned();
                    drop(session);
                    // Unplugged as the stream starts: a loss like any other.
                    if let Some(device) = device.filter(|d| d.is_disconnected()) {
                        let e = v4l2::Error::new(
                            "VIDIOC_STREAMON",
                            device.path(),
                            nix::errno::Errno::ENODEV,
                        );
                        return Err(self.disconnected(&device, e));
                    }
                    return Err(fail(gst::FlowError::NotNegotiated, msg));
                }
            }
        };
        let mut returned = Returned {
            corrupted: GivenBack::new(),
            skipped: GivenBack::new(),
        };
        let frame = self.wait_and_dequeue(&queue, &mut returned)?;
        self.wrap(&queue, frame, &returned)
    }

    pub(super) fn path<'d>(&self, device: &'d Device) -> std::borrow::Cow<'d, str> {
        device.path().to_string_lossy()
    }

    /// Polls until the device has a frame ready. A driver error found on the way is asked
    /// about with `dequeue` (whose error says what happened) and ends the stream.
    pub(super) fn wait_ready(
        &self,
        device: &Device,
        dequeue: impl Fn() -> v4l2::Result<()>,
    ) -> Result<(), Failure> {
        let knobs = self.knobs;
        let timeout =
            (knobs.timeout_ms > 0).then(|| Duration::from_millis(knobs.timeout_ms.into()));
        loop {
            match self.poller.wait(device, device.path(), timeout) {
                Ok(Wait::Ready) => return Ok(()),
                Ok(Wait::Event) => {
                    if self.source_changed(device)? {
                        return Err(Instead::SourceChanged.into());
                    }
                }
                Ok(Wait::Flushing) => return Err(gst::FlowError::Flushing.into()),
                Ok(Wait::TimedOut) if knobs.timeout_action == TimeoutAction::Eos => {
                    gst::info!(
                        CAT,
                        obj = self.element,
                        "No frame for {} ms: ending the stream",
                        knobs.timeout_ms
                    );
                    return Err(gst::FlowError::Eos.into());
                }
                Ok(Wait::TimedOut) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::timed_out(&self.path(device), knobs.timeout_ms),
                    ));
                }
                Ok(Wait::DeviceError) => {
                    return Err(match dequeue() {
                        Err(e) if e.is_disconnect() => self.disconnected(device, e),
                        dequeued => self.stream_failed(device, dequeued.err()),
                    });
                }
                Err(e) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::device_error("waiting for a frame", &e),
                    ));
                }
            }
        }
    }

    /// Waits and dequeues (with `dequeue`) until a frame the driver did not flag corrupt comes.
    /// A corrupt one goes to `corrupt`, which gives it back to the driver: better no picture
    /// than a broken one.
    pub(super) fn next_good<F: Borrow<v4l2::Dequeued>>(
        &self,
        device: &Device,
        dequeue: impl Fn() -> v4l2::Result<Option<F>>,
        mut corrupt: impl FnMut(F) -> Result<(), Failure>,
    ) -> Result<F, Failure> {
        loop {
            self.wait_ready(device, || dequeue().map(|_| ()))?;
            match dequeue() {
                Ok(Some(frame)) if frame.borrow().is_error() => {
                    gst::debug!(
                        CAT,
                        obj = self.element,
                        "Dropping frame {} flagged as error",
                        frame.borrow().sequence
                    );
                    corrupt(frame)?;
                }
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) if e.is_disconnect() => return Err(self.disconnected(device, e)),
                Err(e) if e.is_stream_failure() => return Err(self.stream_failed(device, Some(e))),
                Err(e) => {
                    return Err(fail(
                        gst::FlowError::Error,
                        errors::device_error("dequeuing a frame", &e),
                    ));
                }
            }
        }
    }

    /// Polls until a good frame is dequeued, giving corrupt ones back; with `low-latency`,
    /// takes the newest of those ready. What it gives back is noted in `returned`.
    fn wait_and_dequeue(
        &self,
        queue: &Arc<Queue>,
        returned: &mut Returned,
    ) -> Result<v4l2::Taken, Failure> {
        let device = queue.device();
        let Returned { corrupted, skipped } = returned;
        let mut frame = self.next_good(
            device,
            || queue.dequeue(),
            |frame| {
                corrupted.push(frame.sequence);
                self.give_back(frame);
                Ok(())
            },
        )?;
        // low-latency: newer frames may be ready already; push the newest, give the rest back.
        if self.knobs.low_latency {
            while let Ok(Some(newer)) = queue.dequeue() {
                let older = if newer.is_error() {
                    corrupted.push(newer.sequence);
                    newer
                } else {
                    skipped.push(frame.sequence);
                    std::mem::replace(&mut frame, newer)
                };
                self.give_back(older);
            }
        }
        Ok(frame)
    }

    /// Reads the driver's pending events: whether one says the source changed.
    fn source_changed(&self, device: &Device) -> Result<bool, Failure> {
        match device.drain_source_changes() {
            Ok(changes) => {
                for change in &changes {
                    gst::debug!(CAT, obj = self.element, "Source change: {:?}", change);
                }
                Ok(changes.iter().any(|change| change.resolution))
            }
            Err(e) if e.is_disconnect() => Err(self.disconnected(device, e)),
            Err(e) => Err(fail(
                gst::FlowError::Error,
                errors::device_error("reading the device's events", &e),
            )),
        }
    }

    /// Re-queues a frame that is not pushed (a reread goes back with its holder). A refusal is
    /// counted by the queue, as a drop hook's is, and reported with the next frame.
    fn give_back(&self, frame: v4l2::Taken) {
        if let Err(e) = frame.requeue() {
            gst::warning!(CAT, obj = self.element, "Re-queuing a skipped frame: {}", e);
        }
    }

    /// The PTS of a frame and its age now, from the driver's `stamp` of it (see
    /// [`driver_stamp`]); without one, the frame is taken as complete now.
    pub(super) fn frame_time(
        &self,
        stream: &mut Stream,
        stamp: Option<(Duration, StampPoint)>,
    ) -> (Option<gst::ClockTime>, Option<gst::ClockTime>) {
        let (Some(clock), Some(base_time)) = (self.element.clock(), self.element.base_time())
        else {
            return (None, None);
        };
        let monotonic = match &stream.clock_kind {
            Some((known, monotonic)) if *known == clock => *monotonic,
            _ => {
                let monotonic = timeline::reads_monotonic(&clock);
                stream.clock_kind = Some((clock.clone(), monotonic));
                monotonic
            }
        };
        let t = timeline::frame_time(
            &clock,
            monotonic,
            base_time,
            stamp,
            stream.frame_duration,
            v4l2::device::monotonic_now,
        );
        (Some(stream.pts.next(t.pts)), Some(t.age))
    }

    /// Frames lost before frame `sequence`: gaps in the driver's numbering, less those given
    /// back meanwhile (`corrupted`, `skipped`), which are counted as what they are.
    pub(super) fn lost_before(
        &self,
        stream: &mut Stream,
        corrupted: &GivenBack,
        skipped: &GivenBack,
        sequence: u32,
    ) -> u64 {
        let lost = if corrupted.is_empty() && skipped.is_empty() {
            u64::from(stream.sequence.note(sequence))
        } else {
            let mut seen = [0u32; 2 * GivenBack::CAPACITY + 1];
            let mut n = 0;
            for (slot, &seq) in seen.iter_mut().zip(
                corrupted
                    .as_slice()
                    .iter()
                    .chain(skipped.as_slice())
                    .chain(&[sequence]),
            ) {
                *slot = seq;
                n += 1;
            }
            stream.sequence.note_all(&mut seen[..n], sequence)
        };
        if lost > 0 {
            gst::warning!(
                CAT,
                obj = self.element,
                "Lost {} frames (driver sequence jumped to {})",
                lost,
                sequence
            );
        }
        lost
    }

    /// Counts a frame pushed (or about to be) and tells the bus what went wrong on the way:
    /// buffers the driver refused back, frames lost (a QoS message).
    pub(super) fn report(
        &self,
        device: &Device,
        counts: &FrameCounts,
        age: Option<gst::ClockTime>,
        sequence: u32,
        (pts, duration): (Option<gst::ClockTime>, Option<gst::ClockTime>),
    ) {
        // The warning goes on the bus before the count goes up: whoever reads a refusal in
        // `stats` finds its warning already posted.
        if counts.refused > 0 {
            gst::element_warning!(
                self.element,
                gst::ResourceError::Read,
                (
                    "Device '{}' refused {} buffer(s) back (VIDIOC_QBUF failed): it has fewer \
                     buffers to capture into until the stream restarts.",
                    self.path(device),
                    counts.refused
                )
            );
        }
        let (captured, lost_total) = lock(self.stats).record(counts, age);
        if counts.lost > 0 {
            let msg = gst::message::Qos::builder(true)
                .running_time(pts)
                .timestamp(pts)
                .duration(duration)
                .stats(
                    gst::format::Buffers::from_u64(captured),
                    gst::format::Buffers::from_u64(lost_total),
                )
                .src(self.element)
                .build();
            let _ = self.element.post_message(msg);
        }
        gst::trace!(
            CAT,
            obj = self.element,
            "Frame {} pts {}",
            sequence,
            pts.display()
        );
    }

    /// Wraps a dequeued frame, without copying where downstream can read it as it is.
    fn wrap(
        &self,
        queue: &Arc<Queue>,
        frame: v4l2::Taken,
        returned: &Returned,
    ) -> Result<gst::Buffer, Failure> {
        let Returned { corrupted, skipped } = returned;
        let sequence = frame.sequence;
        let mut session = lock(self.session);
        let Session::Streaming(_, stream) = &mut *session else {
            // Stopped or rebuilt meanwhile: the frame belongs to an ended stream, and dropping
            // its token gives it back to nobody.
            drop(session);
            drop(frame);
            return Err(gst::FlowError::Flushing.into());
        };
        let duration = stream.frame_duration;
        let (pts, age) = self.frame_time(stream, driver_stamp(&frame));
        let lost = self.lost_before(stream, corrupted, skipped, sequence);

        // Lending this frame would leave the driver too few buffers to fill: downstream holds
        // the rest. Copy it and give the driver its buffer back at once instead of stalling.
        let starved = (queue.queued() as u64) < u64::from(self.knobs.copy_threshold);
        if matches!(frame, v4l2::Taken::Reread(_)) && !stream.driver_overwrites {
            stream.driver_overwrites = true;
            gst::info!(
                CAT,
                obj = self.element,
                "{}: the driver handed over a buffer downstream still holds; copying every \
                 frame from now on",
                self.path(queue.device())
            );
        }
        let why_copy = match &frame {
            v4l2::Taken::Reread(_) => Some(CopyReason::Reread),
            _ if stream.driver_overwrites => Some(CopyReason::Overwrites),
            _ if !stream.readable_as_is => Some(CopyReason::Stride),
            _ if starved => Some(CopyReason::Starved),
            _ => None,
        };
        let scan_later = matches!(frame, v4l2::Taken::Reread(_));
        let keyframe = match (&stream.framing, &frame) {
            (_, v4l2::Taken::Reread(_)) => false,
            (
                caps::Framing::Compressed {
                    syntax: Some(syntax),
                    ..
                },
                v4l2::Taken::Frame(frame),
            ) if !frame.has_frame_type() => syntax.is_keyframe(frame.plane(0)).unwrap_or(false),
            (_, frame) => frame.is_keyframe(),
        };
        let (field, offset) = (frame.field, stream.sequence.offset(sequence));
        let copied = why_copy.is_some();
        let mut buffer = match (&stream.pool, frame) {
            // The driver buffer's own GstBuffer, made once and recycled: nothing allocated.
            (Some(pool), v4l2::Taken::Frame(frame)) if !copied => {
                pool.lend(frame).map_err(|e| {
                    fail(
                        gst::FlowError::Error,
                        gst::error_msg!(
                            gst::ResourceError::Read,
                            (
                                "Could not hand a frame of '{}' downstream: {}.{}",
                                self.path(queue.device()),
                                e,
                                if pool.is_dmabuf() {
                                    " Use io-mode=mmap."
                                } else {
                                    ""
                                }
                            )
                        ),
                    )
                })?
            }
            // A frame about to be copied is read through the mapping, in either io-mode, and
            // goes back to the driver once copied.
            (_, v4l2::Taken::Frame(frame)) => lend::wrap_for_copy(frame)?,
            (_, v4l2::Taken::Reread(reread)) => lend::wrap_reread(&reread)?,
        };
        decorate(
            buffer.get_mut().ok_or(gst::FlowError::Error)?,
            stream,
            Decoration {
                field,
                keyframe,
                pts,
                offset,
            },
        )?;
        if let Some(why) = why_copy {
            gst::debug!(
                gst::CAT_PERFORMANCE,
                obj = self.element,
                "Copying frame {}: {}",
                sequence,
                why.says()
            );
            buffer = lend::copy_out(
                buffer,
                &stream.info,
                &stream.framing,
                &stream.caps,
                &mut stream.copy_pool,
            )?;
        }
        if scan_later {
            mark_keyframe_from_bytes(
                buffer.get_mut().ok_or(gst::FlowError::Error)?,
                &stream.framing,
            )?;
        }
        // Buffers the driver refused back since the last frame, from the drop hooks too.
        let refused = queue
            .counters
            .requeue_failures
            .load(std::sync::atomic::Ordering::Relaxed);
        let new_refusals = refused.saturating_sub(stream.refusals_seen);
        stream.refusals_seen = refused;
        drop(session);

        let counts = FrameCounts {
            lost,
            dropped: skipped.count,
            corrupted: corrupted.count,
            copied,
            refused: new_refusals,
        };
        self.report(queue.device(), &counts, age, sequence, (pts, duration));
        Ok(buffer)
    }
}

/// What a frame's GstBuffer says of it besides its memory.
pub(super) struct Decoration {
    /// The driver's `v4l2_field`.
    pub field: u32,
    pub keyframe: bool,
    pub pts: Option<gst::ClockTime>,
    /// The frame's number in the stream.
    pub offset: u64,
}

/// Why a frame goes downstream as a copy instead of the driver's own buffer.
#[derive(Debug, Clone, Copy)]
enum CopyReason {
    /// Downstream cannot read the driver's line layout (no GstVideoMeta).
    Stride,
    /// Lending would leave the driver fewer buffers than `copy-threshold`.
    Starved,
    /// The driver handed over a buffer downstream still holds (v4l2loopback).
    Reread,
    /// The driver did so before in this stream: it writes buffers it has handed out.
    Overwrites,
}

impl CopyReason {
    fn says(self) -> &'static str {
        match self {
            CopyReason::Stride => {
                "device stride differs from what downstream reads (no GstVideoMeta)"
            }
            CopyReason::Starved => "downstream holds too many driver buffers",
            CopyReason::Reread => {
                "the driver handed over again a buffer downstream still holds (v4l2loopback \
                 does: its writer fills buffers whoever holds them)"
            }
            CopyReason::Overwrites => {
                "the driver writes buffers it has handed out (it handed one over twice)"
            }
        }
    }
}

/// For a frame whose bytes could be read only once copied (a reread): whether it is a key
/// frame, from the copy, for formats whose syntax says.
fn mark_keyframe_from_bytes(
    buffer: &mut gst::BufferRef,
    framing: &caps::Framing,
) -> Result<(), gst::FlowError> {
    let caps::Framing::Compressed {
        syntax: Some(syntax),
        ..
    } = framing
    else {
        return Ok(());
    };
    let keyframe = {
        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
        syntax.is_keyframe(&map).unwrap_or(false)
    };
    if framing.is_delta_unit(keyframe) {
        buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
    } else {
        buffer.unset_flags(gst::BufferFlags::DELTA_UNIT);
    }
    Ok(())
}

/// Flags, timestamps, offsets and meta of a frame of `stream`, whose memories are the
/// driver's `bytesused` of each plane: for compressed formats the size of this one image or
/// access unit, not the buffer's capacity.
pub(super) fn decorate(
    buffer: &mut gst::BufferRef,
    stream: &Stream,
    frame: Decoration,
) -> Result<(), gst::FlowError> {
    match stream.framing {
        caps::Framing::Video(l) => {
            if stream.needs_video_meta {
                let offsets = caps::meta_offsets(&l, buffer.iter_memories().map(|m| m.size()));
                lend::set_video_meta(
                    buffer,
                    &stream.info,
                    &offsets[..l.n_planes],
                    &l.strides[..l.n_planes],
                )?;
            }
            buffer.set_flags(caps::field_flags(frame.field, stream.info.field_order()));
        }
        caps::Framing::Bayer { .. } => {
            if let Some(rows) = caps::picture_bytes(&stream.framing, buffer.size()) {
                buffer.set_size(rows);
            }
        }
        caps::Framing::Compressed { .. } => {
            if stream.framing.is_delta_unit(frame.keyframe) {
                buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
    }
    buffer.set_pts(frame.pts);
    buffer.set_duration(stream.frame_duration);
    buffer.set_offset(frame.offset);
    buffer.set_offset_end(frame.offset.saturating_add(1));
    Ok(())
}

/// The driver's capture time of `frame` and what it marks, when it is on the monotonic clock
/// (the only one the element can relate to its own).
pub(super) fn driver_stamp(frame: &v4l2::Dequeued) -> Option<(Duration, StampPoint)> {
    frame.has_monotonic_timestamp().then(|| {
        let point = if frame.stamped_at_start() {
            StampPoint::StartOfExposure
        } else {
            StampPoint::EndOfFrame
        };
        (frame.timestamp, point)
    })
}
