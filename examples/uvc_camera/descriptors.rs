//! A UVC 1.1 camera's USB descriptors: device, configuration (interface association, the
//! VideoControl interface with camera terminal, processing unit and output terminal, the
//! VideoStreaming interface with its formats, frames and one bulk IN endpoint) and strings.
//! A single alternate setting on the streaming interface makes uvcvideo stream over bulk.

/// Processing unit entity id, the one VideoControl requests name for brightness and contrast.
pub const PROCESSING_UNIT: u8 = 2;
pub const STREAMING_INTERFACE: u8 = 1;
pub const BULK_IN: u8 = 0x81;
/// One payload per bulk URB: uvcvideo makes each URB min(ceil(this / 512), 32) x 512 bytes.
pub const MAX_PAYLOAD: u32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Yuy2,
    Mjpeg,
}

/// One size of a format.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub width: u16,
    pub height: u16,
}

/// One format and its sizes, each at 30 and 15 fps.
#[derive(Debug, Clone)]
pub struct Format {
    pub kind: Kind,
    pub sizes: Vec<Size>,
}

/// Frame intervals offered for every size, in 100 ns units: 30 and 15 fps.
pub const INTERVALS: [u32; 2] = [333_333, 666_666];

impl Format {
    /// The most bytes a frame of `size` takes: exact for YUY2 (uvcvideo drops any other size),
    /// a bound for JPEG.
    pub fn frame_bytes(&self, size: Size) -> u32 {
        let pixels = u32::from(size.width) * u32::from(size.height);
        match self.kind {
            Kind::Yuy2 => pixels * 2,
            Kind::Mjpeg => pixels * 2,
        }
    }
}

/// Who the camera says it is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub vendor: u16,
    pub product: u16,
    pub manufacturer: String,
    pub name: String,
    pub serial: String,
}

pub fn device(id: &Identity) -> Vec<u8> {
    let mut d = vec![18, 1];
    d.extend_from_slice(&0x0200u16.to_le_bytes());
    // Miscellaneous class, common subclass, interface association: as UVC cameras say.
    d.extend_from_slice(&[0xef, 0x02, 0x01, 64]);
    d.extend_from_slice(&id.vendor.to_le_bytes());
    d.extend_from_slice(&id.product.to_le_bytes());
    d.extend_from_slice(&0x0100u16.to_le_bytes());
    d.extend_from_slice(&[1, 2, 3, 1]);
    d
}

/// String descriptor `index` in US English; `None` for one the camera does not have.
pub fn string(id: &Identity, index: u8) -> Option<Vec<u8>> {
    let text = match index {
        0 => return Some(vec![4, 3, 0x09, 0x04]),
        1 => &id.manufacturer,
        2 => &id.name,
        3 => &id.serial,
        _ => return None,
    };
    let mut d = vec![0, 3];
    for unit in text.encode_utf16() {
        d.extend_from_slice(&unit.to_le_bytes());
    }
    d[0] = d.len().min(255) as u8;
    Some(d)
}

fn push_u16(d: &mut Vec<u8>, v: u16) {
    d.extend_from_slice(&v.to_le_bytes());
}

fn push_u32(d: &mut Vec<u8>, v: u32) {
    d.extend_from_slice(&v.to_le_bytes());
}

