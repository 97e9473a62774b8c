//! Negotiated caps back to what to ask the driver for (`S_FMT`, `S_PARM`).

use super::formats::{FORMATS, FormatEntry, Media, entry};
use crate::v4l2::{Fourcc, Fract, ProbedFormat, ProbedSize};

/// What to set on the device for fixed caps.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureRequest {
    pub fourcc: Fourcc,
    pub width: u32,
    pub height: u32,
    /// Time per frame (1/30 for 30 fps); `None` when the caps say 0/1 (variable rate).
    pub interval: Option<Fract>,
    /// The caps as a `VideoInfo`, with GStreamer's default layout; see
    /// [`Layout`](super::Layout) for the one the driver really uses.
    pub info: gst_video::VideoInfo,
}

/// Which enumerated pixel format and size give these (fixed) caps.
///
/// When several enumerated fourccs yield the caps' format, the table's preference wins: one
/// buffer for all planes (`YU12`) before one per plane (`YM12`), current fourccs before
/// deprecated ones. The size must be one the device enumerated (or any, if it enumerated
/// none); the frame rate is left to the driver to round. The error says what was asked and
/// what the device offers, for the user.
pub fn caps_to_request(
    caps: &gst::CapsRef,
    enumerated: &[ProbedFormat],
) -> Result<CaptureRequest, String> {
    let s = match caps.structure(0) {
        Some(s) if caps.is_fixed() => s,
        _ => {
            return Err(format!(
                "Cannot capture with caps that are not fixed: {caps}"
            ));
        }
    };
    let info = gst_video::VideoInfo::from_caps(caps)
        .map_err(|_| format!("Cannot capture with caps that do not describe video: {caps}"))?;
    let (width, height) = (info.width(), info.height());

    let media = FORMATS
        .iter()
        .map(|e| e.media)
        .find(|m| media_matches(*m, s, &info))
        .ok_or_else(|| {
            let asked = match s.name().as_str() {
                "video/x-raw" => info.format().to_str().to_string(),
                name => name.to_string(),
            };
            format!(
                "The device cannot capture {asked}: this element does not know that format. {}",
                offered_formats(enumerated)
            )
        })?;
    let candidates: Vec<(&FormatEntry, &ProbedFormat)> = FORMATS
        .iter()
        .filter(|e| e.media == media)
        .filter_map(|e| Some((e, enumerated.iter().find(|p| p.fourcc == e.fourcc)?)))
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "The device does not capture {}. {}",
            media.name(),
            offered_formats(enumerated)
        ));
    }
    let (chosen, _) = candidates
        .iter()
        .find(|(_, p)| offers_size(p, width, height))
        .ok_or_else(|| {
            let offers: Vec<String> = candidates
                .iter()
                .map(|(e, p)| format!("{} ({}): {}", media.name(), e.fourcc, sizes(p)))
                .collect();
            format!(
                "The device does not capture {} at {width}x{height}; it offers {}.",
                media.name(),
                offers.join("; ")
            )
        })?;

    let fps = info.fps();
    let interval = (fps.numer() > 0 && fps.denom() > 0)
        .then(|| Fract::new(fps.denom() as u32, fps.numer() as u32));
    Ok(CaptureRequest {
        fourcc: chosen.fourcc,
        width,
        height,
        interval,
        info,
    })
}

fn media_matches(media: Media, s: &gst::StructureRef, info: &gst_video::VideoInfo) -> bool {
    match media {
        Media::Raw(format) => s.name() == "video/x-raw" && info.format() == format,
        Media::Encoded(_) => media
            .structure()
            .is_some_and(|t| t.name() == s.name() && s.can_intersect(&t)),
    }
}

fn offers_size(format: &ProbedFormat, width: u32, height: u32) -> bool {
    format.sizes.is_empty()
        || format.sizes.iter().any(|size| match size {
            ProbedSize::Discrete {
                width: w,
                height: h,
                ..
            } => (*w, *h) == (width, height),
            ProbedSize::Range { range: r, .. } => {
                let within = |v: u32, min: u32, max: u32, step: u32| {
                    (min..=max).contains(&v) && (v - min).is_multiple_of(step.max(1))
                };
                within(width, r.min_width, r.max_width, r.step_width)
                    && within(height, r.min_height, r.max_height, r.step_height)
            }
        })
}

fn sizes(format: &ProbedFormat) -> String {
    if format.sizes.is_empty() {
        return "any size".to_string();
    }
    let list: Vec<String> = format
        .sizes
        .iter()
        .map(|size| match size {
            ProbedSize::Discrete { width, height, .. } => format!("{width}x{height}"),
            ProbedSize::Range { range: r, .. } => format!(
                "{}x{} to {}x{} in steps of {}x{}",
                r.min_width, r.min_height, r.max_width, r.max_height, r.step_width, r.step_height
            ),
        })
        .collect();
    list.join(", ")
}

