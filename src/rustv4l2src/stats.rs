//! What the element has done since it last started, for the `stats` property. Counted by the
//! capture loop under their own small lock, never the session's, so reading `stats` (from a bus
//! handler, say) never waits behind the device.

/// The counters behind `stats`. Every count saturates rather than wraps.
#[derive(Debug, Clone, Default)]
pub(super) struct Stats {
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
}

/// What one pass of the capture loop adds to the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FrameCounts {
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
}
