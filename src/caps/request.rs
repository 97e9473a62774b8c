//! Negotiated caps back to what to ask the driver for (`S_FMT`, `S_PARM`), and the caps
//! completed with what the driver settled on.

use gst_video::{VideoFieldOrder, VideoInterlaceMode};

use super::colorimetry::{self, V4l2Colorimetry};
use super::formats::{FORMATS, FormatEntry, Media, entry};
use crate::v4l2::{FormatRequest, Fourcc, Fract, PixFormat, ProbedFormat, ProbedSize};

/// What to set on the device for fixed caps.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureRequest {
    pub fourcc: Fourcc,
    /// The table entry of `fourcc`: what kind of data its buffers hold.
    pub entry: &'static FormatEntry,
    pub width: u32,
    /// The frame's height (twice a field's, for `interlace-mode=alternate`).
    pub height: u32,
    /// Time per frame (1/30 for 30 fps); `None` when the caps say 0/1 (variable rate).
    pub interval: Option<Fract>,
    /// The caps as a `VideoInfo`: for raw video with GStreamer's default layout (see
    /// [`Layout`](super::Layout) for the one the driver really uses); for Bayer and
    /// compressed formats of format `Encoded`, which keeps the size, rate and aspect only.
    pub info: gst_video::VideoInfo,
    /// `V4L2_FIELD_*` to ask for: what the caps' `interlace-mode` says, or `ANY` when they
    /// say nothing, for the driver to choose.
    pub field: u32,
    /// The colorimetry to ask for: what the caps' `colorimetry` says, or all `DEFAULT` when
    /// they say nothing.
    pub colorimetry: V4l2Colorimetry,
}

impl CaptureRequest {
    /// The `VIDIOC_S_FMT` request. For `alternate`, V4L2 counts the height of one field.
    pub fn format_request(&self) -> FormatRequest {
        let height = if self.field == crate::v4l2::V4L2_FIELD_ALTERNATE {
            self.height / 2
        } else {
            self.height
        };
        FormatRequest {
            fourcc: self.fourcc,
            width: self.width,
            height,
            field: self.field,
            colorspace: self.colorimetry.colorspace,
            ycbcr_enc: self.colorimetry.ycbcr_enc,
            quantization: self.colorimetry.quantization,
            xfer_func: self.colorimetry.xfer_func,
        }
    }
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
    // For Bayer and compressed caps this is a `VideoInfo` of format `Encoded`, which still
    // knows the size, rate and pixel aspect ratio.
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
    // Interlacing and colorimetry describe raw pictures; a compressed stream carries its own.
    let raw = chosen.is_video();
    let field = if raw && s.has_field("interlace-mode") {
        colorimetry::fields_from_gst(info.interlace_mode(), info.field_order())
    } else {
        crate::v4l2::V4L2_FIELD_ANY
    };
    let colorimetry = if raw && s.has_field("colorimetry") {
        colorimetry::from_gst(&info.colorimetry())
    } else {
        V4l2Colorimetry::default()
    };
    Ok(CaptureRequest {
        fourcc: chosen.fourcc,
        entry: chosen,
        width,
        height,
        interval,
        info,
        field,
        colorimetry,
    })
}

