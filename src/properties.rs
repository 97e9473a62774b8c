//! Property tests of everything that reads bytes or tables a device or a user hands over: an
//! H.264 or H.265 access unit's bytes (the keyframe scan), a plane's byte range from
//! `bytesused`, `data_offset` and `length`, the caps built from any table of formats, sizes and
//! intervals a driver may enumerate, driver control names, `pixel-aspect-ratio` strings,
//! `extra-controls` structures and `v4l2://` URIs. MJPEG frames are pushed as the driver gives
//! them, never parsed, so there is nothing of them to test here.
//!
//! Each property runs `CI_CASES` cases in `cargo test`; `PROPTEST_CASES=N` runs N (the
//! benchmark's `properties` section runs a million each). No failure file is written: a failing
//! case prints its input, and the seed proptest prints reproduces it.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per property in CI: a few thousand, a few seconds in all.
const CI_CASES: u32 = 4096;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Bytes without a `00 00 01` start code in them (nothing below 2).
fn noise(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(2u8..=255, 0..max)
}

mod bitstream {
    use super::*;
    use crate::caps::bitstream::NalSyntax;

    proptest! {
        #![proptest_config(config())]

        /// Any bytes of any length: an answer, never a panic or a read outside them.
        #[test]
        fn any_bytes_give_an_answer(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                    h265 in any::<bool>()) {
            let syntax = if h265 { NalSyntax::H265 } else { NalSyntax::H264 };
            let _ = syntax.is_keyframe(&data);
            // Every prefix too: a frame cut anywhere (a short USB frame).
            for end in [0, 1, 2, 3, data.len() / 2, data.len().saturating_sub(1)] {
                let _ = syntax.is_keyframe(&data[..end.min(data.len())]);
            }
        }

        /// The first slice after a start code decides, whatever comes before it (non-slice NAL
        /// units, noise) or after it; no slice at all is no answer.
        #[test]
        fn the_first_slice_decides(before in noise(64), header in any::<u8>(),
                                   after in proptest::collection::vec(any::<u8>(), 0..64),
                                   extra in 0u8..2, h265 in any::<bool>()) {
            let mut data = before.clone();
            data.extend(std::iter::repeat_n(0, usize::from(extra)));
            data.extend([0, 0, 1, header]);
            let (syntax, slice, key) = if h265 {
                let kind = (header >> 1) & 0x3f;
                (NalSyntax::H265, kind <= 31, (16..=23).contains(&kind))
            } else {
                let kind = header & 0x1f;
                (NalSyntax::H264, (1..=5).contains(&kind), kind == 5)
            };
            if slice {
                data.extend(&after);
                prop_assert_eq!(syntax.is_keyframe(&data), Some(key));
            } else {
                // A parameter set or SEI, then nothing that starts another NAL unit.
                data.extend(after.iter().map(|b| b.max(&2)));
                prop_assert_eq!(syntax.is_keyframe(&data), None);
            }
        }
    }

    /// A slice further in than the scan goes is not looked for.
    #[test]
    fn a_slice_past_the_scan_limit_is_not_found() {
        let mut data = vec![0xaa; 64 * 1024];
        data.extend([0, 0, 1, 0x65]);
        assert_eq!(NalSyntax::H264.is_keyframe(&data), None);
        data.truncate(1000);
        data.extend([0, 0, 1, 0x65]);
        assert_eq!(NalSyntax::H264.is_keyframe(&data), Some(true));
    }
}

mod frame_bytes {
    use super::*;
    use crate::v4l2::frame_range;

    proptest! {
        #![proptest_config(config())]

        /// Whatever a driver reports, the range lies inside the mapping; what a sane driver
        /// reports is taken as it is.
        #[test]
        fn the_range_stays_inside_the_mapping(bytesused in any::<u32>(), data_offset in any::<u32>(),
                                              len in prop_oneof![0usize..=8192, any::<u32>().prop_map(|l| l as usize)]) {
            let range = frame_range(bytesused, data_offset, len);
            prop_assert!(range.start <= range.end && range.end <= len, "{:?} of {}", range, len);
            let used = bytesused as usize;
            if bytesused != 0 && used <= len && data_offset <= bytesused {
                prop_assert_eq!(range.clone(), data_offset as usize..used);
            }
            if bytesused == 0 {
                prop_assert_eq!(range.end, len);
            }
        }
    }
}

