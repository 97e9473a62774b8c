//! Which of the listed formats and sizes negotiation takes when downstream leaves a choice: the
//! rule for default caps, and the order in which it looks at the candidates so that it asks the
//! driver for the frame intervals of only the sizes that can still win.
//!
//! The rule: the largest size whose frame rate reaches 30 fps; where no size downstream accepts
//! does, the largest size at its highest rate. At an equal size (and, below 30 fps, an equal
//! rate) raw comes before compressed, then the driver's format order. Unconstrained capture
//! then streams smoothly instead of at the 2 fps of a sensor's full resolution, and needs no
//! decoder when a raw format does as well. Whatever downstream names (a size, a rate, a format)
//! it decides: the rule only ranks what downstream accepts.

use std::cmp::Reverse;

use super::fixate::fixate;
use super::formats::entry;
use super::probe::probed_to_caps_with_par;
use crate::v4l2::{ProbedFormat, ProbedSize};

/// The rate a size must reach to count as streaming well: 30 frames per second, NTSC's
/// 30000/1001 included (cameras that follow it list that as their "30").
pub const SMOOTH_RATE: gst::Fraction = gst::Fraction::new_raw(30000, 1001);

/// One listed size of one format, as negotiation may try it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index into the probed formats.
    pub format: usize,
    /// Index into that format's sizes.
    pub size: usize,
    /// Its pixels (a range's largest): the most that any caps made from it can have.
    pub area: u64,
    pub compressed: bool,
}

/// The formats and sizes worth trying, in the order [`choose`] looks at them: larger sizes
/// first, raw before compressed at an equal size, then the driver's format order. Formats the
/// element cannot map are left out.
pub fn candidates(probed: &[ProbedFormat]) -> Vec<Candidate> {
    let area = |size: &ProbedSize| match size {
        ProbedSize::Discrete { width, height, .. } => u64::from(*width) * u64::from(*height),
        ProbedSize::Range { range, .. } => u64::from(range.max_width) * u64::from(range.max_height),
    };
    let mut out = Vec::new();
    for (f, format) in probed.iter().enumerate() {
        let Some(entry) = entry(format.fourcc) else {
            continue;
        };
        out.extend(format.sizes.iter().enumerate().map(|(i, size)| Candidate {
            format: f,
            size: i,
            area: area(size),
            compressed: entry.is_compressed(),
        }));
    }
    // Stable: equal keys keep the driver's format order, then its size order.
    out.sort_by_key(|c| (Reverse(c.area), c.compressed));
    out
}

/// What the rule weighs of one candidate's caps, downstream's restrictions applied, as
/// fixation settles them (see [`fixate`]: the largest size, the highest rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Score {
    smooth: bool,
    area: u64,
    rate: gst::Fraction,
    compressed: bool,
}

impl Score {
    fn of(caps: &gst::Caps, compressed: bool) -> Score {
        let fixed = fixate(caps.clone());
        let s = fixed.structure(0);
        let dim = |name| {
            s.and_then(|s| s.get::<i32>(name).ok())
                .map_or(0, |v| u64::from(v.unsigned_abs()))
        };
        let rate = s
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .unwrap_or(gst::Fraction::new(0, 1));
        Score {
            smooth: rate >= SMOOTH_RATE,
            area: dim("width") * dim("height"),
            rate,
            compressed,
        }
    }

    /// Greater is better; equal keys go to the one looked at first.
    fn key(&self) -> (bool, u64, gst::Fraction, bool) {
        // Past 30 fps a higher rate is no better: it only ranks sizes that fall short.
        let rate = if self.smooth {
            gst::Fraction::new(0, 1)
        } else {
            self.rate
        };
        (self.smooth, self.area, rate, !self.compressed)
    }

    /// Whether `c` could still beat this smooth choice: only by being larger, or as large and
    /// raw where this is compressed. A candidate's caps are never larger than its listed size.
    fn beatable_by(&self, c: &Candidate) -> bool {
        c.area > self.area || (c.area == self.area && self.compressed && !c.compressed)
    }
}

