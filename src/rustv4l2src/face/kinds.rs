//! The enum and flags types of the element's properties, with v4l2src's values and nicks
//! where v4l2src has the property, under type names of their own (two plugins cannot register
//! one type name, and both load in one process).

use crate::v4l2;
use gst::glib;
use gst::prelude::*;

/// What happens when no frame arrives within `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcTimeoutAction")]
pub enum TimeoutAction {
    #[enum_value(name = "Post an error and stop", nick = "error")]
    Error,
    #[enum_value(name = "End the stream (EOS)", nick = "eos")]
    Eos,
}

/// What the element sends while its source has no signal (`no-signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcNoSignal")]
pub enum NoSignal {
    #[enum_value(name = "GAP events at the frame duration", nick = "gap")]
    Gap,
    #[enum_value(name = "Black frames of the last caps", nick = "black")]
    Black,
    #[enum_value(name = "Post an error and stop, as v4l2src", nick = "error")]
    Error,
}

/// How captured frames reach downstream. The numbers and nicks are v4l2src's for the same
/// modes (`GstV4l2IOMode`), so `io-mode=3` or `io-mode=userptr` mean the same to both elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcIoMode")]
pub enum IoMode {
    #[enum_value(
        name = "Automatic: memory-mapped driver buffers (as mmap)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "read() into system memory (a copy; the driver must support read())",
        nick = "rw"
    )]
    Rw = 1,
    #[enum_value(
        name = "Memory-mapped driver buffers, lent as system memory",
        nick = "mmap"
    )]
    Mmap = 2,
    #[enum_value(
        name = "Page-aligned memory the element allocates, filled by the driver (V4L2_MEMORY_USERPTR), lent as system memory",
        nick = "userptr"
    )]
    Userptr = 3,
    #[enum_value(
        name = "Driver buffers exported as DMABUF (VIDIOC_EXPBUF), lent as dmabuf memory",
        nick = "dmabuf"
    )]
    Dmabuf = 4,
    #[enum_value(
        name = "Import DMABUFs from downstream's allocator (V4L2_MEMORY_DMABUF)",
        nick = "dmabuf-import"
    )]
    DmabufImport = 5,
}

/// What kind of device is open (`flags`). The values and nicks are v4l2src's
/// (`GstV4l2DeviceTypeFlags`), which are the `V4L2_CAP_*` bits; the type has a name of its own
/// so that both elements can live in one process.
#[glib::flags(name = "GstRustV4l2SrcDeviceTypeFlags")]
pub enum DeviceTypeFlags {
    #[flags_value(name = "Device supports video capture", nick = "capture")]
    CAPTURE = v4l2::V4L2_CAP_VIDEO_CAPTURE,
    #[flags_value(name = "Device supports video playback", nick = "output")]
    OUTPUT = v4l2::V4L2_CAP_VIDEO_OUTPUT,
    #[flags_value(name = "Device supports video overlay", nick = "overlay")]
    OVERLAY = v4l2::V4L2_CAP_VIDEO_OVERLAY,
    #[flags_value(name = "Device supports the VBI capture", nick = "vbi-capture")]
    VBI_CAPTURE = v4l2::V4L2_CAP_VBI_CAPTURE,
    #[flags_value(name = "Device supports the VBI output", nick = "vbi-output")]
    VBI_OUTPUT = v4l2::V4L2_CAP_VBI_OUTPUT,
    #[flags_value(name = "Device has a tuner or modulator", nick = "tuner")]
    TUNER = v4l2::V4L2_CAP_TUNER,
    #[flags_value(name = "Device has audio inputs or outputs", nick = "audio")]
    AUDIO = v4l2::V4L2_CAP_AUDIO,
}