mod driver_tables {
    use super::*;
    use crate::caps::probed_to_caps;
    use crate::v4l2::{Fourcc, Fract, FrameIntervals, ProbedFormat, ProbedSize, SizeRange};

    /// Fourccs the table knows (raw, Bayer, compressed) and any other number.
    fn fourcc() -> impl Strategy<Value = Fourcc> {
        prop_oneof![
            prop::sample::select(vec![
                *b"YUYV", *b"UYVY", *b"NV12", *b"YU12", *b"RGB3", *b"BA81", *b"MJPG", *b"H264",
                *b"HEVC", *b"GREY", *b"NM12", *b"XR24",
            ])
            .prop_map(|c| Fourcc::new(&c)),
            any::<u32>().prop_map(Fourcc),
        ]
    }

    /// Sizes as drivers give them, the edges included: zero, one, huge.
    fn dimension() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..=4, 1u32..=8192, any::<u32>(), Just(u32::MAX)]
    }

    fn fract() -> impl Strategy<Value = Fract> {
        (
            prop_oneof![0u32..=3, any::<u32>()],
            prop_oneof![0u32..=120, any::<u32>()],
        )
            .prop_map(|(n, d)| Fract::new(n, d))
    }

    fn intervals() -> impl Strategy<Value = FrameIntervals> {
        prop_oneof![
            Just(FrameIntervals::Unknown),
            proptest::collection::vec(fract(), 0..5).prop_map(FrameIntervals::Discrete),
            (fract(), fract(), fract()).prop_map(|(min, max, step)| FrameIntervals::Stepwise {
                min,
                max,
                step
            }),
        ]
    }

    fn size() -> impl Strategy<Value = ProbedSize> {
        prop_oneof![
            (dimension(), dimension(), intervals()).prop_map(|(width, height, intervals)| {
                ProbedSize::Discrete {
                    width,
                    height,
                    intervals,
                }
            }),
            (
                dimension(),
                dimension(),
                prop_oneof![Just(0u32), 1u32..=16, any::<u32>()],
                dimension(),
                dimension(),
                prop_oneof![Just(0u32), 1u32..=16, any::<u32>()],
                intervals()
            )
                .prop_map(
                    |(
                        min_width,
                        max_width,
                        step_width,
                        min_height,
                        max_height,
                        step_height,
                        intervals,
                    )| {
                        ProbedSize::Range {
                            range: SizeRange {
                                min_width,
                                max_width,
                                step_width,
                                min_height,
                                max_height,
                                step_height,
                            },
                            intervals,
                        }
                    }
                ),
        ]
    }

    fn table() -> impl Strategy<Value = Vec<ProbedFormat>> {
        proptest::collection::vec(
            (
                fourcc(),
                any::<u32>(),
                proptest::collection::vec(size(), 0..4),
            )
                .prop_map(|(fourcc, flags, sizes)| ProbedFormat {
                    fourcc,
                    flags,
                    description: String::new(),
                    sizes,
                }),
            0..4,
        )
    }

    /// A width or height in caps: a positive int, or a range of them.
    fn check_dimension(value: &glib::SendValue) -> Result<(), String> {
        if let Ok(v) = value.get::<i32>() {
            return (v > 0).then_some(()).ok_or(format!("{v}"));
        }
        if let Ok(r) = value.get::<gst::IntRange<i32>>() {
            return (r.min() > 0 && r.min() <= r.max())
                .then_some(())
                .ok_or(format!("{r:?}"));
        }
        Err(format!("{value:?}"))
    }

    /// A frame rate in caps: a fraction, a list or a range of them, none negative or with a
    /// zero denominator.
    fn check_rate(value: &glib::SendValue) -> Result<(), String> {
        let ok = |f: gst::Fraction| f.numer() >= 0 && f.denom() > 0;
        if let Ok(f) = value.get::<gst::Fraction>() {
            return ok(f).then_some(()).ok_or(format!("{f}"));
        }
        if let Ok(r) = value.get::<gst::FractionRange>() {
            return (ok(r.min()) && ok(r.max()) && r.min() <= r.max())
                .then_some(())
                .ok_or(format!("{r:?}"));
        }
        if let Ok(list) = value.get::<gst::List>() {
            return list.iter().try_for_each(check_rate);
        }
        Err(format!("{value:?}"))
    }

    use gst::glib;

    proptest! {
        #![proptest_config(config())]

        /// Any table a driver may enumerate gives caps, never a panic, whose sizes are positive
        /// and whose rates are real fractions.
        #[test]
        fn any_driver_table_gives_sane_caps(formats in table()) {
            gst::init().unwrap();
            let caps = probed_to_caps(&formats);
            for s in caps.iter() {
                for field in ["width", "height"] {
                    if let Ok(v) = s.value(field) {
                        check_dimension(v).map_err(|e| TestCaseError::fail(format!("{field} {e} in {s}")))?;
                    }
                }
                if let Ok(v) = s.value("framerate") {
                    check_rate(v).map_err(|e| TestCaseError::fail(format!("framerate {e} in {s}")))?;
                }
            }
        }
    }
}

