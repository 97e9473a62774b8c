//! What the element has done since it last started, for the `stats` property. Counted by the
//! capture loop under their own small lock, never the session's, so reading `stats` (from a bus
//! handler, say) never waits behind the device.

/// The counters behind `stats`. Every count saturates rather than wraps.
#[derive(Debug, Clone, Default)]
pub(in crate::rustv4l2src) struct Stats {
    /// Frames pushed downstream.
    pub captured: u64,
    /// Frames the driver skipped (gaps in its sequence numbers).
    pub lost: u64,
    /// Older ready frames skipped in favour of the newest (`low-latency`).
    pub dropped: u64,
    /// Frames the driver flagged as corrupt (`V4L2_BUF_FLAG_ERROR`), not pushed.
    pub corrupted: u64,
    /// Frames copied into system memory instead of lent (see `copy-threshold`).
    pub copied: u64,
    /// Buffers the driver refused to take back (`VIDIOC_QBUF` failed): each leaves the driver
    /// one buffer short until the stream is rebuilt.
    pub requeue_failures: u64,
    /// From the start of the last frame's capture to its push.
    pub last_delay: Option<gst::ClockTime>,
    /// Times the device went away while streaming.
    pub disconnects: u64,
    /// Time spent waiting for the device (`reconnect`), waits that ended.
    pub without_device: std::time::Duration,
    /// When the current wait for the device began, if one is going on.
    pub waiting_since: Option<std::time::Instant>,
    /// Streams the driver failed and the element restarted (`reconnect`).
    pub restarts: u64,
    /// When the restarts within the restart budget's window happened, oldest first.
    pub recent_restarts: std::collections::VecDeque<std::time::Instant>,
}

/// What one pass of the capture loop adds to the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::rustv4l2src) struct FrameCounts {
    pub lost: u64,
    pub dropped: u64,
    pub corrupted: u64,
    pub copied: bool,
    /// Buffers the driver refused back since the last frame.
    pub refused: u64,
}

impl Stats {
    /// Adds one pushed frame and what happened around it; returns the totals of frames
    /// captured and lost, for the QoS message a loss posts.
    pub fn record(&mut self, counts: &FrameCounts, delay: Option<gst::ClockTime>) -> (u64, u64) {
        self.captured = self.captured.saturating_add(1);
        self.lost = self.lost.saturating_add(counts.lost);
        self.dropped = self.dropped.saturating_add(counts.dropped);
        self.corrupted = self.corrupted.saturating_add(counts.corrupted);
        self.copied = self.copied.saturating_add(u64::from(counts.copied));
        self.requeue_failures = self.requeue_failures.saturating_add(counts.refused);
        self.last_delay = delay;
        (self.captured, self.lost)
    }

    /// A stream failed at `now`: whether a restart stays within `budget` restarts in any
    /// `window` (then it is counted), or would go past it.
    pub fn restart_allowed(
        &mut self,
        now: std::time::Instant,
        window: std::time::Duration,
        budget: usize,
    ) -> bool {
        while self
            .recent_restarts
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            self.recent_restarts.pop_front();
        }
        if self.recent_restarts.len() >= budget {
            return false;
        }
        self.recent_restarts.push_back(now);
        self.restarts = self.restarts.saturating_add(1);
        true
    }

    /// A wait for the device begins (at `since`, when the device went), unless one is going on.
    pub fn begin_wait(&mut self, since: std::time::Instant) {
        self.waiting_since.get_or_insert(since);
    }

    /// The device is back: the wait counts into `time-without-device`.
    pub fn end_wait(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            self.without_device = self.without_device.saturating_add(since.elapsed());
        }
    }

    /// The time without the device so far, the current wait included.
    pub fn time_without_device(&self) -> std::time::Duration {
        let current = self.waiting_since.map(|since| since.elapsed());
        self.without_device
            .saturating_add(current.unwrap_or_default())
    }

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder("application/x-rustv4l2src-stats")
            .field("frames-captured", self.captured)
            .field("frames-lost", self.lost)
            .field("frames-dropped", self.dropped)
            .field("frames-corrupted", self.corrupted)
            .field("frames-copied", self.copied)
            .field("requeue-failures", self.requeue_failures)
            .field(
                "last-delay",
                self.last_delay.map_or(u64::MAX, |d| d.nseconds()),
            )
            .field("disconnects", self.disconnects)
            .field("stream-restarts", self.restarts)
            .field(
                "time-without-device",
                u64::try_from(self.time_without_device().as_nanos()).unwrap_or(u64::MAX),
            )
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_saturate() {
        gst::init().unwrap();
        let mut stats = Stats {
            lost: u64::MAX - 1,
            ..Stats::default()
        };
        let counts = FrameCounts {
            lost: 5,
            dropped: 2,
            corrupted: 1,
            copied: true,
            refused: 1,
        };
        assert_eq!(stats.record(&counts, None), (1, u64::MAX));
        stats.record(
            &FrameCounts::default(),
            Some(gst::ClockTime::from_mseconds(3)),
        );
        let s = stats.to_structure();
        assert_eq!(s.get::<u64>("frames-captured").unwrap(), 2);
        assert_eq!(s.get::<u64>("frames-dropped").unwrap(), 2);
        assert_eq!(s.get::<u64>("frames-corrupted").unwrap(), 1);
        assert_eq!(s.get::<u64>("frames-copied").unwrap(), 1);
        assert_eq!(s.get::<u64>("requeue-failures").unwrap(), 1);
        assert_eq!(s.get::<u64>("last-delay").unwrap(), 3_000_000);
        assert_eq!(
            Stats::default()
                .to_structure()
                .get::<u64>("last-delay")
                .unwrap(),
            u64::MAX
        );
    }

    #[test]
    fn time_without_device_adds_ended_waits_and_the_current_one() {
        use std::time::{Duration, Instant};
        gst::init().unwrap();
        let mut stats = Stats::default();
        let since = Instant::now() - Duration::from_millis(300);
        stats.begin_wait(since);
        // A second begin while waiting keeps the first start.
        stats.begin_wait(Instant::now());
        assert!(stats.time_without_device() >= Duration::from_millis(300));
        stats.end_wait();
        let ended = stats.without_device;
        assert!(ended >= Duration::from_millis(300));
        stats.end_wait();
        assert_eq!(stats.without_device, ended);
        stats.begin_wait(Instant::now() - Duration::from_millis(100));
        let s = stats.to_structure();
        let ns = s.get::<u64>("time-without-device").unwrap();
        assert!(
            ns >= (ended + Duration::from_millis(100)).as_nanos() as u64,
            "{ns}"
        );
        assert_eq!(s.get::<u64>("disconnects").unwrap(), 0);
    }

    #[test]
    fn restarts_stay_within_their_budget_in_any_window() {
        use std::time::{Duration, Instant};
        gst::init().unwrap();
        let mut stats = Stats::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(60);
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in [0, 10, 20] {
            assert!(stats.restart_allowed(at(s), window, 3));
        }
        // A fourth within 60 s of the first is one too many, and is not counted.
        assert!(!stats.restart_allowed(at(59), window, 3));
        assert_eq!(stats.restarts, 3);
        // Once the first is 60 s old, there is room for one more.
        assert!(stats.restart_allowed(at(60), window, 3));
        assert!(!stats.restart_allowed(at(61), window, 3));
        assert_eq!(
            stats.to_structure().get::<u64>("stream-restarts").unwrap(),
            4
        );
    }
}
