//! Which access units of an H.264 or H.265 byte stream start a keyframe, for drivers that do
//! not say: uvcvideo and v4l2loopback set none of `V4L2_BUF_FLAG_KEYFRAME`, `_PFRAME` or
//! `_BFRAME`, and without this every buffer they give would be marked `DELTA_UNIT`, so that a
//! muxer or decoder downstream would never see a point to start from.
//!
//! Only the bytes up to the first slice (VCL NAL unit) are read: the delimiter, parameter sets
//! and SEI in front of it are short, and the slice's NAL header says what kind of picture it is.

/// How far into an access unit the first slice is looked for. Parameter sets and SEI stay far
/// below this; a buffer with no start code in it is not scanned to its end.
const SCAN_LIMIT: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NalSyntax {
    H264,
    H265,
}

impl NalSyntax {
    /// Whether the access unit in `data` (Annex B: NAL units after `00 00 01` start codes)
    /// begins with an IDR slice (H.264) or an IRAP slice (H.265: BLA, IDR, CRA). `None` when
    /// no slice starts within the first `SCAN_LIMIT` bytes.
    pub fn is_keyframe(self, data: &[u8]) -> Option<bool> {
        let data = &data[..data.len().min(SCAN_LIMIT)];
        let mut from = 0;
        while let Some(nal) = next_nal(data, from) {
            let header = *data.get(nal)?;
            match self {
                NalSyntax::H264 => {
                    // nal_unit_type 1..=5 are slices; 5 is an IDR picture's.
                    let kind = header & 0x1f;
                    if (1..=5).contains(&kind) {
                        return Some(kind == 5);
                    }
                }
                NalSyntax::H265 => {
                    // nal_unit_type 0..=31 are slices; 16..=23 are IRAP pictures'.
                    let kind = (header >> 1) & 0x3f;
                    if kind <= 31 {
                        return Some((16..=23).contains(&kind));
                    }
                }
            }
            from = nal + 1;
        }
        None
    }
}

/// Where the NAL unit after the next start code at or after `from` begins.
fn next_nal(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|at| from + at + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Access units as encoders write them: 4-byte start code before the first NAL unit,
    // delimiter (9 / 35), parameter sets, then the slice.
    const H264_IDR: &[u8] = &[
        0, 0, 0, 1, 0x09, 0xf0, // AUD
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, // SPS
        0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, // PPS
        0, 0, 1, 0x65, 0x88, 0x84, // IDR slice
    ];
    const H264_P: &[u8] = &[0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x41, 0x9a, 0x02];
    const H265_IDR: &[u8] = &[
        0, 0, 0, 1, 0x46, 0x01, 0x10, // AUD (35)
        0, 0, 0, 1, 0x40, 0x01, 0x0c, // VPS (32)
        0, 0, 0, 1, 0x42, 0x01, 0x01, // SPS (33)
        0, 0, 0, 1, 0x44, 0x01, 0xc1, // PPS (34)
        0, 0, 1, 0x26, 0x01, 0xaf, // IDR_W_RADL (19)
    ];
    const H265_TRAIL: &[u8] = &[0, 0, 0, 1, 0x02, 0x01, 0xd0]; // TRAIL_R (1)
    const H265_CRA: &[u8] = &[0, 0, 1, 0x2a, 0x01, 0xaf]; // CRA (21)

    #[test]
    fn h264_idr_and_p_slices() {
        assert_eq!(NalSyntax::H264.is_keyframe(H264_IDR), Some(true));
        assert_eq!(NalSyntax::H264.is_keyframe(H264_P), Some(false));
    }

    #[test]
    fn h265_irap_and_trailing_pictures() {
        assert_eq!(NalSyntax::H265.is_keyframe(H265_IDR), Some(true));
        assert_eq!(NalSyntax::H265.is_keyframe(H265_CRA), Some(true));
        assert_eq!(NalSyntax::H265.is_keyframe(H265_TRAIL), Some(false));
    }

    #[test]
    fn no_slice_says_nothing() {
        assert_eq!(NalSyntax::H264.is_keyframe(&[]), None);
        assert_eq!(NalSyntax::H264.is_keyframe(&[0, 0, 1]), None);
        assert_eq!(NalSyntax::H264.is_keyframe(&[0, 0, 0, 1, 0x67, 0x42]), None);
        assert_eq!(NalSyntax::H265.is_keyframe(&[0xff; 100]), None);
        // A slice beyond the scan limit is not looked for.
        let mut far = vec![0xffu8; SCAN_LIMIT];
        far.extend_from_slice(&[0, 0, 1, 0x65]);
        assert_eq!(NalSyntax::H264.is_keyframe(&far), None);
    }
}