/// Analogue TV standards (`norm`): v4l2src's values (the `V4L2_STD_*` bits) and nicks, under a
/// type name of its own (v4l2src's is `V4L2_TV_norms`; two plugins cannot register one name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRustV4l2SrcTvNorm")]
pub enum TvNorm {
    #[enum_value(name = "none", nick = "none")]
    None = 0,
    #[enum_value(name = "NTSC", nick = "NTSC")]
    Ntsc = 0xb000,
    #[enum_value(name = "NTSC-M", nick = "NTSC-M")]
    NtscM = 0x1000,
    #[enum_value(name = "NTSC-M-JP", nick = "NTSC-M-JP")]
    NtscMJp = 0x2000,
    #[enum_value(name = "NTSC-M-KR", nick = "NTSC-M-KR")]
    NtscMKr = 0x8000,
    #[enum_value(name = "NTSC-443", nick = "NTSC-443")]
    Ntsc443 = 0x4000,
    #[enum_value(name = "PAL", nick = "PAL")]
    Pal = 0xff,
    #[enum_value(name = "PAL-BG", nick = "PAL-BG")]
    PalBg = 0x7,
    #[enum_value(name = "PAL-B", nick = "PAL-B")]
    PalB = 0x1,
    #[enum_value(name = "PAL-B1", nick = "PAL-B1")]
    PalB1 = 0x2,
    #[enum_value(name = "PAL-G", nick = "PAL-G")]
    PalG = 0x4,
    #[enum_value(name = "PAL-H", nick = "PAL-H")]
    PalH = 0x8,
    #[enum_value(name = "PAL-I", nick = "PAL-I")]
    PalI = 0x10,
    #[enum_value(name = "PAL-DK", nick = "PAL-DK")]
    PalDk = 0xe0,
    #[enum_value(name = "PAL-D", nick = "PAL-D")]
    PalD = 0x20,
    #[enum_value(name = "PAL-D1", nick = "PAL-D1")]
    PalD1 = 0x40,
    #[enum_value(name = "PAL-K", nick = "PAL-K")]
    PalK = 0x80,
    #[enum_value(name = "PAL-M", nick = "PAL-M")]
    PalM = 0x100,
    #[enum_value(name = "PAL-N", nick = "PAL-N")]
    PalN = 0x200,
    #[enum_value(name = "PAL-Nc", nick = "PAL-Nc")]
    PalNc = 0x400,
    #[enum_value(name = "PAL-60", nick = "PAL-60")]
    Pal60 = 0x800,
    #[enum_value(name = "SECAM", nick = "SECAM")]
    Secam = 0xff_0000,
    #[enum_value(name = "SECAM-B", nick = "SECAM-B")]
    SecamB = 0x1_0000,
    #[enum_value(name = "SECAM-G", nick = "SECAM-G")]
    SecamG = 0x4_0000,
    #[enum_value(name = "SECAM-H", nick = "SECAM-H")]
    SecamH = 0x8_0000,
    #[enum_value(name = "SECAM-DK", nick = "SECAM-DK")]
    SecamDk = 0x32_0000,
    #[enum_value(name = "SECAM-D", nick = "SECAM-D")]
    SecamD = 0x2_0000,
    #[enum_value(name = "SECAM-K", nick = "SECAM-K")]
    SecamK = 0x10_0000,
    #[enum_value(name = "SECAM-K1", nick = "SECAM-K1")]
    SecamK1 = 0x20_0000,
    #[enum_value(name = "SECAM-L", nick = "SECAM-L")]
    SecamL = 0x40_0000,
    #[enum_value(name = "SECAM-Lc", nick = "SECAM-Lc")]
    SecamLc = 0x80_0000,
}

impl TvNorm {
    /// Every norm, in the enum's order (groups before their members), `None` last.
    pub const ALL: [TvNorm; 31] = [
        TvNorm::Ntsc,
        TvNorm::NtscM,
        TvNorm::NtscMJp,
        TvNorm::NtscMKr,
        TvNorm::Ntsc443,
        TvNorm::Pal,
        TvNorm::PalBg,
        TvNorm::PalB,
        TvNorm::PalB1,
        TvNorm::PalG,
        TvNorm::PalH,
        TvNorm::PalI,
        TvNorm::PalDk,
        TvNorm::PalD,
        TvNorm::PalD1,
        TvNorm::PalK,
        TvNorm::PalM,
        TvNorm::PalN,
        TvNorm::PalNc,
        TvNorm::Pal60,
        TvNorm::Secam,
        TvNorm::SecamB,
        TvNorm::SecamG,
        TvNorm::SecamH,
        TvNorm::SecamDk,
        TvNorm::SecamD,
        TvNorm::SecamK,
        TvNorm::SecamK1,
        TvNorm::SecamL,
        TvNorm::SecamLc,
        TvNorm::None,
    ];

    /// Its `V4L2_STD_*` bits.
    pub fn std_id(self) -> u64 {
        self as u64
    }

    /// The norm a driver's standard reads as: the one with exactly its bits, else the smallest
    /// group that holds all of them, else the first that shares any; `None` for no standard.
    pub fn of_std(std: u64) -> TvNorm {
        let norms = || Self::ALL.into_iter().filter(|n| *n != TvNorm::None);
        norms()
            .find(|n| n.std_id() == std)
            .or_else(|| {
                norms()
                    .filter(|n| std != 0 && std & !n.std_id() == 0)
                    .min_by_key(|n| n.std_id().count_ones())
            })
            .or_else(|| norms().find(|n| std & n.std_id() != 0))
            .unwrap_or(TvNorm::None)
    }

    /// The nick, as launch lines and the enum show it.
    pub fn nick(self) -> &'static str {
        glib::EnumClass::with_type(Self::static_type())
            .and_then(|class| class.value(self as i32).map(|v| v.nick()))
            .unwrap_or("?")
    }
}

/// The `flags` of a device with these capabilities (`VIDIOC_QUERYCAP`'s device caps), as
/// v4l2src reads them: multi-planar capture and output count as capture and output.
pub(in crate::rustv4l2src) fn device_type_flags(device_caps: u32) -> DeviceTypeFlags {
    let mut flags = DeviceTypeFlags::from_bits_truncate(device_caps);
    if device_caps & v4l2::V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
        flags |= DeviceTypeFlags::CAPTURE;
    }
    if device_caps & v4l2::V4L2_CAP_VIDEO_OUTPUT_MPLANE != 0 {
        flags |= DeviceTypeFlags::OUTPUT;
    }
    flags
}
