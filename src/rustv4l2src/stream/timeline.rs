//! When a captured frame happened and where it stands in the stream: its PTS, its age, what a
//! gap in the driver's sequence numbers means, and the latency the element reports. Plain
//! functions and small state that the capture loop feeds; nothing here reads the device or
//! takes an element lock, so all of it is unit-tested.
//!
//! A frame's PTS is the running time at which its capture *began*, GStreamer's convention for
//! capture. Drivers stamp either the end of a frame (`V4L2_BUF_FLAG_TSTAMP_SRC_EOF`: vivid, most
//! CSI and PCI drivers) or the start of its exposure (`SOE`: UVC); an end-of-frame stamp is
//! moved back by one frame duration, so video lines up with audio captured beside it.

use gst::prelude::*;
use std::time::Duration;

/// Longer than any frame plausibly waits between capture and dequeue.
pub(super) const MAX_PLAUSIBLE_AGE: gst::ClockTime = gst::ClockTime::from_seconds(2);

/// Which moment of a frame's capture the driver's timestamp marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StampPoint {
    EndOfFrame,
    StartOfExposure,
}

/// How long ago a frame's capture began, from its driver timestamp (`stamp`, CLOCK_MONOTONIC, or
/// `None` when the driver gives none usable) and CLOCK_MONOTONIC now.
pub(super) fn frame_age(
    stamp: Option<(Duration, StampPoint)>,
    mono_now: Duration,
    duration: Option<gst::ClockTime>,
) -> gst::ClockTime {
    let frame = duration.unwrap_or_default();
    let Some((stamp, point)) = stamp else {
        // No usable driver timestamp: the frame ended about now, so it began a frame ago.
        return frame;
    };
    let stamp = clock_time(stamp);
    let start = match point {
        StampPoint::EndOfFrame => stamp.saturating_sub(frame),
        StampPoint::StartOfExposure => stamp,
    };
    let now = clock_time(mono_now);
    if start <= now && now - start < MAX_PLAUSIBLE_AGE {
        now - start
    } else if start > now && start - now < MAX_PLAUSIBLE_AGE {
        // vivid stamps the ideal frame time, which can lie a little ahead of the clock when
        // its thread runs early: a frame from just now.
        gst::ClockTime::ZERO
    } else {
        // From the far future or older than any frame can wait: a driver bug or a wrap
        // (vivid's "Wrap Timestamp"). Don't trust it.
        frame
    }
}

/// `d` as a ClockTime, saturating at the largest one (u64::MAX nanoseconds means "none").
fn clock_time(d: Duration) -> gst::ClockTime {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    gst::ClockTime::from_nseconds(ns.min(gst::ClockTime::MAX.nseconds()))
}

/// A frame's PTS and age as the pipeline clock sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameTime {
    pub pts: gst::ClockTime,
    pub age: gst::ClockTime,
}

/// The running time at which a frame's capture began. The age is measured on CLOCK_MONOTONIC,
/// the driver's clock; an age is the same on any clock, so it is subtracted from the pipeline
/// clock's now, whatever that clock is (system, network, PTP, a test clock). `clock_monotonic`
/// says the pipeline clock itself reads CLOCK_MONOTONIC, which saves a second clock read.
pub(super) fn frame_time(
    clock: &gst::Clock,
    clock_monotonic: bool,
    base_time: gst::ClockTime,
    stamp: Option<(Duration, StampPoint)>,
    duration: Option<gst::ClockTime>,
    mono_now: impl FnOnce() -> Duration,
) -> FrameTime {
    let now = clock.time();
    let mono = if clock_monotonic {
        Duration::from_nanos(now.nseconds())
    } else {
        mono_now()
    };
    let age = frame_age(stamp, mono, duration);
    FrameTime {
        pts: now.saturating_sub(age).saturating_sub(base_time),
        age,
    }
}

/// Whether `clock` reads CLOCK_MONOTONIC: a GstSystemClock of that type. Asked once per clock:
/// reading a property by name takes GLib's global pspec lock.
pub(super) fn reads_monotonic(clock: &gst::Clock) -> bool {
    clock
        .downcast_ref::<gst::SystemClock>()
        .is_some_and(|c| c.property::<gst::ClockType>("clock-type") == gst::ClockType::Monotonic)
}

