//! What the device enumerated (formats, sizes, intervals) as the caps the element offers.

use std::cmp::{Ordering, Reverse};
use std::collections::HashSet;

use gst::prelude::*;

use super::formats::{FORMATS, Media, entry};
use crate::v4l2::{Fourcc, Fract, FrameIntervals, ProbedFormat, ProbedSize, SizeRange};

/// The largest width or height offered when a driver does not enumerate sizes (as v4l2src).
pub const MAX_SIZE: i32 = 32768;

/// A frame rate as (numerator, denominator) frames per second, reduced.
type Rate = (i32, i32);

const MAX_RATE: Rate = (i32::MAX, 1);
const ANY_RATE: Rates = Rates::Range((0, 1), MAX_RATE);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Dim {
    Fixed(i32),
    Range { min: i32, max: i32, step: i32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Rates {
    One(Rate),
    /// Highest rate first.
    List(Vec<Rate>),
    Range(Rate, Rate),
}

/// One caps structure, before it becomes one: comparable, so duplicates are dropped cheaply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Spec {
    width: Dim,
    height: Dim,
    rates: Rates,
}

/// The caps for everything the device enumerated that the format table knows; unknown
/// fourccs are left out.
///
/// The driver's format order is kept. Within one format, larger sizes come first and, in a
/// list of rates, higher rates first, so that fixating the first structure gives the
/// largest size at the highest rate. Formats that map to the same GStreamer format (`YU12`
/// and `YM12`) do not repeat structures the first one already gave. Pixels are square.
pub fn probed_to_caps(formats: &[ProbedFormat]) -> gst::Caps {
    probed_to_caps_with_par(formats, Some(gst::Fraction::new(1, 1)))
}

/// [`probed_to_caps`] with the `pixel-aspect-ratio` the caps carry (see
/// [`caps_pixel_aspect_ratio`](super::caps_pixel_aspect_ratio)), or none: it depends on the
/// input and TV standard, not on the format, so every structure gets the same.
pub fn probed_to_caps_with_par(formats: &[ProbedFormat], par: Option<gst::Fraction>) -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    let caps_mut = caps.make_mut();
    let mut seen: HashSet<(Media, Spec)> = HashSet::new();
    for format in formats {
        let Some(entry) = entry(format.fourcc) else {
            continue;
        };
        let Some(base) = entry.media.structure() else {
            continue;
        };
        for spec in specs(&format.sizes) {
            let key = (entry.media, spec);
            if seen.contains(&key) {
                continue;
            }
            caps_mut.append_structure(key.1.structure(base.clone(), par));
            seen.insert(key);
        }
    }
    caps
}

/// Every format of the table at any size and rate: the element's pad template.
pub fn template_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    let caps_mut = caps.make_mut();
    let mut seen = HashSet::new();
    for entry in FORMATS {
        if !seen.insert(entry.media) {
            continue;
        }
        if let Some(base) = entry.media.structure() {
            let mut s = any_size().structure(base, Some(gst::Fraction::new(1, 1)));
            s.remove_field("pixel-aspect-ratio");
            caps_mut.append_structure(s);
        }
    }
    caps
}

/// One format at any size and rate, with `par` as in [`probed_to_caps_with_par`]: every caps
/// its listed sizes can give lie within these, so downstream caps that do not intersect them
/// accept none of its sizes (and negotiation need not list them). Empty for a fourcc the table
/// does not know.
pub fn any_size_caps(fourcc: Fourcc, par: Option<gst::Fraction>) -> gst::Caps {
    let Some(base) = entry(fourcc).and_then(|e| e.media.structure()) else {
        return gst::Caps::new_empty();
    };
    let mut caps = gst::Caps::new_empty();
    caps.make_mut()
        .append_structure(any_size().structure(base, par));
    caps
}

fn any_size() -> Spec {
    let any = Dim::Range {
        min: 1,
        max: MAX_SIZE,
        step: 1,
    };
    Spec {
        width: any.clone(),
        height: any,
        rates: ANY_RATE,
    }
}

