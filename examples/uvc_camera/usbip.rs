//! The USB/IP wire protocol (the kernel's Documentation/usb/usbip_protocol.rst), device side:
//! what `vhci-hcd` sends over the socket it was given (`CMD_SUBMIT`, `CMD_UNLINK`) and what it
//! expects back (`RET_SUBMIT`, `RET_UNLINK`). Every field is big-endian; every header is 48 bytes.
//! Knows nothing of UVC.

use std::io::{self, Read, Write};

pub const CMD_SUBMIT: u32 = 1;
pub const CMD_UNLINK: u32 = 2;
const RET_SUBMIT: u32 = 3;
const RET_UNLINK: u32 = 4;
pub const DIR_IN: u32 = 1;
const HEADER: usize = 48;

/// What `-EPIPE` tells the host: the endpoint stalled (a control request the device refuses).
pub const EPIPE: i32 = -32;
/// The status of an URB the host unlinked while it was still pending.
pub const ECONNRESET: i32 = -104;

/// One request from the host.
#[derive(Debug)]
pub enum Command {
    Submit(Submit),
    Unlink { seqnum: u32, victim: u32 },
}

/// A `CMD_SUBMIT`: one URB.
#[derive(Debug)]
pub struct Submit {
    pub seqnum: u32,
    pub ep: u32,
    pub direction: u32,
    /// How many bytes the host wants (IN) or sent (OUT).
    pub length: usize,
    /// The setup packet of a control transfer (endpoint 0).
    pub setup: [u8; 8],
    /// The bytes of an OUT transfer.
    pub data: Vec<u8>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the next command; `Ok(None)` when the host closed the connection (a detach).
pub fn read_command(r: &mut impl Read) -> io::Result<Option<Command>> {
    let mut h = [0u8; HEADER];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (command, seqnum, direction, ep) = (be32(&h, 0), be32(&h, 4), be32(&h, 12), be32(&h, 16));
    match command {
        CMD_SUBMIT => {
            let length = be32(&h, 24) as usize;
            let packets = be32(&h, 32);
            let mut setup = [0u8; 8];
            setup.copy_from_slice(&h[40..48]);
            let mut data = Vec::new();
            if direction != DIR_IN && length > 0 {
                data.resize(length, 0);
                r.read_exact(&mut data)?;
            }
            // Isochronous descriptors follow for ISO URBs; this device has no ISO endpoint, and
            // the kernel sends 0 or 0xffffffff for the others.
            if packets != 0 && packets != u32::MAX {
                let mut iso = vec![0u8; packets as usize * 16];
                r.read_exact(&mut iso)?;
            }
            Ok(Some(Command::Submit(Submit {
                seqnum,
                ep,
                direction,
                length,
                setup,
                data,
            })))
        }
        CMD_UNLINK => Ok(Some(Command::Unlink {
            seqnum,
            victim: be32(&h, 20),
        })),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown USB/IP command {other:#x}"),
        )),
    }
}

/// A `RET_SUBMIT` for `submit`: `status` 0 or a negative errno, and for an IN transfer the
/// bytes (never more than the host asked for: vhci drops the connection otherwise).
pub fn write_reply(
    w: &mut impl Write,
    submit: &Submit,
    status: i32,
    data: &[u8],
) -> io::Result<()> {
    let data = if submit.direction == DIR_IN {
        &data[..data.len().min(submit.length)]
    } else {
        &[][..]
    };
    let actual = if submit.direction == DIR_IN {
        data.len()
    } else if status == 0 {
        submit.length
    } else {
        0
    };
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&RET_SUBMIT.to_be_bytes());
    h[4..8].copy_from_slice(&submit.seqnum.to_be_bytes());
    h[20..24].copy_from_slice(&status.to_be_bytes());
    h[24..28].copy_from_slice(&(actual as u32).to_be_bytes());
    // start_frame, number_of_packets, error_count: 0 for non-isochronous transfers.
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    w.write_all(&out)
}

/// A `RET_UNLINK` for the unlink `seqnum`.
pub fn write_unlinked(w: &mut impl Write, seqnum: u32, status: i32) -> io::Result<()> {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&RET_UNLINK.to_be_bytes());
    h[4..8].copy_from_slice(&seqnum.to_be_bytes());
    h[20..24].copy_from_slice(&status.to_be_bytes());
    w.write_all(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_submit_reads_back_and_its_reply_is_cut_to_the_request() {
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(&CMD_SUBMIT.to_be_bytes());
        h[4..8].copy_from_slice(&7u32.to_be_bytes());
        h[12..16].copy_from_slice(&DIR_IN.to_be_bytes());
        h[24..28].copy_from_slice(&18u32.to_be_bytes());
        h[40..48].copy_from_slice(&[0x80, 6, 0, 1, 0, 0, 18, 0]);
        let Some(Command::Submit(s)) = read_command(&mut &h[..]).unwrap() else {
            panic!("a submit")
        };
        assert_eq!((s.seqnum, s.ep, s.length, s.setup[1]), (7, 0, 18, 6));
        let mut out = Vec::new();
        write_reply(&mut out, &s, 0, &[1u8; 64]).unwrap();
        assert_eq!(out.len(), HEADER + 18);
        assert_eq!(be32(&out, 0), RET_SUBMIT);
        assert_eq!(be32(&out, 24), 18);
        assert!(read_command(&mut &[][..]).unwrap().is_none());
    }
}
