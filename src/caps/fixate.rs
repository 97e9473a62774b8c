//! Settling the caps left after negotiation on one format, size and rate.

/// Fixates the caps `BaseSrc::fixate` receives.
///
/// By then GStreamer has intersected the device's caps with what downstream accepts, so
/// downstream's wishes already won: whatever is left is acceptable to both. The element's
/// negotiation has also already chosen the format and listed size (see
/// [`choose`](super::choose): the largest that reaches 30 fps), so these caps are one listed
/// size of one format, possibly a range, in downstream's order of preference. Take the first
/// structure, then the largest size in it, then the highest frame rate at that size (a
/// range's rates are the driver's at its largest size, which all of it can do); anything else
/// goes to GStreamer's default fixation.
pub fn fixate(mut caps: gst::Caps) -> gst::Caps {
    if caps.is_any() || caps.is_empty() {
        return caps;
    }
    caps.truncate();
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.fixate_field_nearest_int("width", i32::MAX);
        s.fixate_field_nearest_int("height", i32::MAX);
        s.fixate_field_nearest_fraction("framerate", gst::Fraction::new(i32::MAX, 1));
        if s.has_field("pixel-aspect-ratio") {
            s.fixate_field_nearest_fraction("pixel-aspect-ratio", gst::Fraction::new(1, 1));
        }
    }
    caps.fixate();
    caps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::probe::tests::vivid_like;
    use crate::caps::probed_to_caps;

    fn caps(s: &str) -> gst::Caps {
        s.parse().unwrap()
    }

    fn fixed(s: &str) -> gst::Caps {
        let c = caps(s);
        assert!(c.is_fixed());
        c
    }

    #[test]
    fn largest_size_at_highest_rate() {
        gst::init().unwrap();
        let got = fixate(probed_to_caps(&vivid_like()));
        assert_eq!(
            got,
            fixed(
                "video/x-raw, format=YUY2, width=1920, height=1080, framerate=30/1, \
                 pixel-aspect-ratio=1/1"
            )
        );
    }

    #[test]
    fn downstream_restrictions_win() {
        gst::init().unwrap();
        let ours = probed_to_caps(&vivid_like());
        // As BaseSrc negotiates: the peer's caps filtered by ours, in our order.
        let downstream = caps("video/x-raw, width=[1, 700]; video/x-raw, format=NV12");
        let got = fixate(ours.intersect_with_mode(&downstream, gst::CapsIntersectMode::First));
        assert_eq!(
            got,
            fixed(
                "video/x-raw, format=YUY2, width=640, height=360, framerate=60/1, \
                 pixel-aspect-ratio=1/1"
            )
        );

        let downstream = caps("video/x-raw, format=NV12, framerate=25/1");
        let got = fixate(ours.intersect_with_mode(&downstream, gst::CapsIntersectMode::First));
        assert_eq!(
            got,
            fixed(
                "video/x-raw, format=NV12, width=1920, height=1080, framerate=25/1, \
                 pixel-aspect-ratio=1/1"
            )
        );
    }

    #[test]
    fn ranges_fixate_to_their_maximum() {
        gst::init().unwrap();
        let got = fixate(caps(
            "video/x-raw, format=NV12, width=[16, 1920, 16], height=[8, 1080, 8], \
             framerate=[1/1, 60/1], pixel-aspect-ratio=1/1",
        ));
        assert_eq!(
            got,
            fixed(
                "video/x-raw, format=NV12, width=1920, height=1080, framerate=60/1, \
                 pixel-aspect-ratio=1/1"
            )
        );
        // Unknown rates: the top of [0/1, MAX/1].
        let got = fixate(caps(
            "video/x-raw, format=GRAY8, width=[1, 32768], height=[1, 32768], \
             framerate=[0/1, 2147483647/1], pixel-aspect-ratio=[1/10, 10/1]",
        ));
        assert_eq!(
            got,
            fixed(
                "video/x-raw, format=GRAY8, width=32768, height=32768, \
                 framerate=2147483647/1, pixel-aspect-ratio=1/1"
            )
        );
    }

    #[test]
    fn empty_and_any_stay_as_they_are() {
        gst::init().unwrap();
        assert!(fixate(gst::Caps::new_empty()).is_empty());
        assert!(fixate(gst::Caps::new_any()).is_any());
    }
}