/// The negotiated caps completed with what the driver settled on in `VIDIOC_S_FMT`, and their
/// `VideoInfo`: for raw video, `interlace-mode` and `field-order` from its `field` and
/// `colorimetry` from its colorspace fields. A field the caps already had must agree with the
/// driver's, or the error says both. Other media keep their caps.
///
/// This is where the element learns these, rather than from a `VIDIOC_TRY_FMT` per format
/// and size while probing (as v4l2src does, a dozen per size): the driver's answer to the
/// one `S_FMT` that matters is authoritative and costs nothing more. `std` is the input's TV
/// standard (`VIDIOC_G_STD`), which says the field order of `V4L2_FIELD_INTERLACED`.
pub fn settle(
    caps: &gst::CapsRef,
    request: &CaptureRequest,
    pix: &PixFormat,
    std: Option<u64>,
) -> Result<(gst::Caps, gst_video::VideoInfo), String> {
    let mut caps = caps.to_owned();
    if !request.entry.is_video() {
        return Ok((caps, request.info.clone()));
    }
    let mut fields = colorimetry::fields_to_gst(pix.field)
        .map_err(|reason| format!("Cannot capture {}: {reason}.", request.entry.fourcc))?;
    if pix.field == crate::v4l2::V4L2_FIELD_INTERLACED {
        fields.order = colorimetry::interlaced_order(std);
    }
    let asked = &request.info;
    let s = caps.structure(0).ok_or("Empty caps")?;
    if s.has_field("interlace-mode")
        && (asked.interlace_mode() != fields.mode
            || (s.has_field("field-order") && asked.field_order() != fields.order))
    {
        return Err(format!(
            "Asked for interlace-mode {}{} but the driver delivers {}{}.",
            asked.interlace_mode().to_str(),
            order_text(asked.field_order()),
            fields.mode.to_str(),
            order_text(fields.order)
        ));
    }
    let got = V4l2Colorimetry {
        colorspace: pix.colorspace,
        xfer_func: pix.xfer_func,
        ycbcr_enc: pix.ycbcr_enc,
        quantization: pix.quantization,
    };
    let driver = colorimetry::to_gst(&got, request.entry.is_rgb(), request.height);
    if let Some(driver) = &driver
        && s.has_field("colorimetry")
        && !colorimetry::matches(&asked.colorimetry(), driver)
    {
        return Err(format!(
            "Asked for colorimetry {} but the driver delivers {}.",
            asked.colorimetry(),
            driver
        ));
    }

    let caps_mut = caps.make_mut();
    let s = caps_mut.structure_mut(0).ok_or("Empty caps")?;
    s.set("interlace-mode", fields.mode.to_str());
    if fields.order == VideoFieldOrder::Unknown {
        s.remove_field("field-order");
    } else {
        s.set("field-order", fields.order.to_str());
    }
    if let Some(driver) = driver {
        s.set("colorimetry", driver.to_string());
    }
    if fields.mode == VideoInterlaceMode::Alternate {
        // GStreamer requires alternate caps to carry this feature, so that elements that do
        // not know single-field buffers refuse them.
        caps_mut.set_features(
            0,
            Some(gst::CapsFeatures::new([
                gst_video::CAPS_FEATURE_FORMAT_INTERLACED,
            ])),
        );
    }
    let info = gst_video::VideoInfo::from_caps(&caps)
        .map_err(|_| format!("The driver's format cannot be described as video: {caps}"))?;
    Ok((caps, info))
}