fn specs(sizes: &[ProbedSize]) -> Vec<Spec> {
    if sizes.is_empty() {
        return vec![any_size()];
    }
    let mut keyed: Vec<(u64, Spec)> = sizes
        .iter()
        .filter_map(|size| match size {
            ProbedSize::Discrete {
                width,
                height,
                intervals,
            } => {
                if *width == 0 || *height == 0 {
                    return None;
                }
                let spec = Spec {
                    width: Dim::Fixed(clamp(*width)),
                    height: Dim::Fixed(clamp(*height)),
                    rates: rates(intervals),
                };
                Some((u64::from(*width) * u64::from(*height), spec))
            }
            ProbedSize::Range { range, intervals } => {
                let SizeRange {
                    min_width,
                    max_width,
                    step_width,
                    min_height,
                    max_height,
                    step_height,
                } = *range;
                let spec = Spec {
                    width: dim(min_width, max_width, step_width),
                    height: dim(min_height, max_height, step_height),
                    rates: rates(intervals),
                };
                Some((u64::from(max_width) * u64::from(max_height), spec))
            }
        })
        .collect();
    // Stable: sizes of equal area keep the driver's order.
    keyed.sort_by_key(|(area, _)| Reverse(*area));
    keyed.into_iter().map(|(_, spec)| spec).collect()
}