mod user_strings {
    use super::*;
    use crate::caps::parse_pixel_aspect_ratio;
    use crate::v4l2::controls::normalise_control_name;

    proptest! {
        #![proptest_config(config())]

        /// A driver's control name (any bytes it fits in 32) becomes `v4l2-ctl`'s: lower case
        /// letters, digits and single underscores between words; the same again when
        /// normalised twice.
        #[test]
        fn control_names_normalise_as_v4l2_ctl_does(name in "\\PC{0,32}") {
            let n = normalise_control_name(&name);
            prop_assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{n}");
            prop_assert!(!n.starts_with('_') && !n.ends_with('_') && !n.contains("__"), "{n}");
            prop_assert_eq!(normalise_control_name(&n), n);
        }

        /// Any text as `pixel-aspect-ratio`: a positive fraction or nothing, never a panic.
        #[test]
        fn any_pixel_aspect_ratio_text(text in prop_oneof!["\\PC{0,16}", "[0-9 ]{0,6}[/:][0-9 -]{0,6}"]) {
            gst::init().unwrap();
            if let Some(par) = parse_pixel_aspect_ratio(&text) {
                prop_assert!(par.numer() > 0 && par.denom() > 0, "{text} -> {par}");
            }
        }

        /// `n/d` with positive numbers is read as that fraction.
        #[test]
        fn a_fraction_is_read_as_itself(n in 1i32..=100_000, d in 1i32..=100_000) {
            gst::init().unwrap();
            let par = parse_pixel_aspect_ratio(&format!("{n}/{d}")).expect("a fraction");
            prop_assert_eq!(par, gst::Fraction::new(n, d));
        }

        /// Any `extra-controls` text GStreamer parses into a structure gives, per field, a
        /// control value or a warning, never a panic; integer and boolean fields are taken
        /// as they are. (No `;` or `"` in the text: GStreamer's own parser warns of a text that
        /// goes on after a `;`, and of an empty quoted value.)
        #[test]
        fn any_extra_controls_text(fields in proptest::collection::vec(
            ("[a-z_][a-z0-9_]{0,12}", prop_oneof![
                any::<i32>().prop_map(|v| v.to_string()),
                any::<bool>().prop_map(|v| v.to_string()),
                "[^;\"\\p{C}]{0,8}",
            ]), 0..6)) {
            gst::init().unwrap();
            let text = fields.iter().fold("c".to_string(), |t, (k, v)| format!("{t},{k}={v}"));
            let Ok(structure) = text.parse::<gst::Structure>() else { return Ok(()) };
            for (field, value) in structure.iter() {
                let read = crate::rustv4l2src::extra_control_value(value);
                if let Ok(v) = value.get::<i32>() {
                    prop_assert_eq!(read, Some(i64::from(v)), "{}", field);
                } else if let Ok(v) = value.get::<bool>() {
                    prop_assert_eq!(read, Some(i64::from(v)), "{}", field);
                }
            }
        }

        /// Any URI: a device path for `v4l2:///...`, else refused, never a panic.
        #[test]
        fn any_uri(uri in prop_oneof!["\\PC{0,24}", "v4l2://\\PC{0,16}", "v4l2:///dev/video[0-9]{1,3}"]) {
            match crate::rustv4l2src::device_of_uri(&uri) {
                Some(path) => {
                    prop_assert!(uri.starts_with("v4l2:///"), "{uri}");
                    prop_assert_eq!(format!("v4l2://{path}"), uri);
                }
                None => prop_assert!(!uri.starts_with("v4l2:///"), "{uri}"),
            }
        }
    }
}