/// The caps of the candidate the rule (see the module's documentation) takes, among those
/// downstream accepts; `None` if downstream accepts none.
///
/// `look` gives a candidate's caps with downstream's restrictions applied, `None` when
/// downstream takes none of them; it is where negotiation asks the driver for the candidate's
/// frame intervals, so it is called in `candidates` order and only while the candidate can still
/// win: once a size reaches 30 fps, no smaller one is looked at. Where none reaches it, every
/// candidate downstream accepts is.
pub fn choose(
    candidates: &[Candidate],
    mut look: impl FnMut(&Candidate) -> Option<gst::Caps>,
) -> Option<gst::Caps> {
    let mut best: Option<(Score, gst::Caps)> = None;
    for c in candidates {
        if let Some((b, _)) = &best
            && b.smooth
            && !b.beatable_by(c)
        {
            continue;
        }
        let Some(caps) = look(c).filter(|caps| !caps.is_empty()) else {
            continue;
        };
        let score = Score::of(&caps, c.compressed);
        if best.as_ref().is_none_or(|(b, _)| score.key() > b.key()) {
            best = Some((score, caps));
        }
    }
    best.map(|(_, caps)| caps)
}

/// One listed size of one format as caps.
pub fn size_caps(format: &ProbedFormat, size: usize, par: Option<gst::Fraction>) -> gst::Caps {
    let Some(one) = format.sizes.get(size) else {
        return gst::Caps::new_empty();
    };
    probed_to_caps_with_par(
        &[ProbedFormat {
            sizes: vec![one.clone()],
            ..format.clone()
        }],
        par,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::probe::tests::{discrete, format};
    use crate::v4l2::{Fourcc, Fract, FrameIntervals, SizeRange};

    fn unknown(width: u32, height: u32) -> ProbedSize {
        ProbedSize::Discrete {
            width,
            height,
            intervals: FrameIntervals::Unknown,
        }
    }

    /// vivid's webcam input as `v4l2-ctl --list-formats-ext` shows it: six sizes, each listing
    /// the first 2 * (6 - index) intervals of one table, slowest first, so the larger the slower
    /// (3840x2160 up to 2 fps, 640x360 up to 40, 320x180 up to 60).
    fn vivid_sizes() -> Vec<ProbedSize> {
        const INTERVALS: [(u32, u32); 12] = [
            (1, 1),
            (1, 2),
            (1, 4),
            (1, 5),
            (1, 10),
            (2, 25),
            (1, 15),
            (1, 25),
            (1, 30),
            (1, 40),
            (1, 50),
            (1, 60),
        ];
        let sizes = [
            (320, 180),
            (640, 360),
            (640, 480),
            (1280, 720),
            (1920, 1080),
            (3840, 2160),
        ];
        sizes
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| discrete(w, h, &INTERVALS[..2 * (6 - i)]))
            .collect()
    }

    /// Fixed caps as (format or media type, width, height, rate).
    type Fixed = (String, i32, i32, gst::Fraction);

    /// The chosen caps, fixated, as (format or media type, width, height, rate), and the
    /// (format, size) pairs whose intervals negotiation would have probed, in order.
    fn pick(probed: &[ProbedFormat], peer: &str) -> (Option<Fixed>, Vec<(usize, usize)>) {
        gst::init().unwrap();
        let peer: gst::Caps = peer.parse().unwrap();
        let par = Some(gst::Fraction::new(1, 1));
        let mut looked = Vec::new();
        // As negotiation does: only a candidate downstream can take has its intervals probed.
        let chosen = choose(&candidates(probed), |c| {
            let caps = size_caps(&probed[c.format], c.size, par);
            if !caps.can_intersect(&peer) {
                return None;
            }
            looked.push((c.format, c.size));
            Some(caps.intersect_with_mode(&peer, gst::CapsIntersectMode::First))
        });
        let chosen = chosen.map(|caps| {
            let fixed = fixate(caps);
            let s = fixed.structure(0).unwrap();
            (
                s.get::<String>("format")
                    .unwrap_or_else(|_| s.name().to_string()),
                s.get::<i32>("width").unwrap(),
                s.get::<i32>("height").unwrap(),
                s.get::<gst::Fraction>("framerate").unwrap(),
            )
        });
        (chosen, looked)
    }

    fn got(format: &str, width: i32, height: i32, fps: (i32, i32)) -> Option<Fixed> {
        Some((
            format.to_string(),
            width,
            height,
            gst::Fraction::new(fps.0, fps.1),
        ))
    }

    #[test]
    fn larger_sizes_first_raw_before_compressed_skipping_unknown_formats() {
        let probed = vec![
            format(b"MJPG", vec![unknown(1280, 720), unknown(320, 180)]),
            format(
                b"YUYV",
                vec![unknown(320, 180), unknown(1280, 720), unknown(640, 360)],
            ),
            format(b"ZZZZ", vec![unknown(4000, 4000)]),
            format(b"NV12", vec![unknown(1920, 1080)]),
        ];
        let order: Vec<(usize, usize)> = candidates(&probed)
            .iter()
            .map(|c| (c.format, c.size))
            .collect();
        assert_eq!(order, vec![(3, 0), (1, 1), (0, 0), (1, 2), (1, 0), (0, 1)]);
        gst::init().unwrap();
        let caps = size_caps(&probed[1], 1, Some(gst::Fraction::new(1, 1)));
        let s = caps.structure(0).expect("one structure");
        assert_eq!(s.get::<i32>("width").unwrap(), 1280);
        assert!(size_caps(&probed[1], 7, Some(gst::Fraction::new(1, 1))).is_empty());
    }

    #[test]
    fn discrete_sizes_the_largest_that_reaches_30_fps_at_its_highest_rate() {
        let probed = vec![
            format(b"YUYV", vivid_sizes()),
            format(b"NV12", vivid_sizes()),
        ];
        let (chosen, looked) = pick(&probed, "ANY");
        assert_eq!(chosen, got("YUY2", 640, 360, (40, 1)));
        // Each larger size in both formats, then the first 640x360: nothing smaller.
        assert_eq!(
            looked,
            vec![
                (0, 5),
                (1, 5),
                (0, 4),
                (1, 4),
                (0, 3),
                (1, 3),
                (0, 2),
                (1, 2),
                (0, 1)
            ]
        );
    }

    #[test]
    fn ntsc_30_counts_as_30() {
        let probed = vec![format(
            b"YUYV",
            vec![
                discrete(1920, 1080, &[(1001, 30000), (1, 15)]),
                discrete(640, 480, &[(1001, 60000), (1001, 30000)]),
            ],
        )];
        let (chosen, _) = pick(&probed, "ANY");
        assert_eq!(chosen, got("YUY2", 1920, 1080, (30000, 1001)));
    }

    #[test]
    fn stepwise_sizes_and_intervals() {
        let range = |max_width, max_height, fastest| ProbedSize::Range {
            range: SizeRange {
                min_width: 16,
                max_width,
                step_width: 16,
                min_height: 16,
                max_height,
                step_height: 8,
            },
            intervals: FrameIntervals::Stepwise {
                min: Fract::new(1, fastest),
                max: Fract::new(1, 1),
                step: Fract::new(1, 1),
            },
        };
        // A range that reaches 30 fps at its largest: its largest, at its highest rate.
        let (chosen, looked) = pick(&[format(b"NV12", vec![range(1920, 1080, 60)])], "ANY");
        assert_eq!(chosen, got("NV12", 1920, 1080, (60, 1)));
        assert_eq!(looked, vec![(0, 0)]);
        // One that does not, beside a smaller discrete size that does.
        let probed = vec![
            format(b"NV12", vec![range(4096, 2160, 15)]),
            format(b"YUYV", vec![discrete(1280, 720, &[(1, 30)])]),
        ];
        let (chosen, _) = pick(&probed, "ANY");
        assert_eq!(chosen, got("YUY2", 1280, 720, (30, 1)));
        // Downstream narrowing the range below a discrete size: the discrete size is larger.
        let probed = vec![
            format(b"NV12", vec![range(1920, 1080, 60)]),
            format(b"YUYV", vec![discrete(1280, 720, &[(1, 30)])]),
        ];
        let (chosen, _) = pick(&probed, "video/x-raw, width=[1, 1280], height=[1, 720]");
        assert_eq!(chosen, got("NV12", 1280, 720, (60, 1)));
        let (chosen, _) = pick(&probed, "video/x-raw, width=[1, 640], height=[1, 720]");
        assert_eq!(chosen, got("NV12", 640, 720, (60, 1)));
    }

    #[test]
    fn continuous_sizes_with_continuous_intervals_and_unknown_rates() {
        let continuous = ProbedSize::Range {
            range: SizeRange {
                min_width: 1,
                max_width: 2592,
                step_width: 1,
                min_height: 1,
                max_height: 1944,
                step_height: 1,
            },
            // Continuous: 1/1 s to 1/10 s at the largest size.
            intervals: FrameIntervals::Stepwise {
                min: Fract::new(1, 10),
                max: Fract::new(1, 1),
                step: Fract::new(1, 1),
            },
        };
        let probed = vec![
            format(b"GREY", vec![continuous]),
            format(b"YUYV", vec![discrete(800, 600, &[(1, 20)])]),
        ];
        // Nothing reaches 30 fps: the largest size, at its highest rate.
        let (chosen, looked) = pick(&probed, "ANY");
        assert_eq!(chosen, got("GRAY8", 2592, 1944, (10, 1)));
        assert_eq!(looked, vec![(0, 0), (1, 0)]);
        // A driver that lists no rates could do any: it counts as fast enough.
        let (chosen, _) = pick(&[format(b"GREY", vec![unknown(640, 480)])], "ANY");
        assert_eq!(chosen, got("GRAY8", 640, 480, (i32::MAX, 1)));
    }

    #[test]
    fn no_size_reaches_30_fps_the_largest_at_its_highest_rate() {
        let probed = vec![format(
            b"YUYV",
            vec![
                discrete(640, 480, &[(1, 25), (1, 15)]),
                discrete(2592, 1944, &[(1, 5), (1, 2)]),
                discrete(1920, 1080, &[(1, 15)]),
            ],
        )];
        let (chosen, looked) = pick(&probed, "ANY");
        assert_eq!(chosen, got("YUY2", 2592, 1944, (5, 1)));
        assert_eq!(looked.len(), 3, "every size had to be looked at");
    }

    #[test]
    fn raw_before_compressed_at_an_equal_size_and_rate() {
        // A webcam: MJPEG listed first, both at 30 fps up to 1280x720.
        let sizes = || {
            vec![
                discrete(1280, 720, &[(1, 30), (1, 15)]),
                discrete(640, 480, &[(1, 30)]),
            ]
        };
        let probed = vec![format(b"MJPG", sizes()), format(b"YUYV", sizes())];
        let (chosen, looked) = pick(&probed, "ANY");
        assert_eq!(chosen, got("YUY2", 1280, 720, (30, 1)));
        assert_eq!(looked, vec![(1, 0)], "the raw size decides alone");

        // Below 30 fps, the rate decides first; at an equal one, raw again.
        let probed = vec![
            format(b"MJPG", vec![discrete(1920, 1080, &[(1, 25)])]),
            format(b"YUYV", vec![discrete(1920, 1080, &[(1, 25)])]),
        ];
        assert_eq!(pick(&probed, "ANY").0, got("YUY2", 1920, 1080, (25, 1)));
        let probed = vec![
            format(b"MJPG", vec![discrete(1920, 1080, &[(1, 25)])]),
            format(b"YUYV", vec![discrete(1920, 1080, &[(1, 5)])]),
        ];
        assert_eq!(
            pick(&probed, "ANY").0,
            got("image/jpeg", 1920, 1080, (25, 1))
        );
    }

    #[test]
    fn a_larger_compressed_size_that_reaches_30_fps_beats_a_slow_raw_one() {
        // The usual USB webcam: raw Full HD at 5 fps, MJPEG at 30.
        let probed = vec![
            format(
                b"YUYV",
                vec![
                    discrete(1920, 1080, &[(1, 5)]),
                    discrete(1280, 720, &[(1, 10)]),
                    discrete(640, 480, &[(1, 30)]),
                ],
            ),
            format(
                b"MJPG",
                vec![
                    discrete(1920, 1080, &[(1, 30)]),
                    discrete(1280, 720, &[(1, 30)]),
                    discrete(640, 480, &[(1, 30)]),
                ],
            ),
        ];
        let (chosen, looked) = pick(&probed, "ANY");
        assert_eq!(chosen, got("image/jpeg", 1920, 1080, (30, 1)));
        assert_eq!(looked, vec![(0, 0), (1, 0)]);
        // Downstream that takes raw only gets the largest raw size at 30 fps.
        let (chosen, _) = pick(&probed, "video/x-raw");
        assert_eq!(chosen, got("YUY2", 640, 480, (30, 1)));
    }

    #[test]
    fn a_filter_that_names_the_size_decides_it() {
        let probed = vec![format(b"YUYV", vivid_sizes())];
        let (chosen, looked) = pick(&probed, "video/x-raw, width=3840, height=2160");
        assert_eq!(chosen, got("YUY2", 3840, 2160, (2, 1)));
        assert_eq!(looked, vec![(0, 5)]);
        let (chosen, _) = pick(&probed, "video/x-raw, width=1920, height=1080");
        assert_eq!(chosen, got("YUY2", 1920, 1080, (5, 1)));
    }

    #[test]
    fn a_filter_that_names_a_rate_gets_the_largest_size_that_can_do_it() {
        let probed = vec![format(b"YUYV", vivid_sizes())];
        let (chosen, _) = pick(&probed, "video/x-raw, framerate=60/1");
        assert_eq!(chosen, got("YUY2", 320, 180, (60, 1)));
        let (chosen, _) = pick(&probed, "video/x-raw, framerate=5/1");
        assert_eq!(chosen, got("YUY2", 1920, 1080, (5, 1)));
        // A range of rates: the largest size whose best rate in it reaches 30 fps.
        let (chosen, _) = pick(&probed, "video/x-raw, framerate=[25/1, 30/1]");
        assert_eq!(chosen, got("YUY2", 640, 360, (30, 1)));
        // One below 30 fps: the largest size that can do any of it, at the highest.
        let (chosen, _) = pick(&probed, "video/x-raw, framerate=[1/1, 12/1]");
        assert_eq!(chosen, got("YUY2", 3840, 2160, (2, 1)));
    }

    #[test]
    fn a_filter_that_names_the_format_and_nothing_accepted() {
        let probed = vec![
            format(b"YUYV", vivid_sizes()),
            format(b"NV12", vivid_sizes()),
        ];
        let (chosen, _) = pick(&probed, "video/x-raw, format=NV12");
        assert_eq!(chosen, got("NV12", 640, 360, (40, 1)));
        let (chosen, _) = pick(&probed, "image/jpeg");
        assert_eq!(chosen, None);
    }

    #[test]
    fn unknown_fourcc_is_never_a_candidate() {
        let probed = vec![ProbedFormat {
            fourcc: Fourcc::new(b"ZZZZ"),
            sizes: vec![unknown(640, 480)],
            flags: 0,
            description: String::new(),
        }];
        assert!(candidates(&probed).is_empty());
    }
}