fn clamp(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn dim(min: u32, max: u32, step: u32) -> Dim {
    let min = clamp(min.max(1));
    let max = clamp(max).max(min);
    if min == max {
        return Dim::Fixed(min);
    }
    let step = clamp(step.max(1));
    // GStreamer ranges with a step must start and end on a multiple of it; a V4L2 range
    // need not (min 1, step 8). Then offer the whole range and let S_FMT round.
    let step = if min % step == 0 && max % step == 0 {
        step
    } else {
        1
    };
    Dim::Range { min, max, step }
}

/// The frame rate of a frame interval: 1/30 s per frame is 30/1 frames per second.
fn rate(interval: Fract) -> Option<Rate> {
    if interval.numerator == 0 || interval.denominator == 0 {
        return None;
    }
    Some(reduce(
        u64::from(interval.denominator),
        u64::from(interval.numerator),
    ))
}

fn reduce(n: u64, d: u64) -> Rate {
    let g = gcd(n, d);
    let (mut n, mut d) = (n / g, d / g);
    // Only intervals like 1/4294967295 s land here: approximate rather than fail.
    while n > i32::MAX as u64 || d > i32::MAX as u64 {
        n >>= 1;
        d >>= 1;
    }
    (n as i32, d.max(1) as i32)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

fn cmp_rate(a: &Rate, b: &Rate) -> Ordering {
    (i64::from(a.0) * i64::from(b.1)).cmp(&(i64::from(b.0) * i64::from(a.1)))
}

fn rates(intervals: &FrameIntervals) -> Rates {
    match intervals {
        FrameIntervals::Unknown => ANY_RATE,
        FrameIntervals::Discrete(list) => {
            let mut list: Vec<Rate> = list.iter().copied().filter_map(rate).collect();
            list.sort_by(|a, b| cmp_rate(b, a));
            list.dedup();
            match list.len() {
                0 => ANY_RATE,
                1 => Rates::One(list[0]),
                _ => Rates::List(list),
            }
        }
        FrameIntervals::Stepwise { min, max, .. } => {
            // The shortest interval is the highest rate.
            let mut high = rate(*min).unwrap_or(MAX_RATE);
            let mut low = rate(*max).unwrap_or((0, 1));
            match cmp_rate(&low, &high) {
                Ordering::Equal => Rates::One(high),
                Ordering::Greater => {
                    (low, high) = (high, low);
                    Rates::Range(low, high)
                }
                Ordering::Less => Rates::Range(low, high),
            }
        }
    }
}

fn fraction((n, d): Rate) -> gst::Fraction {
    gst::Fraction::new(n, d)
}

impl Dim {
    fn value(&self) -> gst::glib::SendValue {
        match *self {
            Dim::Fixed(v) => v.to_send_value(),
            Dim::Range { min, max, step: 1 } => gst::IntRange::new(min, max).to_send_value(),
            Dim::Range { min, max, step } => {
                gst::IntRange::with_step(min, max, step).to_send_value()
            }
        }
    }
}

impl Rates {
    fn value(&self) -> gst::glib::SendValue {
        match self {
            Rates::One(r) => fraction(*r).to_send_value(),
            Rates::List(list) => gst::List::new(list.iter().copied().map(fraction)).to_send_value(),
            Rates::Range(low, high) => {
                gst::FractionRange::new(fraction(*low), fraction(*high)).to_send_value()
            }
        }
    }
}

impl Spec {
    fn structure(&self, mut s: gst::Structure, par: Option<gst::Fraction>) -> gst::Structure {
        s.set_value("width", self.width.value());
        s.set_value("height", self.height.value());
        s.set_value("framerate", self.rates.value());
        if let Some(par) = par {
            s.set("pixel-aspect-ratio", par);
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn discrete(width: u32, height: u32, intervals: &[(u32, u32)]) -> ProbedSize {
        ProbedSize::Discrete {
            width,
            height,
            intervals: FrameIntervals::Discrete(
                intervals.iter().map(|&(n, d)| Fract::new(n, d)).collect(),
            ),
        }
    }

    pub(crate) fn format(code: &[u8; 4], sizes: Vec<ProbedSize>) -> ProbedFormat {
        ProbedFormat {
            fourcc: Fourcc::new(code),
            flags: 0,
            description: String::new(),
            sizes,
        }
    }

    /// What vivid's webcam input enumerates, in the order it enumerates it (smallest size
    /// first, lowest rate last).
    pub(crate) fn vivid_like() -> Vec<ProbedFormat> {
        let sizes = || {
            vec![
                discrete(320, 180, &[(1, 60), (1, 30), (1, 25), (1, 15)]),
                discrete(640, 360, &[(1, 60), (1, 30), (1, 25)]),
                discrete(1920, 1080, &[(1, 30), (1, 25), (2, 25)]),
            ]
        };
        vec![
            format(b"YUYV", sizes()),
            format(b"YU12", sizes()),
            // Unknown to the table (10-bit grey): left out.
            format(b"Y10 ", sizes()),
            format(b"NV12", sizes()),
        ]
    }

    fn caps(s: &str) -> gst::Caps {
        s.parse().unwrap()
    }

    #[test]
    fn vivid_like_probe() {
        gst::init().unwrap();
        let got = probed_to_caps(&vivid_like());
        let want = caps(
            "video/x-raw, format=YUY2, width=1920, height=1080, \
                 framerate={ (fraction)30/1, (fraction)25/1, (fraction)25/2 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=YUY2, width=640, height=360, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=YUY2, width=320, height=180, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1, (fraction)15/1 }, \
                 pixel-aspect-ratio=1/1; \
             video/x-raw, format=I420, width=1920, height=1080, \
                 framerate={ (fraction)30/1, (fraction)25/1, (fraction)25/2 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=I420, width=640, height=360, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=I420, width=320, height=180, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1, (fraction)15/1 }, \
                 pixel-aspect-ratio=1/1; \
             video/x-raw, format=NV12, width=1920, height=1080, \
                 framerate={ (fraction)30/1, (fraction)25/1, (fraction)25/2 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=NV12, width=640, height=360, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1 }, pixel-aspect-ratio=1/1; \
             video/x-raw, format=NV12, width=320, height=180, \
                 framerate={ (fraction)60/1, (fraction)30/1, (fraction)25/1, (fraction)15/1 }, \
                 pixel-aspect-ratio=1/1",
        );
        // Strict equality: same structures in the same order with lists in the same order.
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn any_size_caps_hold_every_listed_size() {
        gst::init().unwrap();
        let par = Some(gst::Fraction::new(59, 54));
        for format in vivid_like() {
            let all = any_size_caps(format.fourcc, par);
            let listed = probed_to_caps_with_par(std::slice::from_ref(&format), par);
            if entry(format.fourcc).is_none() {
                assert!(all.is_empty() && listed.is_empty());
                continue;
            }
            assert_eq!(all.size(), 1);
            assert!(listed.is_subset(&all), "{listed} not within {all}");
        }
        let yuy2 = any_size_caps(Fourcc::new(b"YUYV"), par);
        assert!(yuy2.can_intersect(&caps("video/x-raw, format=YUY2, width=640, framerate=30/1")));
        assert!(!yuy2.can_intersect(&caps("video/x-raw, format=NV12")));
        assert!(!yuy2.can_intersect(&caps("image/jpeg")));
        assert!(!yuy2.can_intersect(&caps("video/x-raw, pixel-aspect-ratio=1/1")));
    }

    #[test]
    fn one_interval_is_a_plain_fraction_reduced() {
        gst::init().unwrap();
        let got = probed_to_caps(&[format(b"GREY", vec![discrete(640, 480, &[(1001, 30000)])])]);
        let s = got.structure(0).unwrap();
        assert_eq!(
            s.get::<gst::Fraction>("framerate").unwrap(),
            gst::Fraction::new(30000, 1001)
        );
        let got = probed_to_caps(&[format(b"GREY", vec![discrete(640, 480, &[(2, 60)])])]);
        let f = got
            .structure(0)
            .unwrap()
            .get::<gst::Fraction>("framerate")
            .unwrap();
        assert_eq!((f.numer(), f.denom()), (30, 1));
    }

    #[test]
    fn stepwise_sizes_and_intervals() {
        gst::init().unwrap();
        let range = SizeRange {
            min_width: 16,
            max_width: 1920,
            step_width: 16,
            min_height: 8,
            max_height: 1080,
            step_height: 8,
        };
        let intervals = FrameIntervals::Stepwise {
            min: Fract::new(1, 60),
            max: Fract::new(1, 1),
            step: Fract::new(1, 1),
        };
        let got = probed_to_caps(&[format(
            b"NV12",
            vec![ProbedSize::Range { range, intervals }],
        )]);
        let want = caps(
            "video/x-raw, format=NV12, width=[16, 1920, 16], height=[8, 1080, 8], \
             framerate=[1/1, 60/1], pixel-aspect-ratio=1/1",
        );
        assert_eq!(got.to_string(), want.to_string());
        let s = got.structure(0).unwrap();
        let w = s.get::<gst::IntRange<i32>>("width").unwrap();
        assert_eq!((w.min(), w.max(), w.step()), (16, 1920, 16));
    }

    #[test]
    fn continuous_sizes_and_unaligned_steps() {
        gst::init().unwrap();
        let continuous = SizeRange {
            min_width: 1,
            max_width: 4096,
            step_width: 1,
            min_height: 1,
            max_height: 2160,
            step_height: 1,
        };
        // A step GStreamer cannot express (min is not a multiple of it).
        let odd = SizeRange {
            min_width: 2,
            max_width: 642,
            step_width: 4,
            min_height: 480,
            max_height: 480,
            step_height: 2,
        };
        let got = probed_to_caps(&[format(
            b"YUYV",
            vec![
                ProbedSize::Range {
                    range: odd,
                    intervals: FrameIntervals::Unknown,
                },
                ProbedSize::Range {
                    range: continuous,
                    intervals: FrameIntervals::Unknown,
                },
            ],
        )]);
        let want = caps(
            "video/x-raw, format=YUY2, width=[1, 4096], height=[1, 2160], \
                 framerate=[0/1, 2147483647/1], pixel-aspect-ratio=1/1; \
             video/x-raw, format=YUY2, width=[2, 642], height=480, \
                 framerate=[0/1, 2147483647/1], pixel-aspect-ratio=1/1",
        );
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn unknown_intervals_and_no_sizes() {
        gst::init().unwrap();
        let got = probed_to_caps(&[
            format(
                b"RGB3",
                vec![ProbedSize::Discrete {
                    width: 640,
                    height: 480,
                    intervals: FrameIntervals::Unknown,
                }],
            ),
            format(b"GREY", vec![]),
        ]);
        let want = caps(
            "video/x-raw, format=RGB, width=640, height=480, \
                 framerate=[0/1, 2147483647/1], pixel-aspect-ratio=1/1; \
             video/x-raw, format=GRAY8, width=[1, 32768], height=[1, 32768], \
                 framerate=[0/1, 2147483647/1], pixel-aspect-ratio=1/1",
        );
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn bogus_intervals_are_dropped() {
        gst::init().unwrap();
        let got = probed_to_caps(&[format(
            b"GREY",
            vec![
                discrete(640, 480, &[(0, 30), (1, 0)]),
                discrete(0, 480, &[(1, 30)]),
            ],
        )]);
        let want = caps(
            "video/x-raw, format=GRAY8, width=640, height=480, \
                 framerate=[0/1, 2147483647/1], pixel-aspect-ratio=1/1",
        );
        assert_eq!(got.to_string(), want.to_string());
        assert_eq!(reduce(u64::from(u32::MAX), 1), (i32::MAX, 1));
    }

    #[test]
    fn stepwise_intervals_edge_cases() {
        let equal = FrameIntervals::Stepwise {
            min: Fract::new(1, 30),
            max: Fract::new(2, 60),
            step: Fract::new(1, 1),
        };
        assert_eq!(rates(&equal), Rates::One((30, 1)));
        let swapped = FrameIntervals::Stepwise {
            min: Fract::new(1, 1),
            max: Fract::new(1, 30),
            step: Fract::new(1, 1),
        };
        assert_eq!(rates(&swapped), Rates::Range((1, 1), (30, 1)));
        let zero = FrameIntervals::Stepwise {
            min: Fract::new(0, 1),
            max: Fract::new(1, 1),
            step: Fract::new(1, 1),
        };
        assert_eq!(rates(&zero), Rates::Range((1, 1), MAX_RATE));
    }

    #[test]
    fn same_gstreamer_format_twice_is_merged() {
        gst::init().unwrap();
        let sizes = || vec![discrete(640, 480, &[(1, 30)])];
        let got = probed_to_caps(&[
            format(b"YU12", sizes()),
            format(b"YM12", sizes()),
            format(b"YM12", vec![discrete(320, 240, &[(1, 30)])]),
        ]);
        assert_eq!(got.size(), 2);
    }

    #[test]
    fn large_probe_is_quick() {
        gst::init().unwrap();
        let codes: Vec<[u8; 4]> = FORMATS.iter().map(|e| e.fourcc.bytes()).collect();
        let formats: Vec<_> = codes
            .iter()
            .map(|code| {
                let sizes = (1..=10)
                    .map(|i| discrete(160 * i, 90 * i, &[(1, 60), (1, 30), (1, 15)]))
                    .collect();
                format(code, sizes)
            })
            .collect();
        let start = std::time::Instant::now();
        let got = probed_to_caps(&formats);
        let took = start.elapsed();
        // Formats sharing a GStreamer format are merged.
        let distinct = FORMATS
            .iter()
            .map(|e| e.media)
            .collect::<HashSet<_>>()
            .len();
        assert_eq!(got.size(), distinct * 10);
        // Generous: a few milliseconds in practice, even unoptimised.
        assert!(took.as_secs_f64() < 1.0, "{took:?}");
    }

    #[test]
    fn template_covers_probed_caps() {
        gst::init().unwrap();
        let template = template_caps();
        assert_eq!(
            template.size(),
            FORMATS
                .iter()
                .map(|e| e.media)
                .collect::<HashSet<_>>()
                .len()
        );
        assert!(probed_to_caps(&vivid_like()).is_subset(&template));
    }

    #[test]
    fn compressed_and_bayer_formats_and_the_devices_aspect_ratio() {
        gst::init().unwrap();
        let sizes = || vec![discrete(640, 360, &[(1, 30)])];
        let got = probed_to_caps_with_par(
            &[
                format(b"MJPG", sizes()),
                format(b"JPEG", sizes()),
                format(b"H264", sizes()),
                format(b"HEVC", sizes()),
                format(b"BA81", sizes()),
                format(b"GBRG", sizes()),
                format(b"GRBG", sizes()),
                format(b"RGGB", sizes()),
            ],
            Some(gst::Fraction::new(59, 54)),
        );
        let rest = "width=(int)640, height=(int)360, framerate=(fraction)30/1, \
                    pixel-aspect-ratio=(fraction)59/54";
        let want: Vec<String> = [
            "image/jpeg, parsed=(boolean)true",
            "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au",
            "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au",
            "video/x-bayer, format=(string)bggr",
            "video/x-bayer, format=(string)gbrg",
            "video/x-bayer, format=(string)grbg",
            "video/x-bayer, format=(string)rggb",
        ]
        .iter()
        .map(|base| format!("{base}, {rest}"))
        .collect();
        // MJPG and JPEG give one structure.
        assert_eq!(got.to_string(), want.join("; "));
    }

    #[test]
    fn caps_without_an_aspect_ratio_have_no_such_field() {
        gst::init().unwrap();
        let got = probed_to_caps_with_par(
            &[format(b"YUYV", vec![discrete(640, 360, &[(1, 30)])])],
            None,
        );
        assert_eq!(
            got.to_string(),
            "video/x-raw, format=(string)YUY2, width=(int)640, height=(int)360, \
             framerate=(fraction)30/1"
        );
    }

    #[test]
    fn template_lists_every_media_once() {
        gst::init().unwrap();
        let template = template_caps().to_string();
        for name in [
            "video/x-raw, format=(string)YUY2",
            "image/jpeg, parsed=(boolean)true",
            "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au",
            "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au",
            "video/x-bayer, format=(string)bggr",
            "video/x-bayer, format=(string)gbrg",
            "video/x-bayer, format=(string)grbg",
            "video/x-bayer, format=(string)rggb",
        ] {
            assert_eq!(template.matches(name).count(), 1, "{name} in {template}");
        }
    }
}
