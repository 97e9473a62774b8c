//! What the camera shows: a bar moving 16 pixels a frame over a flat background, and in the
//! top-left corner the frame number as 16 blocks of 8x8 pixels (bit 15 first; white is 1), which
//! a test reads back from the luma of a captured frame. Everything is drawn in whole 8x8 blocks,
//! so JPEG carries it exactly and cheaply (`jpeg.rs`). Brightness and contrast change the
//! background and the bar.

use crate::descriptors::Size;

/// Number blocks: 16 bits, 8x8 pixels each, along the top rows.
pub const BITS: usize = 16;
pub const BLOCK: usize = 8;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// The picture's settings: brightness -64..=64 (0 default), contrast 0..=200 (100 default).
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub brightness: i16,
    pub contrast: u16,
}

fn adjust(base: i32, look: Look) -> u8 {
    let y = 128 + (base - 128) * i32::from(look.contrast) / 100 + i32::from(look.brightness);
    y.clamp(16, 235) as u8
}

/// The value of 8x8 block (bx, by) of frame `number` in a picture `width` pixels wide.
fn block(width: usize, number: u64, look: Look, bx: usize, by: usize) -> u8 {
    if by == 0 && bx < BITS {
        return if number >> (BITS - 1 - bx) & 1 == 1 {
            WHITE
        } else {
            BLACK
        };
    }
    let bar_blocks = (width / 64).max(1) * 2;
    let bar_x = (number as usize * 2) % (width / BLOCK).max(1);
    let on_bar = by > 0 && (bx + width / BLOCK - bar_x) % (width / BLOCK).max(1) < bar_blocks;
    adjust(if on_bar { 200 } else { 96 }, look)
}

/// The luma of frame `number`, row by row (`width` bytes a row).
pub fn luma(size: Size, number: u64, look: Look) -> Vec<u8> {
    let (w, h) = (usize::from(size.width), usize::from(size.height));
    let mut y = vec![0u8; w * h];
    for (r, row) in y.chunks_exact_mut(w).enumerate() {
        for (bx, px) in row.chunks_mut(BLOCK).enumerate() {
            px.fill(block(w, number, look, bx, r / BLOCK));
        }
    }
    y
}

#[cfg(test)]
/// The frame number a picture's luma carries (rows of `width` bytes, `stride` apart).
pub fn read_number(luma: &[u8], stride: usize) -> u16 {
    let mut n = 0u16;
    for bit in 0..BITS {
        // The block's centre, away from JPEG's ringing at its edges.
        let at = (BLOCK / 2) * stride + bit * BLOCK + BLOCK / 2;
        n = n << 1 | u16::from(luma.get(at).is_some_and(|&v| v > 128));
    }
    n
}

/// Frame `number` as YUY2.
pub fn yuy2(size: Size, number: u64, look: Look) -> Vec<u8> {
    let y = luma(size, number, look);
    let mut out = Vec::with_capacity(y.len() * 2);
    for pair in y.chunks_exact(2) {
        out.extend_from_slice(&[pair[0], 128, pair[1], 128]);
    }
    out
}

/// Frame `number` as a baseline JPEG (4:2:2), as a UVC camera's MJPEG payload.
pub fn jpeg(size: Size, number: u64, look: Look) -> Vec<u8> {
    let w = usize::from(size.width);
    crate::jpeg::encode(size.width, size.height, |bx, by| {
        block(w, number, look, bx, by)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_reads_back_from_yuy2_luma() {
        let size = Size {
            width: 160,
            height: 120,
        };
        let look = Look {
            brightness: 0,
            contrast: 100,
        };
        for n in [0u64, 1, 0x1234, 65535, 65536 + 7] {
            let frame = yuy2(size, n, look);
            let luma: Vec<u8> = frame.iter().step_by(2).copied().collect();
            assert_eq!(u64::from(read_number(&luma, 160)), n & 0xffff);
        }
    }

    #[test]
    fn brightness_moves_the_background() {
        let size = Size {
            width: 160,
            height: 120,
        };
        let dark = luma(
            size,
            0,
            Look {
                brightness: -40,
                contrast: 100,
            },
        );
        let light = luma(
            size,
            0,
            Look {
                brightness: 40,
                contrast: 100,
            },
        );
        let at = 100 * 160 + 80;
        assert_eq!(i32::from(light[at]) - i32::from(dark[at]), 80);
    }

    #[test]
    fn a_jpeg_starts_and_ends_as_one() {
        let j = jpeg(
            Size {
                width: 320,
                height: 180,
            },
            5,
            Look {
                brightness: 0,
                contrast: 100,
            },
        );
        assert_eq!(&j[..2], &[0xff, 0xd8]);
        assert_eq!(&j[j.len() - 2..], &[0xff, 0xd9]);
    }
}
