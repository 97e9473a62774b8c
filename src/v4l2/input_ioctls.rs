//! The input and analogue TV standard ioctls of a capture node: which video inputs it has
//! (`VIDIOC_ENUMINPUT`: camera, tuner, S-Video, HDMI ...), which one it captures from
//! (`VIDIOC_G_INPUT` / `S_INPUT`), the standards (norms) the current input supports
//! (`VIDIOC_ENUMSTD`), and the one it uses or detects (`VIDIOC_S_STD`, `QUERYSTD`; `G_STD` is in
//! `format_ioctls.rs`, which needs it for the field order). Its own raw structures, with their
//! size asserts, and one safe function per ioctl as in `device.rs`. Knows nothing of GStreamer.

#![allow(non_camel_case_types)]

use super::device::{Device, c_string, retry};
use super::error::Result;
use super::format::Fract;
use super::sys::v4l2_fract;
use nix::errno::Errno;
use std::mem::size_of;

/// `v4l2_input.type`.
pub const V4L2_INPUT_TYPE_TUNER: u32 = 1;
pub const V4L2_INPUT_TYPE_CAMERA: u32 = 2;
pub const V4L2_INPUT_TYPE_TOUCH: u32 = 3;

/// `v4l2_input.status`: what the input receives (only meaningful for the current input).
pub const V4L2_IN_ST_NO_POWER: u32 = 0x0000_0001;
pub const V4L2_IN_ST_NO_SIGNAL: u32 = 0x0000_0002;
pub const V4L2_IN_ST_NO_COLOR: u32 = 0x0000_0004;
pub const V4L2_IN_ST_HFLIP: u32 = 0x0000_0010;
pub const V4L2_IN_ST_VFLIP: u32 = 0x0000_0020;
pub const V4L2_IN_ST_NO_H_LOCK: u32 = 0x0000_0100;
pub const V4L2_IN_ST_COLOR_KILL: u32 = 0x0000_0200;
pub const V4L2_IN_ST_NO_V_LOCK: u32 = 0x0000_0400;
pub const V4L2_IN_ST_NO_STD_LOCK: u32 = 0x0000_0800;
pub const V4L2_IN_ST_NO_SYNC: u32 = 0x0001_0000;
pub const V4L2_IN_ST_NO_EQU: u32 = 0x0002_0000;
pub const V4L2_IN_ST_NO_CARRIER: u32 = 0x0004_0000;
pub const V4L2_IN_ST_MACROVISION: u32 = 0x0100_0000;
pub const V4L2_IN_ST_NO_ACCESS: u32 = 0x0200_0000;
pub const V4L2_IN_ST_VTR: u32 = 0x0400_0000;

/// The status bits that mean no usable picture arrives.
pub const V4L2_IN_ST_NO_PICTURE: u32 = V4L2_IN_ST_NO_POWER
    | V4L2_IN_ST_NO_SIGNAL
    | V4L2_IN_ST_NO_H_LOCK
    | V4L2_IN_ST_NO_V_LOCK
    | V4L2_IN_ST_NO_SYNC
    | V4L2_IN_ST_NO_CARRIER;

/// `v4l2_input.capabilities`.
pub const V4L2_IN_CAP_DV_TIMINGS: u32 = 0x0000_0002;
pub const V4L2_IN_CAP_STD: u32 = 0x0000_0004;
pub const V4L2_IN_CAP_NATIVE_SIZE: u32 = 0x0000_0008;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(super) struct v4l2_input {
    pub index: u32,
    pub name: [u8; 32],
    pub type_: u32,
    pub audioset: u32,
    pub tuner: u32,
    pub std: u64,
    pub status: u32,
    pub capabilities: u32,
    pub reserved: [u32; 3],
}
const _: () = assert!(size_of::<v4l2_input>() == 80);
const _: () = assert!(std::mem::offset_of!(v4l2_input, std) == 48);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(super) struct v4l2_standard {
    pub index: u32,
    pub id: u64,
    pub name: [u8; 24],
    pub frameperiod: v4l2_fract,
    pub framelines: u32,
    pub reserved: [u32; 4],
}
const _: () = assert!(size_of::<v4l2_standard>() == 72);
const _: () = assert!(std::mem::offset_of!(v4l2_standard, frameperiod) == 40);