/// Keeps the PTS of one stream strictly increasing, as downstream expects: frames that waited
/// in the driver since before PLAYING all map to running time 0 (v4l2loopback hands over its
/// writer's latest frames at once).
#[derive(Debug, Default)]
pub(in crate::rustv4l2src) struct Increasing {
    last: Option<gst::ClockTime>,
}

impl Increasing {
    pub fn next(&mut self, pts: gst::ClockTime) -> gst::ClockTime {
        let pts = match self.last {
            Some(last) if pts <= last => last.saturating_add(gst::ClockTime::from_nseconds(1)),
            _ => pts,
        };
        self.last = Some(pts);
        pts
    }

    /// After a flush the running time may start again from 0 (a flushing seek resets it).
    pub fn forget(&mut self) {
        self.last = None;
    }

    /// The last PTS given out.
    pub fn last(&self) -> Option<gst::ClockTime> {
        self.last
    }

    /// Makes every later PTS come after `floor`: what an earlier stream (before a reconnect)
    /// and the GAP events since pushed.
    pub fn raise_to(&mut self, floor: gst::ClockTime) {
        self.last = Some(self.last.map_or(floor, |last| last.max(floor)));
    }
}

/// How far behind the running time the GAP events may fall (the pipeline was paused, the
/// thread was late) before they start again from now rather than catch up in a burst.
const MAX_GAPS_BEHIND: u64 = 4;

/// The GAP events sent while the device is away: back to back from where the last frame
/// ended, one frame duration each, each sent once its time has passed in running time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::rustv4l2src) struct Gaps {
    next: gst::ClockTime,
    duration: gst::ClockTime,
}

/// What to do at some running time while the device is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::rustv4l2src) enum GapStep {
    /// Send a GAP event starting at this time, one duration long.
    Push(gst::ClockTime),
    /// Nothing is due yet: the next one is due in this much (running) time.
    Wait(gst::ClockTime),
}

impl Gaps {
    /// GAP events from `from` (where the last frame ended), `duration` each.
    pub fn new(from: gst::ClockTime, duration: gst::ClockTime) -> Gaps {
        Gaps {
            next: from,
            duration: duration.max(gst::ClockTime::from_nseconds(1)),
        }
    }

    pub fn duration(&self) -> gst::ClockTime {
        self.duration
    }

    /// The next GAP event at running time `now`, or how long until it is due.
    pub fn step(&mut self, now: gst::ClockTime) -> GapStep {
        let end = self.next.saturating_add(self.duration);
        if now < end {
            return GapStep::Wait(end - now);
        }
        let behind = now - end;
        if behind.nseconds() / self.duration.nseconds() >= MAX_GAPS_BEHIND {
            self.next = self.next.max(now.saturating_sub(self.duration));
        }
        let ts = self.next;
        self.next = self.next.saturating_add(self.duration);
        GapStep::Push(ts)
    }
}

/// The element's running time now, once it has a clock and a base time.
pub(in crate::rustv4l2src) fn running_time(element: &gst_base::BaseSrc) -> Option<gst::ClockTime> {
    use gst::prelude::*;
    let clock = element.clock()?;
    let base_time = element.base_time()?;
    Some(clock.time().saturating_sub(base_time))
}

/// Pushes a GAP event for `duration` from `ts`. Before the first frame (no picture yet at
/// start) the base class has sent no segment, which it sends with the first buffer: the one
/// it will send goes first, as downstream needs a segment before a GAP, and after the caps.
pub(in crate::rustv4l2src) fn push_gap(
    element: &gst_base::BaseSrc,
    ts: gst::ClockTime,
    duration: gst::ClockTime,
) {
    use gst::prelude::*;
    use gst_base::prelude::*;
    let pad = element.src_pad();
    if pad.sticky_event::<gst::event::Segment>(0).is_none() {
        let segment = element.segment();
        let _ = pad.push_event(gst::event::Segment::new(&segment));
    }
    let _ = pad.push_event(gst::event::Gap::builder(ts).duration(duration).build());
}

