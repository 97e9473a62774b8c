//! The picture's geometry in caps: which pixel aspect ratio the caps carry (the device's, the
//! one the `pixel-aspect-ratio` property sets, or none at all with `force-aspect-ratio=false`),
//! and the one size a cropped capture has. Pure translation: the element feeds it what the
//! properties and the driver say.

/// The `pixel-aspect-ratio` every caps structure carries. Not forced, there is none, so
/// downstream may ask for any (v4l2src's `force-aspect-ratio=false`); forced, it is the
/// property's override if set, else what the device reports.
pub fn caps_pixel_aspect_ratio(
    force: bool,
    user: Option<gst::Fraction>,
    device: gst::Fraction,
) -> Option<gst::Fraction> {
    force.then(|| user.unwrap_or(device))
}

/// A `pixel-aspect-ratio` property value as a fraction, read the way v4l2src reads it
/// (GStreamer's string to fraction conversion: "59/54", "1"). `None` for anything that is not a
/// positive fraction.
pub fn parse_pixel_aspect_ratio(text: &str) -> Option<gst::Fraction> {
    use gst::prelude::*;
    let value = text.trim().to_value().transform::<gst::Fraction>().ok()?;
    let par = value.get::<gst::Fraction>().ok()?;
    (par.numer() > 0 && par.denom() > 0).then_some(par)
}

/// `caps` narrowed to frames of exactly `width` x `height` (a cropped capture): each structure
/// with that size among its own, others left out. Features are kept.
pub fn restrict_size(caps: &gst::CapsRef, width: u32, height: u32) -> gst::Caps {
    let (Ok(width), Ok(height)) = (i32::try_from(width), i32::try_from(height)) else {
        return gst::Caps::new_empty();
    };
    let mut out = gst::Caps::new_empty();
    let out_mut = out.make_mut();
    for (s, features) in caps.iter_with_features() {
        let size = gst::Structure::builder(s.name())
            .field("width", width)
            .field("height", height)
            .build();
        if let Some(narrowed) = s.intersect(&size) {
            out_mut.append_structure_full(narrowed, Some(features.to_owned()));
        }
    }
    out
}

/// The picture the source itself sends, as a norm or the receiver's DV timings say: what the
/// element captures when nothing downstream asks for another size (a driver that scales would
/// otherwise offer its largest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Native {
    pub width: u32,
    pub height: u32,
    /// Frames per second; `None` when the source does not say.
    pub rate: Option<gst::Fraction>,
    pub interlaced: bool,
}

/// `caps` narrowed to the source's own size and, with `with_rate`, its own frame rate.
pub fn restrict_to_native(caps: &gst::CapsRef, native: &Native, with_rate: bool) -> gst::Caps {
    let sized = restrict_size(caps, native.width, native.height);
    let Some(rate) = native.rate.filter(|_| with_rate) else {
        return sized;
    };
    let mut out = gst::Caps::new_empty();
    let out_mut = out.make_mut();
    for (s, features) in sized.iter_with_features() {
        let timed = gst::Structure::builder(s.name())
            .field("framerate", rate)
            .build();
        if let Some(narrowed) = s.intersect(&timed) {
            out_mut.append_structure_full(narrowed, Some(features.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    #[test]
    fn native_narrows_size_then_rate_and_keeps_out_what_cannot() {
        let offered = caps(
            "video/x-raw, format=YUY2, width=(int)[16, 16384], height=(int)[16, 8640], \
             framerate=(fraction){ 60/1, 30/1 }; image/jpeg, width=640, height=480",
        );
        let native = Native {
            width: 1280,
            height: 720,
            rate: Some(gst::Fraction::new(60, 1)),
            interlaced: false,
        };
        let sized = restrict_to_native(&offered, &native, false);
        assert_eq!(sized.size(), 1, "{sized}");
        let s = sized.structure(0).unwrap();
        assert_eq!(s.get::<i32>("width").unwrap(), 1280);
        assert_eq!(s.get::<i32>("height").unwrap(), 720);
        assert!(!sized.is_fixed());
        let timed = restrict_to_native(&offered, &native, true);
        assert_eq!(
            timed
                .structure(0)
                .unwrap()
                .get::<gst::Fraction>("framerate")
                .unwrap(),
            gst::Fraction::new(60, 1)
        );
        let odd_rate = Native {
            rate: Some(gst::Fraction::new(50, 1)),
            ..native
        };
        assert!(restrict_to_native(&offered, &odd_rate, true).is_empty());
        assert!(!restrict_to_native(&offered, &odd_rate, false).is_empty());
    }

    #[test]
    fn the_caps_carry_the_override_else_the_device_s_par_unless_not_forced() {
        gst::init().unwrap();
        let ntsc = gst::Fraction::new(10, 11);
        let wide = gst::Fraction::new(4, 3);
        assert_eq!(caps_pixel_aspect_ratio(true, None, ntsc), Some(ntsc));
        assert_eq!(caps_pixel_aspect_ratio(true, Some(wide), ntsc), Some(wide));
        assert_eq!(caps_pixel_aspect_ratio(false, Some(wide), ntsc), None);
        assert_eq!(caps_pixel_aspect_ratio(false, None, ntsc), None);
    }

    #[test]
    fn pixel_aspect_ratio_strings_are_read_as_v4l2src_reads_them() {
        gst::init().unwrap();
        assert_eq!(
            parse_pixel_aspect_ratio("59/54"),
            Some(gst::Fraction::new(59, 54))
        );
        assert_eq!(
            parse_pixel_aspect_ratio(" 4/3 "),
            Some(gst::Fraction::new(4, 3))
        );
        assert_eq!(
            parse_pixel_aspect_ratio("2"),
            Some(gst::Fraction::new(2, 1))
        );
        for bad in ["", "wide", "0/1", "-4/3", "4/0", "4/-3"] {
            assert_eq!(parse_pixel_aspect_ratio(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_cropped_size_narrows_ranges_and_drops_sizes_that_cannot_be_it() {
        let all = caps(
            "video/x-raw, format=YUY2, width=[48, 15360, 2], height=[32, 8640, 2], \
             framerate=25/1; \
             video/x-raw, format=NV12, width=640, height=480, framerate=25/1; \
             video/x-raw(memory:DMABuf), format=YUY2, width=[48, 1920], height=[32, 1080]; \
             image/jpeg, width=700, height={556, 576}",
        );
        assert_eq!(
            restrict_size(&all, 700, 556),
            caps(
                "video/x-raw, format=YUY2, width=700, height=556, framerate=25/1; \
                 video/x-raw(memory:DMABuf), format=YUY2, width=700, height=556; \
                 image/jpeg, width=700, height=556"
            )
        );
        // The first range has even widths only.
        assert_eq!(
            restrict_size(&all, 701, 556),
            caps("video/x-raw(memory:DMABuf), format=YUY2, width=701, height=556")
        );
        assert!(restrict_size(&all, u32::MAX, 556).is_empty());
    }
}
