//! Which listed formats and sizes negotiation tries, in the order the caps list them, and one
//! of them as caps. Lets the element find the first size downstream accepts while asking the
//! driver for the frame intervals of only the sizes it looks at.

use super::formats::entry;
use super::probe::probed_to_caps_with_par;
use crate::v4l2::{ProbedFormat, ProbedSize};

/// The formats and sizes worth trying, as (format, size) indices into `probed`: the driver's
/// format order, formats the element cannot map left out, larger sizes first.
pub fn candidates(probed: &[ProbedFormat]) -> Vec<(usize, usize)> {
    let area = |size: &ProbedSize| match size {
        ProbedSize::Discrete { width, height, .. } => u64::from(*width) * u64::from(*height),
        ProbedSize::Range { range, .. } => u64::from(range.max_width) * u64::from(range.max_height),
    };
    let mut out = Vec::new();
    for (f, format) in probed.iter().enumerate() {
        if entry(format.fourcc).is_none() {
            continue;
        }
        let mut sizes: Vec<usize> = (0..format.sizes.len()).collect();
        sizes.sort_by_key(|&i| std::cmp::Reverse(area(&format.sizes[i])));
        out.extend(sizes.into_iter().map(|i| (f, i)));
    }
    out
}

/// One listed size of one format as caps.
pub fn size_caps(format: &ProbedFormat, size: usize, par: gst::Fraction) -> gst::Caps {
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
    use crate::v4l2::{Fourcc, FrameIntervals};

    fn discrete(width: u32, height: u32) -> ProbedSize {
        ProbedSize::Discrete {
            width,
            height,
            intervals: FrameIntervals::Unknown,
        }
    }

    #[test]
    fn larger_sizes_first_in_the_drivers_format_order_skipping_unknown_formats() {
        let probed = vec![
            ProbedFormat {
                fourcc: Fourcc::new(b"YUYV"),
                sizes: vec![discrete(320, 180), discrete(1280, 720), discrete(640, 360)],
                flags: 0,
                description: String::new(),
            },
            ProbedFormat {
                fourcc: Fourcc::new(b"ZZZZ"),
                sizes: vec![discrete(4000, 4000)],
                flags: 0,
                description: String::new(),
            },
            ProbedFormat {
                fourcc: Fourcc::new(b"MJPG"),
                sizes: vec![discrete(1920, 1080)],
                flags: 0,
                description: String::new(),
            },
        ];
        assert_eq!(candidates(&probed), vec![(0, 1), (0, 2), (0, 0), (2, 0)]);
        gst::init().unwrap();
        let caps = size_caps(&probed[0], 1, gst::Fraction::new(1, 1));
        let s = caps.structure(0).expect("one structure");
        assert_eq!(s.get::<i32>("width").unwrap(), 1280);
        assert!(size_caps(&probed[0], 7, gst::Fraction::new(1, 1)).is_empty());
    }
}
