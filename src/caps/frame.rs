//! How one captured frame is described downstream: its interlacing flags, the plane offsets its
//! `GstVideoMeta` gives when the planes sit in several memories, and how many of a Bayer
//! buffer's bytes are picture. Pure translation from what the driver reported; the element
//! feeds it per frame.

use super::layout::{Framing, Layout};
use crate::v4l2;

/// The video flags of one dequeued buffer, from the field order the driver gives it and, for
/// plain INTERLACED, the one the stream's TV standard implies (`order`).
pub fn field_flags(field: u32, order: gst_video::VideoFieldOrder) -> gst::BufferFlags {
    use gst_video::VideoBufferFlags as F;
    let flags = match field {
        v4l2::V4L2_FIELD_INTERLACED_TB => F::INTERLACED | F::TFF,
        v4l2::V4L2_FIELD_INTERLACED if order == gst_video::VideoFieldOrder::TopFieldFirst => {
            F::INTERLACED | F::TFF
        }
        v4l2::V4L2_FIELD_INTERLACED_BT | v4l2::V4L2_FIELD_INTERLACED => F::INTERLACED,
        // `alternate`: each buffer is one field.
        v4l2::V4L2_FIELD_TOP => F::TOP_FIELD,
        v4l2::V4L2_FIELD_BOTTOM => F::BOTTOM_FIELD,
        _ => F::empty(),
    };
    // `from_bits_retain`: the video flags are bits gst::BufferFlags does not name.
    gst::BufferFlags::from_bits_retain(flags.bits())
}

/// Plane offsets for GstVideoMeta, given the sizes of the buffer's memories in order. With one
/// memory per plane they count from the start of the buffer across the memories, so they
/// follow the sizes the driver actually filled.
pub fn meta_offsets(layout: &Layout, memory_sizes: impl IntoIterator<Item = usize>) -> [usize; 4] {
    if layout.n_memories <= 1 {
        return layout.offsets;
    }
    let mut starts = [0usize; 8];
    let mut at = 0usize;
    for (start, size) in starts.iter_mut().zip(memory_sizes) {
        *start = at;
        at = at.saturating_add(size);
    }
    let mut offsets = [0usize; 4];
    for (p, offset) in offsets.iter_mut().enumerate().take(layout.n_planes) {
        let mem = layout.memory_plane_of[p];
        let first_in_mem = (0..p)
            .find(|&q| layout.memory_plane_of[q] == mem)
            .unwrap_or(p);
        let within = layout.offsets[p].saturating_sub(layout.offsets[first_in_mem]);
        *offset = starts.get(mem).copied().unwrap_or(0).saturating_add(within);
    }
    offsets
}

/// How many bytes of a buffer of `size` bytes downstream should see: a driver may report more
/// bytes than a Bayer frame's rows hold, and `bayer2rgb` reads exactly the rows. `None` keeps
/// the buffer as it is.
pub fn picture_bytes(framing: &Framing, size: usize) -> Option<usize> {
    match *framing {
        Framing::Bayer {
            height,
            packed_stride,
            stride,
        } => {
            let rows = stride.max(packed_stride).saturating_mul(height);
            (size > rows).then_some(rows)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst_video::VideoFieldOrder;

    #[test]
    fn field_flags_follow_the_driver_and_the_standard() {
        use gst_video::VideoBufferFlags as F;
        let bits = |f: F| gst::BufferFlags::from_bits_retain(f.bits());
        assert_eq!(
            field_flags(v4l2::V4L2_FIELD_NONE, VideoFieldOrder::Unknown),
            gst::BufferFlags::empty()
        );
        assert_eq!(
            field_flags(v4l2::V4L2_FIELD_INTERLACED_TB, VideoFieldOrder::Unknown),
            bits(F::INTERLACED | F::TFF)
        );
        assert_eq!(
            field_flags(
                v4l2::V4L2_FIELD_INTERLACED_BT,
                VideoFieldOrder::TopFieldFirst
            ),
            bits(F::INTERLACED)
        );
        // Plain INTERLACED: the standard decides (PAL top first, NTSC bottom first).
        assert_eq!(
            field_flags(v4l2::V4L2_FIELD_INTERLACED, VideoFieldOrder::TopFieldFirst),
            bits(F::INTERLACED | F::TFF)
        );
        assert_eq!(
            field_flags(
                v4l2::V4L2_FIELD_INTERLACED,
                VideoFieldOrder::BottomFieldFirst
            ),
            bits(F::INTERLACED)
        );
        assert_eq!(
            field_flags(v4l2::V4L2_FIELD_TOP, VideoFieldOrder::Unknown),
            bits(F::TOP_FIELD)
        );
        assert_eq!(
            field_flags(v4l2::V4L2_FIELD_BOTTOM, VideoFieldOrder::Unknown),
            bits(F::BOTTOM_FIELD)
        );
    }

    fn layout(n_planes: usize, n_memories: usize, offsets: [usize; 4], mem: [usize; 4]) -> Layout {
        Layout {
            n_planes,
            n_memories,
            offsets,
            strides: [0; 4],
            memory_plane_of: mem,
            size: 0,
        }
    }

    #[test]
    fn offsets_of_one_memory_are_the_layouts() {
        let l = layout(2, 1, [0, 640 * 360, 0, 0], [0, 0, 0, 0]);
        assert_eq!(meta_offsets(&l, [999]), [0, 640 * 360, 0, 0]);
    }

    #[test]
    fn offsets_across_memories_follow_the_filled_sizes() {
        // NM12: Y in memory 0, UV in memory 1; the driver filled 1000 bytes of memory 0.
        let l = layout(2, 2, [0, 4096, 0, 0], [0, 1, 0, 0]);
        assert_eq!(meta_offsets(&l, [1000, 500]), [0, 1000, 0, 0]);
        // YM12-like: three memories.
        let l = layout(3, 3, [0, 100, 150, 0], [0, 1, 2, 0]);
        assert_eq!(meta_offsets(&l, [100, 50, 50]), [0, 100, 150, 0]);
        // Sizes that would overflow saturate instead of wrapping.
        assert_eq!(
            meta_offsets(&l, [usize::MAX, 1, 1]),
            [0, usize::MAX, usize::MAX, 0]
        );
    }

    #[test]
    fn bayer_buffers_are_trimmed_to_their_rows() {
        let bayer = Framing::Bayer {
            height: 2,
            stride: 8,
            packed_stride: 8,
        };
        assert_eq!(picture_bytes(&bayer, 20), Some(16));
        assert_eq!(picture_bytes(&bayer, 16), None);
        assert_eq!(picture_bytes(&bayer, 10), None);
        let huge = Framing::Bayer {
            height: usize::MAX,
            stride: 8,
            packed_stride: 8,
        };
        assert_eq!(picture_bytes(&huge, 20), None);
        let jpeg = Framing::Compressed {
            delta_units: false,
            syntax: None,
        };
        assert_eq!(picture_bytes(&jpeg, 20), None);
    }
}