nix::ioctl_write_ptr!(vidioc_s_std, b'V', 24, u64);
nix::ioctl_readwrite!(vidioc_enumstd, b'V', 25, v4l2_standard);
nix::ioctl_readwrite!(vidioc_enuminput, b'V', 26, v4l2_input);
nix::ioctl_read!(vidioc_g_input, b'V', 38, i32);
nix::ioctl_readwrite!(vidioc_s_input, b'V', 39, i32);
nix::ioctl_read!(vidioc_querystd, b'V', 63, u64);

/// One video input, as `VIDIOC_ENUMINPUT` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub index: u32,
    pub name: String,
    /// `V4L2_INPUT_TYPE_*`.
    pub kind: u32,
    /// Which audio inputs go with it (a bit per audio input); 0: none.
    pub audioset: u32,
    /// The tuner of a `V4L2_INPUT_TYPE_TUNER` input.
    pub tuner: u32,
    /// The analogue TV standards it supports (`V4L2_STD_*` bits); 0: none (not analogue video).
    pub std: u64,
    /// `V4L2_IN_ST_*`: only meaningful for the current input.
    pub status: u32,
    /// `V4L2_IN_CAP_*`.
    pub capabilities: u32,
}

impl Input {
    fn from_raw(raw: &v4l2_input) -> Input {
        Input {
            index: raw.index,
            name: c_string(&raw.name),
            kind: raw.type_,
            audioset: raw.audioset,
            tuner: raw.tuner,
            std: raw.std,
            status: raw.status,
            capabilities: raw.capabilities,
        }
    }

    /// The input takes analogue TV standards (`VIDIOC_S_STD`).
    pub fn has_std(&self) -> bool {
        self.capabilities & V4L2_IN_CAP_STD != 0 || self.std != 0
    }

    pub fn has_dv_timings(&self) -> bool {
        self.capabilities & V4L2_IN_CAP_DV_TIMINGS != 0
    }
}

/// One analogue TV standard, as `VIDIOC_ENUMSTD` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standard {
    /// Its `V4L2_STD_*` bits: one standard or a group of them ("PAL" is eight).
    pub id: u64,
    pub name: String,
    /// Seconds per frame (1/25 for PAL, 1001/30000 for NTSC).
    pub frame_period: Fract,
    /// Lines per frame, both fields and the blanking: 625 or 525.
    pub frame_lines: u32,
}

/// The errnos of a driver without the ioctl, or of an input without standards (vivid's
/// webcam and HDMI inputs answer `ENODATA`).
fn none_here(errno: Errno) -> bool {
    matches!(errno, Errno::ENOTTY | Errno::ENODATA)
}

impl Device {
    /// `VIDIOC_ENUMINPUT` of every input; empty for a driver without inputs to choose.
    pub fn enum_inputs(&self) -> Result<Vec<Input>> {
        let mut inputs = Vec::new();
        for index in 0u32.. {
            let mut raw = v4l2_input {
                index,
                ..Default::default()
            };
            // SAFETY: `raw` is a valid v4l2_input the kernel fills in place.
            match retry(|| unsafe { vidioc_enuminput(self.raw(), &mut raw) }) {
                Ok(_) => {}
                // EINVAL ends the list.
                Err(Errno::EINVAL) => break,
                Err(errno) if none_here(errno) && index == 0 => break,
                Err(errno) => return Err(self.err("VIDIOC_ENUMINPUT", errno)),
            }
            inputs.push(Input::from_raw(&raw));
        }
        Ok(inputs)
    }