/// The GAP events (or frames standing in for them) while there is no picture: from where the
/// last frame ended, else the first at once (it ends now), one `frame_duration` (else
/// `default`) each; none before downstream has caps (a GAP would come before them) or the
/// element a clock.
pub(in crate::rustv4l2src) fn gaps_after(
    element: &gst_base::BaseSrc,
    last_pts: Option<gst::ClockTime>,
    frame_duration: Option<gst::ClockTime>,
    default: gst::ClockTime,
) -> Option<Gaps> {
    use gst_base::prelude::*;
    element.src_pad().current_caps()?;
    let duration = frame_duration.unwrap_or(default);
    let from = match last_pts {
        Some(pts) => pts.saturating_add(duration),
        None => running_time(element)?.saturating_sub(duration),
    };
    Some(Gaps::new(from, duration))
}

/// Frames missing between two driver sequence numbers, across the u32 wrap. A jump backwards
/// (a driver restarting its count) is not a loss.
pub(super) fn sequence_gap(last: u32, sequence: u32) -> u32 {
    let gap = sequence.wrapping_sub(last).wrapping_sub(1);
    if gap < u32::MAX / 2 { gap } else { 0 }
}

/// The driver's sequence numbers of one stream, made into an ever-growing buffer OFFSET, and
/// the frames lost between them.
#[derive(Debug, Default)]
pub(in crate::rustv4l2src) struct Sequence {
    last: Option<u32>,
    /// 2^32 times the number of times the driver's count wrapped.
    epoch: u64,
}

impl Sequence {
    /// Notes one sequence number; returns how many frames the driver skipped before it.
    pub fn note(&mut self, sequence: u32) -> u32 {
        let gap = self.last.map_or(0, |last| sequence_gap(last, sequence));
        if self
            .last
            .is_some_and(|last| sequence < last && sequence.wrapping_sub(last) < u32::MAX / 2)
        {
            self.epoch = self.epoch.saturating_add(1 << 32);
        }
        self.last = Some(sequence);
        gap
    }

    /// Notes every frame dequeued in one pass (the pushed one, and those dropped or found
    /// corrupt beside it), oldest first; returns the frames lost between them.
    pub fn note_all(&mut self, seen: &mut [u32], pushed: u32) -> u64 {
        // Oldest first even across the wrap: order by distance from a point well before `pushed`.
        seen.sort_unstable_by_key(|&seq| seq.wrapping_sub(pushed.wrapping_sub(u32::MAX / 4)));
        seen.iter().map(|&seq| u64::from(self.note(seq))).sum()
    }

    /// The OFFSET of the frame with `sequence`, the last one noted.
    pub fn offset(&self, sequence: u32) -> u64 {
        self.epoch.saturating_add(u64::from(sequence))
    }
}

/// A frame's duration at `fps`, or `None` for a variable rate (0/1). With one field per buffer
/// (`alternate`), buffers come twice as often as frames.
pub(super) fn frame_duration(fps: gst::Fraction, fields: bool) -> Option<gst::ClockTime> {
    let (numer, denom) = (
        u64::try_from(fps.numer()).ok()?,
        u64::try_from(fps.denom()).ok()?,
    );
    let per_second = numer.checked_mul(if fields { 2 } else { 1 })?;
    if per_second == 0 {
        return None;
    }
    gst::ClockTime::SECOND.mul_div_floor(denom, per_second)
}