fn order_text(order: VideoFieldOrder) -> String {
    match order {
        VideoFieldOrder::Unknown => String::new(),
        order => format!(" ({})", order.to_str()),
    }
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
            "The device does not capture RGB. \
             It offers YUY2 (YUYV), I420 (YU12), NV12 (NV12)."
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
        let c = caps("video/x-vp8, width=640, height=360, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap_err(),
            "The device cannot capture video/x-vp8: this element does not know that format. \
             It offers YUY2 (YUYV), I420 (YU12), NV12 (NV12)."
        );
        let c = caps("video/x-h264, width=640, height=360, framerate=30/1");
        assert_eq!(
            caps_to_request(&c, &probed).unwrap_err(),
            "The device does not capture video/x-h264. \
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
            assert_eq!(req.entry.media, e.media);
            if let Media::Raw(format) = e.media {
                assert_eq!(req.info.format(), format);
            }
            assert_eq!((req.width, req.height), (640, 480));
        }
    }

    fn pix(code: &[u8; 4], width: u32, height: u32, field: u32) -> PixFormat {
        PixFormat {
            width,
            height,
            fourcc: Fourcc::new(code),
            field,
            colorspace: 0,
            ycbcr_enc: 0,
            quantization: 0,
            xfer_func: 0,
            planes: vec![crate::v4l2::PlaneFormat {
                bytesperline: 0,
                sizeimage: 0,
            }],
        }
    }

    #[test]
    fn mjpeg_h264_and_bayer_requests() {
        gst::init().unwrap();
        let sizes = || vec![discrete(640, 360, &[(1, 30)])];
        let probed = [
            format(b"JPEG", sizes()),
            format(b"H264", sizes()),
            format(b"RGGB", sizes()),
        ];
        let c = caps("image/jpeg, width=640, height=360, framerate=30/1");
        let req = caps_to_request(&c, &probed).unwrap();
        assert_eq!(req.fourcc, Fourcc::new(b"JPEG"));
        assert_eq!(req.entry.payload, crate::caps::formats::Payload::Image);
        assert_eq!(req.info.format(), VideoFormat::Encoded);
        assert_eq!(req.interval, Some(Fract::new(1, 30)));
        assert_eq!(req.field, crate::v4l2::V4L2_FIELD_ANY);
        assert_eq!(req.colorimetry, V4l2Colorimetry::default());

        let c = caps(
            "video/x-h264, stream-format=byte-stream, alignment=au, width=640, height=360, \
             framerate=30/1",
        );
        assert_eq!(
            caps_to_request(&c, &probed).unwrap().fourcc,
            Fourcc::new(b"H264")
        );
        // AVC (no start codes) is another fourcc, which the table leaves out.
        let c = caps("video/x-h264, stream-format=avc, width=640, height=360, framerate=30/1");
        assert!(caps_to_request(&c, &probed).is_err());

        let c = caps("video/x-bayer, format=rggb, width=640, height=360, framerate=30/1");
        let req = caps_to_request(&c, &probed).unwrap();
        assert_eq!(req.fourcc, Fourcc::new(b"RGGB"));
        // Compressed and Bayer caps keep their fields; nothing to add from the driver.
        let (settled, info) = settle(&c, &req, &pix(b"RGGB", 640, 360, 1), None).unwrap();
        assert_eq!(settled, c);
        assert_eq!((info.width(), info.height()), (640, 360));
        let c = caps("video/x-bayer, format=bggr, width=640, height=360, framerate=30/1");
        assert!(caps_to_request(&c, &probed).is_err());
    }

    #[test]
    fn interlacing_and_colorimetry_are_asked_for_when_caps_say() {
        gst::init().unwrap();
        let probed = vivid_like();
        let c = caps(
            "video/x-raw, format=YUY2, width=640, height=360, framerate=30/1, \
             interlace-mode=interleaved, field-order=bottom-field-first, colorimetry=bt709",
        );
        let req = caps_to_request(&c, &probed).unwrap();
        assert_eq!(req.field, crate::v4l2::V4L2_FIELD_INTERLACED_BT);
        assert_eq!(
            req.colorimetry,
            colorimetry::from_gst(&"bt709".parse().unwrap())
        );
        let f = req.format_request();
        assert_eq!((f.height, f.field, f.colorspace), (360, 9, 3));
        assert!(f.has_colorimetry());
        let c = caps("video/x-raw, format=YUY2, width=640, height=360, framerate=30/1");
        let f = caps_to_request(&c, &probed).unwrap().format_request();
        assert_eq!(f.field, crate::v4l2::V4L2_FIELD_ANY);
        assert!(!f.has_colorimetry());
    }

    #[test]
    fn settled_caps_say_what_the_driver_chose() {
        gst::init().unwrap();
        let probed = [format(b"YUYV", vec![discrete(720, 576, &[(1, 25)])])];
        let asked = caps("video/x-raw, format=YUY2, width=720, height=576, framerate=25/1");
        let req = caps_to_request(&asked, &probed).unwrap();
        // vivid's S-Video input: interlaced, BT.601 in the 470 BG colorspace.
        let mut p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_INTERLACED_TB);
        p.colorspace = colorimetry::COLORSPACE_SMPTE170M;
        let (settled, info) = settle(&asked, &req, &p, None).unwrap();
        let s = settled.structure(0).unwrap();
        assert_eq!(s.get::<&str>("interlace-mode").unwrap(), "interleaved");
        assert_eq!(s.get::<&str>("field-order").unwrap(), "top-field-first");
        assert_eq!(s.get::<&str>("colorimetry").unwrap(), "bt601");
        assert_eq!(info.interlace_mode(), VideoInterlaceMode::Interleaved);
        assert_eq!(info.field_order(), VideoFieldOrder::TopFieldFirst);

        // Progressive, and a colorspace GStreamer cannot name: no colorimetry field.
        let p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_NONE);
        let (settled, _) = settle(&asked, &req, &p, None).unwrap();
        let s = settled.structure(0).unwrap();
        assert_eq!(s.get::<&str>("interlace-mode").unwrap(), "progressive");
        assert!(!s.has_field("colorimetry") && !s.has_field("field-order"));

        // Alternate: one field per buffer, the feature GStreamer wants.
        let p = pix(b"YUYV", 720, 288, crate::v4l2::V4L2_FIELD_ALTERNATE);
        let (settled, info) = settle(&asked, &req, &p, None).unwrap();
        assert_eq!(info.interlace_mode(), VideoInterlaceMode::Alternate);
        assert_eq!(info.field_height(), 288);
        assert!(
            settled
                .features(0)
                .unwrap()
                .contains(gst_video::CAPS_FEATURE_FORMAT_INTERLACED)
        );

        // Plain INTERLACED: the TV standard says which field is first (PAL: top).
        let p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_INTERLACED);
        let (settled, _) = settle(&asked, &req, &p, Some(0xff)).unwrap();
        let s = settled.structure(0).unwrap();
        assert_eq!(s.get::<&str>("field-order").unwrap(), "top-field-first");
        let tff = caps(
            "video/x-raw, format=YUY2, width=720, height=576, framerate=25/1, \
             interlace-mode=interleaved, field-order=top-field-first",
        );
        let req_tff = caps_to_request(&tff, &probed).unwrap();
        assert!(settle(&tff, &req_tff, &p, Some(0xff)).is_ok());
        assert_eq!(
            settle(&tff, &req_tff, &p, Some(0x1000)).unwrap_err(),
            "Asked for interlace-mode interleaved (top-field-first) but the driver delivers \
             interleaved (bottom-field-first)."
        );

        // Sequential fields cannot be described.
        let p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_SEQ_TB);
        assert!(
            settle(&asked, &req, &p, None)
                .unwrap_err()
                .contains("SEQ_TB")
        );

        // Caps that asked for something else fail, naming both.
        let strict = caps(
            "video/x-raw, format=YUY2, width=720, height=576, framerate=25/1, \
             interlace-mode=progressive, colorimetry=bt709",
        );
        let req = caps_to_request(&strict, &probed).unwrap();
        let p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_INTERLACED);
        assert_eq!(
            settle(&strict, &req, &p, None).unwrap_err(),
            "Asked for interlace-mode progressive but the driver delivers interleaved."
        );
        let mut p = pix(b"YUYV", 720, 576, crate::v4l2::V4L2_FIELD_NONE);
        p.colorspace = colorimetry::COLORSPACE_SMPTE170M;
        assert_eq!(
            settle(&strict, &req, &p, None).unwrap_err(),
            "Asked for colorimetry bt709 but the driver delivers bt601."
        );
        p.colorspace = colorimetry::COLORSPACE_REC709;
        assert!(settle(&strict, &req, &p, None).is_ok());
    }
}