    /// `VIDIOC_ENUMINPUT` of one input: its status is current (vivid and most drivers fill
    /// it in for the current input only).
    pub fn enum_input(&self, index: u32) -> Result<Input> {
        let mut raw = v4l2_input {
            index,
            ..Default::default()
        };
        // SAFETY: `raw` is a valid v4l2_input the kernel fills in place.
        retry(|| unsafe { vidioc_enuminput(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_ENUMINPUT", e))?;
        Ok(Input::from_raw(&raw))
    }

    /// `VIDIOC_G_INPUT`: the input it captures from.
    pub fn g_input(&self) -> Result<u32> {
        let mut raw: i32 = 0;
        // SAFETY: the kernel writes one int.
        retry(|| unsafe { vidioc_g_input(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_G_INPUT", e))?;
        u32::try_from(raw).map_err(|_| self.err("VIDIOC_G_INPUT", Errno::ERANGE))
    }

    /// `VIDIOC_S_INPUT`. Drivers refuse (`EBUSY`) while buffers are allocated.
    pub fn s_input(&self, index: u32) -> Result<()> {
        let mut raw =
            i32::try_from(index).map_err(|_| self.err("VIDIOC_S_INPUT", Errno::EINVAL))?;
        // SAFETY: the kernel reads (and may write back) one int.
        retry(|| unsafe { vidioc_s_input(self.raw(), &mut raw) })
            .map_err(|e| self.err("VIDIOC_S_INPUT", e))?;
        Ok(())
    }

    /// `VIDIOC_ENUMSTD`: the standards of the current input; empty for an input without any.
    pub fn enum_std(&self) -> Result<Vec<Standard>> {
        let mut standards = Vec::new();
        for index in 0u32.. {
            let mut raw = v4l2_standard {
                index,
                ..Default::default()
            };
            // SAFETY: `raw` is a valid v4l2_standard the kernel fills in place.
            match retry(|| unsafe { vidioc_enumstd(self.raw(), &mut raw) }) {
                Ok(_) => {}
                Err(Errno::EINVAL) => break,
                Err(errno) if none_here(errno) => break,
                Err(errno) => return Err(self.err("VIDIOC_ENUMSTD", errno)),
            }
            standards.push(Standard {
                id: raw.id,
                name: c_string(&raw.name),
                frame_period: Fract::new(raw.frameperiod.numerator, raw.frameperiod.denominator),
                frame_lines: raw.framelines,
            });
        }
        Ok(standards)
    }

    /// `VIDIOC_S_STD`: the driver keeps the bits of `std` the input supports; `EINVAL` when
    /// it supports none of them, `ENODATA` on an input without standards.
    pub fn s_std(&self, std: u64) -> Result<()> {
        // SAFETY: the kernel reads one v4l2_std_id (u64).
        retry(|| unsafe { vidioc_s_std(self.raw(), &std) })
            .map_err(|e| self.err("VIDIOC_S_STD", e))?;
        Ok(())
    }

    /// `VIDIOC_QUERYSTD`: the standards the receiver detects on the input now; `None` where it
    /// cannot tell (no such ioctl, or no standards on this input).
    pub fn querystd(&self) -> Result<Option<u64>> {
        let mut raw: u64 = 0;
        // SAFETY: the kernel writes one v4l2_std_id (u64).
        match retry(|| unsafe { vidioc_querystd(self.raw(), &mut raw) }) {
            Ok(_) => Ok(Some(raw)),
            Err(errno) if none_here(errno) => Ok(None),
            Err(errno) => Err(self.err("VIDIOC_QUERYSTD", errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_videodev2() {
        // Values as the kernel headers expand them on x86_64.
        assert_eq!(
            nix::request_code_write!(b'V', 24, size_of::<u64>()),
            0x4008_5618
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 25, size_of::<v4l2_standard>()),
            0xc048_5619
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 26, size_of::<v4l2_input>()),
            0xc050_561a
        );
        assert_eq!(
            nix::request_code_read!(b'V', 38, size_of::<i32>()),
            0x8004_5626
        );
        assert_eq!(
            nix::request_code_readwrite!(b'V', 39, size_of::<i32>()),
            0xc004_5627
        );
        assert_eq!(
            nix::request_code_read!(b'V', 63, size_of::<u64>()),
            0x8008_563f
        );
    }

    #[test]
    fn inputs_say_what_they_take() {
        let tv = Input {
            index: 1,
            name: "TV".into(),
            kind: V4L2_INPUT_TYPE_TUNER,
            audioset: 0,
            tuner: 0,
            std: 0x00ff_ffff,
            status: 0,
            capabilities: V4L2_IN_CAP_STD,
        };
        assert!(tv.has_std() && !tv.has_dv_timings());
        let hdmi = Input {
            std: 0,
            capabilities: V4L2_IN_CAP_DV_TIMINGS,
            ..tv
        };
        assert!(!hdmi.has_std() && hdmi.has_dv_timings());
    }
}
