//! A baseline JPEG encoder for pictures made of flat 8x8 blocks, which is all the camera draws:
//! every block's DCT is its DC term alone, so a frame is one DC difference and an end-of-block
//! per block. YCbCr 4:2:2 (two luma blocks per MCU, as webcams send), grey chroma. Cheap enough
//! to make 640x360 frames at 30 fps in an emulated machine, and a real JPEG for uvcvideo and
//! `jpegdec` alike.

/// Annex K.3's luminance DC table: code lengths (count per length 1..=16) for categories 0..=11.
const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
/// An AC table of one symbol, end-of-block (0x00), coded as the single bit 0.
const AC_BITS: [u8; 16] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// Every coefficient quantised by 8, so a flat block of value v has DC v - 128.
const QUANT: u8 = 8;

/// (code, length) per symbol, canonical from `bits` (symbols 0, 1, 2, ... in order).
fn canonical(bits: &[u8; 16]) -> Vec<(u16, u8)> {
    let mut codes = Vec::new();
    let mut code = 0u16;
    for (i, &count) in bits.iter().enumerate() {
        for _ in 0..count {
            codes.push((code, i as u8 + 1));
            code += 1;
        }
        code <<= 1;
    }
    codes
}

struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl Bits {
    fn put(&mut self, value: u16, len: u8) {
        for i in (0..len).rev() {
            self.acc = self.acc << 1 | u32::from(value >> i & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = self.acc as u8;
                self.out.push(byte);
                // A 0xFF in entropy-coded data is followed by a stuffed zero.
                if byte == 0xff {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xff, marker]);
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A JPEG of `width` x `height` whose 8x8 luma block (bx, by) is `block(bx, by)` all over.
pub fn encode(width: u16, height: u16, block: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8];
    segment(&mut out, 0xe0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[QUANT; 64]);
    segment(&mut out, 0xdb, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x21, 0, 2, 0x11, 0, 3, 0x11, 0]);
    segment(&mut out, 0xc0, &sof);
    let mut dht = vec![0x00];
    dht.extend_from_slice(&DC_BITS);
    dht.extend(0..12u8);
    dht.push(0x10);
    dht.extend_from_slice(&AC_BITS);
    dht.push(0x00);
    segment(&mut out, 0xc4, &dht);
    segment(&mut out, 0xda, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

    let dc = canonical(&DC_BITS);
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    let code_block = |bits: &mut Bits, pred: &mut i32, value: i32| {
        let diff = value - *pred;
        *pred = value;
        let category = (32 - diff.unsigned_abs().leading_zeros()) as u8;
        let (code, len) = dc[usize::from(category)];
        bits.put(code, len);
        if category > 0 {
            let magnitude = if diff < 0 {
                diff + (1 << category) - 1
            } else {
                diff
            };
            bits.put(magnitude as u16, category);
        }
        // End of block: no AC coefficient.
        bits.put(0, 1);
    };
    let (mut y_pred, mut cb_pred, mut cr_pred) = (0, 0, 0);
    let (mcus_x, rows) = (
        usize::from(width).div_ceil(16),
        usize::from(height).div_ceil(8),
    );
    for by in 0..rows {
        for mx in 0..mcus_x {
            for bx in [2 * mx, 2 * mx + 1] {
                code_block(&mut bits, &mut y_pred, i32::from(block(bx, by)) - 128);
            }
            code_block(&mut bits, &mut cb_pred, 0);
            code_block(&mut bits, &mut cr_pred, 0);
        }
    }
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&[0xff, 0xd9]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dc_codes_are_annex_k() {
        let dc = canonical(&DC_BITS);
        assert_eq!(dc[0], (0b00, 2));
        assert_eq!(dc[1], (0b010, 3));
        assert_eq!(dc[5], (0b110, 3));
        assert_eq!(dc[6], (0b1110, 4));
        assert_eq!(dc[11], (0b1_1111_1110, 9));
    }

    #[test]
    fn stuffing_follows_every_ff() {
        let mut bits = Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        bits.put(0xff, 8);
        bits.put(0b1, 1);
        assert_eq!(bits.finish(), vec![0xff, 0x00, 0xff, 0x00]);
    }
}