fn offered_formats(enumerated: &[ProbedFormat]) -> String {
    let known: Vec<String> = enumerated
        .iter()
        .filter_map(|p| Some(format!("{} ({})", entry(p.fourcc)?.media.name(), p.fourcc)))
        .collect();
    if known.is_empty() {
        "It offers no format this element can capture.".to_string()
    } else {
        format!("It offers {}.", known.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::probe::tests::{discrete, format, vivid_like};
    use crate::v4l2::{FrameIntervals, SizeRange};
    use gst_video::VideoFormat;

    fn caps(s: &str) -> gst::Caps {
        s.parse().unwrap()
    }

    #[test]
    fn vivid_yuy2() {
        gst::init().unwrap();
        let c = caps(
            "video/x-raw, format=YUY2, width=640, height=360, framerate=30/1, \
             pixel-aspect-ratio=1/1",
        );
        let req = caps_to_request(&c, &vivid_like()).unwrap();
        assert_eq!(req.fourcc, Fourcc::new(b"YUYV"));
        assert_eq!((req.width, req.height), (640, 360));
        assert_eq!(req.interval, Some(Fract::new(1, 30)));
        assert_eq!(req.info.format(), VideoFormat::Yuy2);
        assert_eq!(req.info.stride()[0], 1280);
    }

    #[test]
    fn fractional_and_variable_rates() {
        gst::init().unwrap();
        let probed = vivid_like();
        let c = caps("video/x-raw, format=I420, width=1920, height=1080, framerate=25/2");
        let req = caps_to_request(&c, &probed).unwrap();
        assert_eq!(req.fourcc, Fourcc::new(b"YU12"));
        assert_eq!(req.interval, Some(Fract::new(2, 25)));
        let c = caps("video/x-raw, format=I420, width=1920, height=1080, framerate=0/1");
        assert_eq!(caps_to_request(&c, &probed).unwrap().interval, None);
    }

    #[test]
    fn one_buffer_fourcc_preferred() {
        gst::init().unwrap();
        let sizes = || vec![discrete(640, 480, &[(1, 30)])];
        let c = caps("video/x-raw, format=NV12, width=640, height=480, framerate=30/1");
        // Whatever the driver's order.
        let probed = [format(b"NM12", sizes()), format(b"NV12", sizes())];
        assert_eq!(
            caps_to_request(&c, &probed).unwrap().fourcc,
            Fourcc::new(b"NV12")
        );
        // Only the per-plane one: take it.
        let probed = [format(b"NM12", sizes())];
        assert_eq!(
            caps_to_request(&c, &probed).unwrap().fourcc,
            Fourcc::new(b"NM12")
        );
        // Both, but only the per-plane one at this size.
        let probed = [
            format(b"NV12", vec![discrete(320, 240, &[(1, 30)])]),
            format(b"NM12", sizes()),
        ];
        assert_eq!(
            caps_to_request(&c, &probed).unwrap().fourcc,
            Fourcc::new(b"NM12")
        );
    }

    #[test]
    fn ranges_and_no_sizes() {
        gst::init().unwrap();
        let range = SizeRange {
            min_width: 16,
            max_width: 1920,
            step_width: 16,
            min_height: 16,
            max_height: 1080,
            step_height: 2,
        };
        let probed = [
            format(
                b"NV12",
                vec![ProbedSize::Range {
                    range,
                    intervals: FrameIntervals::Unknown,
                }],
            ),
            format(b"GREY", vec![]),
        ];
        let c = caps("video/x-raw, format=NV12, width=1280, height=720, framerate=30/1");
        assert!(caps_to_request(&c, &probed).is_ok());
        let c = caps("video/x-raw, format=NV12, width=1000, height=720, framerate=30/1");
        let err = caps_to_request(&c, &probed).unwrap_err();
        assert_eq!(
            err,
            "The device does not capture NV12 at 1000x720; it offers NV12 (NV12): \
             16x16 to 1920x1080 in steps of 16x2."
        );
        let c = caps("video/x-raw, format=GRAY8, width=1001, height=3, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap().fourcc,
            Fourcc::new(b"GREY")
        );
    }

    #[test]
    fn errors_say_what_was_asked_and_what_is_offered() {
        gst::init().unwrap();
        let probed = vivid_like();
        let c = caps("video/x-raw, format=RGB, width=640, height=360, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap_err(),
            "The device does not capture RGB. It offers YUY2 (YUYV), I420 (YU12), NV12 (NV12)."
        );
        let c = caps("video/x-raw, format=YUY2, width=800, height=600, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap_err(),
            "The device does not capture YUY2 at 800x600; it offers YUY2 (YUYV): \
             320x180, 640x360, 1920x1080."
        );
        let c = caps("video/x-raw, format=YUY2, width=[1, 10], height=600");
        assert!(
            caps_to_request(&c, &probed)
                .unwrap_err()
                .starts_with("Cannot capture with caps that are not fixed")
        );
        let c = caps("video/x-h264, width=640, height=360, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap_err(),
            "The device cannot capture video/x-h264: this element does not know that format. \
             It offers YUY2 (YUYV), I420 (YU12), NV12 (NV12)."
        );
        let c = caps("audio/x-raw, rate=48000");
        assert!(caps_to_request(&c, &probed).is_err());
    }

    #[test]
    fn every_table_entry_round_trips_through_caps() {
        gst::init().unwrap();
        for e in FORMATS {
            let probed = [format(
                &e.fourcc.bytes(),
                vec![discrete(640, 480, &[(1, 30)])],
            )];
            let caps = crate::caps::fixate(crate::caps::probed_to_caps(&probed));
            let req = caps_to_request(&caps, &probed).unwrap();
            assert_eq!(req.fourcc, e.fourcc);
            assert_eq!(Media::Raw(req.info.format()), e.media);
            assert_eq!((req.width, req.height), (640, 480));
        }
    }
}