/// The latency to report: a frame's capture is complete one frame duration after it began (its
/// PTS), and the driver can hold as many frames as it has buffers before one must be taken.
pub(in crate::rustv4l2src) fn latency(
    frame: gst::ClockTime,
    buffers: usize,
) -> (gst::ClockTime, Option<gst::ClockTime>) {
    let max = u64::try_from(buffers)
        .ok()
        .and_then(|n| frame.nseconds().checked_mul(n.max(1)))
        .filter(|&ns| ns <= gst::ClockTime::MAX.nseconds())
        .map(gst::ClockTime::from_nseconds);
    (frame, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    fn ms(n: u64) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(n * MS)
    }

    #[test]
    fn an_end_of_frame_stamp_is_moved_back_a_frame_and_a_start_stamp_is_not() {
        let now = Duration::from_secs(100);
        let stamp = now - Duration::from_millis(5);
        let frame = Some(ms(33));
        assert_eq!(
            frame_age(Some((stamp, StampPoint::EndOfFrame)), now, frame),
            ms(38)
        );
        assert_eq!(
            frame_age(Some((stamp, StampPoint::StartOfExposure)), now, frame),
            ms(5)
        );
        // No rate known: the stamp is taken as it is.
        assert_eq!(
            frame_age(Some((stamp, StampPoint::EndOfFrame)), now, None),
            ms(5)
        );
    }

    #[test]
    fn unusable_stamps_fall_back_to_one_frame() {
        let now = Duration::from_secs(100);
        let frame = Some(ms(40));
        assert_eq!(frame_age(None, now, frame), ms(40));
        // Slightly ahead (vivid's ideal times): just now.
        let ahead = now + Duration::from_millis(3);
        assert_eq!(
            frame_age(Some((ahead, StampPoint::StartOfExposure)), now, frame),
            gst::ClockTime::ZERO
        );
        // Far ahead, far behind, or at the ends of the range: one frame.
        for stamp in [
            now + Duration::from_secs(60),
            now - Duration::from_secs(60),
            Duration::ZERO,
            Duration::MAX,
        ] {
            assert_eq!(
                frame_age(Some((stamp, StampPoint::EndOfFrame)), now, frame),
                ms(40),
                "{stamp:?}"
            );
        }
        // An end-of-frame stamp younger than a frame cannot go below zero time.
        assert_eq!(
            frame_age(
                Some((Duration::from_millis(1), StampPoint::EndOfFrame)),
                Duration::from_millis(2),
                frame
            ),
            ms(2)
        );
    }

    #[test]
    fn the_pts_of_any_clock_is_its_now_less_the_age() {
        gst::init().unwrap();
        // A test clock stands for any clock that is not CLOCK_MONOTONIC (network, PTP, ...).
        let clock = gst_check::TestClock::with_start_time(gst::ClockTime::from_seconds(50));
        let clock = clock.upcast_ref::<gst::Clock>();
        assert!(!reads_monotonic(clock));
        let stamp = Duration::from_secs(7);
        let t = frame_time(
            clock,
            false,
            gst::ClockTime::from_seconds(10),
            Some((stamp, StampPoint::EndOfFrame)),
            Some(ms(33)),
            || stamp + Duration::from_millis(2),
        );
        assert_eq!(t.age, ms(35));
        assert_eq!(t.pts, gst::ClockTime::from_seconds(40) - ms(35));
        // A base time after now (a clock that jumped back): zero, not a wrap.
        let t = frame_time(
            clock,
            false,
            gst::ClockTime::from_seconds(60),
            None,
            Some(ms(33)),
            || stamp,
        );
        assert_eq!(t.pts, gst::ClockTime::ZERO);
    }

    #[test]
    fn the_system_clock_in_monotonic_mode_is_read_once() {
        gst::init().unwrap();
        let clock = gst::SystemClock::obtain();
        clock.set_property("clock-type", gst::ClockType::Monotonic);
        assert!(reads_monotonic(&clock));
        let stamp = Duration::from_nanos(clock.time().nseconds());
        let t = frame_time(
            &clock,
            true,
            gst::ClockTime::ZERO,
            Some((stamp, StampPoint::StartOfExposure)),
            Some(ms(33)),
            || panic!("no second clock read for a monotonic pipeline clock"),
        );
        assert!(t.age < MAX_PLAUSIBLE_AGE);
    }

    #[test]
    fn pts_stay_strictly_increasing_until_a_flush() {
        let mut inc = Increasing::default();
        assert_eq!(inc.next(ms(0)), ms(0));
        assert_eq!(inc.next(ms(0)), gst::ClockTime::from_nseconds(1));
        assert_eq!(inc.next(ms(5)), ms(5));
        assert_eq!(inc.next(ms(4)), ms(5) + gst::ClockTime::from_nseconds(1));
        inc.forget();
        assert_eq!(inc.next(ms(1)), ms(1));
        let mut top = Increasing::default();
        top.next(gst::ClockTime::MAX);
        assert_eq!(top.next(ms(1)), gst::ClockTime::MAX);
    }

    #[test]
    fn a_floor_keeps_pts_above_what_came_before_a_reconnect() {
        let mut inc = Increasing::default();
        inc.raise_to(ms(100));
        assert_eq!(inc.last(), Some(ms(100)));
        assert_eq!(inc.next(ms(90)), ms(100) + gst::ClockTime::from_nseconds(1));
        inc.raise_to(ms(50));
        assert_eq!(inc.next(ms(120)), ms(120));
    }

    #[test]
    fn gaps_follow_each_other_at_the_frame_duration_and_never_run_ahead() {
        let mut gaps = Gaps::new(ms(1000), ms(40));
        assert_eq!(gaps.step(ms(1010)), GapStep::Wait(ms(30)));
        assert_eq!(gaps.step(ms(1040)), GapStep::Push(ms(1000)));
        assert_eq!(gaps.step(ms(1041)), GapStep::Wait(ms(39)));
        // A little late: they catch up one by one.
        assert_eq!(gaps.step(ms(1130)), GapStep::Push(ms(1040)));
        assert_eq!(gaps.step(ms(1130)), GapStep::Push(ms(1080)));
        assert_eq!(gaps.step(ms(1130)), GapStep::Wait(ms(30)));
        // Far behind (a pause): start again a frame before now, still after the last one.
        assert_eq!(gaps.step(ms(5000)), GapStep::Push(ms(4960)));
        assert_eq!(gaps.step(ms(5000)), GapStep::Wait(ms(40)));
        // A zero duration would never advance.
        assert_eq!(Gaps::new(ms(0), ms(0)).duration().nseconds(), 1);
    }

    #[test]
    fn sequence_gaps_count_across_the_wrap_and_ignore_restarts() {
        assert_eq!(sequence_gap(5, 6), 0);
        assert_eq!(sequence_gap(5, 9), 3);
        assert_eq!(sequence_gap(u32::MAX, 0), 0);
        assert_eq!(sequence_gap(u32::MAX - 1, 1), 2);
        assert_eq!(sequence_gap(100, 3), 0);
        assert_eq!(sequence_gap(7, 7), 0);
    }

    #[test]
    fn offsets_keep_growing_across_the_wrap() {
        let mut seq = Sequence::default();
        assert_eq!(seq.note(u32::MAX - 1), 0);
        assert_eq!(seq.offset(u32::MAX - 1), u64::from(u32::MAX - 1));
        assert_eq!(seq.note(1), 2);
        assert_eq!(seq.offset(1), (1 << 32) + 1);
        // A restart (a jump far back) is no loss and no wrap.
        assert_eq!(seq.note(0x4000_0000), 0x4000_0000 - 2);
        assert_eq!(seq.note(3), 0);
        assert_eq!(seq.offset(3), (1 << 32) + 3);
        // The epoch saturates rather than wraps.
        let mut seq = Sequence {
            last: Some(u32::MAX),
            epoch: u64::MAX - 5,
        };
        seq.note(0);
        assert_eq!(seq.offset(0), u64::MAX);
        assert_eq!(seq.offset(u32::MAX), u64::MAX);
    }

    #[test]
    fn frames_seen_in_one_pass_count_losses_oldest_first() {
        let mut seq = Sequence::default();
        seq.note(u32::MAX - 2);
        // low-latency dropped u32::MAX - 1 and 0 for 2; u32::MAX and 1 never came.
        let mut seen = [2, u32::MAX - 1, 0];
        assert_eq!(seq.note_all(&mut seen, 2), 2);
        assert_eq!(seq.offset(2), (1 << 32) + 2);
    }

    #[test]
    fn durations_and_latency_from_the_rate() {
        assert_eq!(
            frame_duration(gst::Fraction::new(30, 1), false),
            Some(gst::ClockTime::from_nseconds(33_333_333))
        );
        assert_eq!(
            frame_duration(gst::Fraction::new(25, 1), true),
            Some(ms(20))
        );
        assert_eq!(frame_duration(gst::Fraction::new(0, 1), false), None);
        assert_eq!(
            frame_duration(gst::Fraction::new(i32::MAX, 1), true),
            Some(gst::ClockTime::ZERO)
        );
        assert_eq!(frame_duration(gst::Fraction::new(-1, 1), false), None);
        assert_eq!(latency(ms(40), 4), (ms(40), Some(ms(160))));
        assert_eq!(latency(ms(40), 0), (ms(40), Some(ms(40))));
        assert_eq!(
            latency(gst::ClockTime::from_nseconds(u64::MAX / 2), 3).1,
            None
        );
    }
}