/// The YUY2 GUID, as UVC's uncompressed format descriptor carries it.
const GUID_YUY2: [u8; 16] = [
    b'Y', b'U', b'Y', b'2', 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

pub fn configuration(formats: &[Format]) -> Vec<u8> {
    // VideoControl, class-specific part.
    let mut vc = Vec::new();
    // Header: bcdUVC 1.1, total length (patched), clock 48 MHz, one streaming interface.
    vc.extend_from_slice(&[13, 0x24, 0x01]);
    push_u16(&mut vc, 0x0110);
    push_u16(&mut vc, 0);
    push_u32(&mut vc, 48_000_000);
    vc.extend_from_slice(&[1, STREAMING_INTERFACE]);
    // Camera terminal 1: no camera controls.
    vc.extend_from_slice(&[18, 0x24, 0x02, 1]);
    push_u16(&mut vc, 0x0201);
    vc.extend_from_slice(&[0, 0]);
    vc.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    vc.extend_from_slice(&[3, 0, 0, 0]);
    // Processing unit 2 from terminal 1: brightness (bit 0) and contrast (bit 1).
    vc.extend_from_slice(&[12, 0x24, 0x05, PROCESSING_UNIT, 1]);
    push_u16(&mut vc, 0);
    vc.extend_from_slice(&[2, 0x03, 0x00, 0, 0]);
    // Output terminal 3 (USB streaming) from unit 2.
    vc.extend_from_slice(&[9, 0x24, 0x03, 3]);
    push_u16(&mut vc, 0x0101);
    vc.extend_from_slice(&[0, PROCESSING_UNIT, 0]);
    let vc_len = vc.len() as u16;
    vc[5..7].copy_from_slice(&vc_len.to_le_bytes());

    // VideoStreaming, class-specific part.
    let mut vs = Vec::new();
    let n = formats.len() as u8;
    vs.extend_from_slice(&[13 + n, 0x24, 0x01, n]);
    push_u16(&mut vs, 0);
    vs.extend_from_slice(&[BULK_IN, 0, 3, 0, 0, 0, 1]);
    vs.extend(std::iter::repeat_n(0u8, n as usize));
    for (f, format) in formats.iter().enumerate() {
        let index = f as u8 + 1;
        let frames = format.sizes.len() as u8;
        match format.kind {
            Kind::Yuy2 => {
                vs.extend_from_slice(&[27, 0x24, 0x04, index, frames]);
                vs.extend_from_slice(&GUID_YUY2);
                vs.extend_from_slice(&[16, 1, 0, 0, 0, 0]);
            }
            Kind::Mjpeg => vs.extend_from_slice(&[11, 0x24, 0x06, index, frames, 0, 1, 0, 0, 0, 0]),
        }
        let subtype = if format.kind == Kind::Yuy2 {
            0x05
        } else {
            0x07
        };
        for (s, &size) in format.sizes.iter().enumerate() {
            let bytes = format.frame_bytes(size);
            vs.extend_from_slice(&[
                26 + 4 * INTERVALS.len() as u8,
                0x24,
                subtype,
                s as u8 + 1,
                0,
            ]);
            push_u16(&mut vs, size.width);
            push_u16(&mut vs, size.height);
            push_u32(&mut vs, bytes * 8 * 15);
            push_u32(&mut vs, bytes * 8 * 30);
            push_u32(&mut vs, bytes);
            push_u32(&mut vs, INTERVALS[0]);
            vs.push(INTERVALS.len() as u8);
            for interval in INTERVALS {
                push_u32(&mut vs, interval);
            }
        }
    }
    let vs_len = vs.len() as u16;
    vs[4..6].copy_from_slice(&vs_len.to_le_bytes());

    let mut c = vec![9, 2, 0, 0, 2, 1, 0, 0x80, 250];
    // Interface association: both interfaces are one video function.
    c.extend_from_slice(&[8, 0x0b, 0, 2, 0x0e, 0x03, 0x00, 2]);
    c.extend_from_slice(&[9, 4, 0, 0, 0, 0x0e, 0x01, 0x00, 2]);
    c.extend_from_slice(&vc);
    c.extend_from_slice(&[9, 4, STREAMING_INTERFACE, 0, 1, 0x0e, 0x02, 0x00, 0]);
    c.extend_from_slice(&vs);
    c.extend_from_slice(&[7, 5, BULK_IN, 0x02]);
    push_u16(&mut c, 512);
    c.push(0);
    let total = c.len() as u16;
    c[2..4].copy_from_slice(&total.to_le_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every descriptor's length byte walks the configuration to its exact end.
    #[test]
    fn the_configuration_walks_by_its_lengths() {
        let formats = [
            Format {
                kind: Kind::Yuy2,
                sizes: vec![
                    Size {
                        width: 160,
                        height: 120,
                    },
                    Size {
                        width: 320,
                        height: 180,
                    },
                ],
            },
            Format {
                kind: Kind::Mjpeg,
                sizes: vec![Size {
                    width: 640,
                    height: 360,
                }],
            },
        ];
        let c = configuration(&formats);
        assert_eq!(u16::from_le_bytes([c[2], c[3]]) as usize, c.len());
        let mut at = 0;
        let mut frames = 0;
        while at < c.len() {
            let len = c[at] as usize;
            assert!(len >= 2, "zero-length descriptor at {at}");
            if c[at + 1] == 0x24 && (c[at + 2] == 0x05 || c[at + 2] == 0x07) && len >= 26 {
                frames += 1;
            }
            at += len;
        }
        assert_eq!(at, c.len());
        assert_eq!(frames, 3, "three frame descriptors");
    }
}
