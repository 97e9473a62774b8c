//! Formats beyond plain raw video, through the real element: 8-bit Bayer in all four orders and
//! the driver's colorimetry on vivid, interlaced fields and the pixel aspect ratio on vivid's
//! S-Video input. (Compressed formats from v4l2loopback: `loopback.rs`.)
//!
//! Needs vivid's nodes (see `common`): run
//! through `scripts/vm-run`. Every wait is bounded, so a broken element fails a test instead of
//! hanging the run. Tests that change vivid's input or colorimetry put them back when they end,
//! pass or fail, because the other test binaries run after this one in the same VM.

mod common;

use common::{Capture, SVideoInput, in_device_memory, setup};

use std::path::Path;

use gstrustv4l2::caps::colorimetry::{self, V4l2Colorimetry};
use gstrustv4l2::v4l2::{Device, FormatRequest, Fourcc};

/// `rustv4l2src device=... ! <rest> ! appsink max-buffers=2`, brought to NULL when dropped.
fn open_capture(device: &str, rest: &str) -> Capture {
    Capture::with_sink(device, "", rest, "max-buffers=2")
}

fn structure_of(sample: &gst::Sample) -> gst::Structure {
    sample
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
        .expect("a sample has caps")
}

/// The template lists every format the table knows; `gst-inspect-1.0 rustv4l2src` prints it.
#[test]
fn template_names_the_compressed_and_bayer_formats() {
    let _device = setup();
    let factory = gst::ElementFactory::find("rustv4l2src").expect("registered");
    let template = factory
        .static_pad_templates()
        .into_iter()
        .find(|t| t.name_template() == "src")
        .expect("a src template")
        .caps();
    for want in [
        "image/jpeg, parsed=(boolean)true",
        "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au",
        "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au",
        "video/x-bayer, format=(string)bggr",
        "video/x-bayer, format=(string)gbrg",
        "video/x-bayer, format=(string)grbg",
        "video/x-bayer, format=(string)rggb",
    ] {
        let want: gst::Caps = want.parse().expect("caps");
        assert!(
            want.can_intersect(&template),
            "{want} missing from the template {template}"
        );
    }
}

/// vivid offers 8-bit Bayer in the four orders: each negotiates as `video/x-bayer` with its
/// order, and each buffer is one byte per pixel, lent straight from the driver.
#[test]
fn bayer_in_all_four_orders() {
    let _device = setup();
    let device = common::vivid_sp();
    for order in ["bggr", "gbrg", "grbg", "rggb"] {
        let capture = open_capture(
            &device,
            &format!("video/x-bayer,format={order},width=640,height=360"),
        );
        capture.play();
        for _ in 0..3 {
            let sample = capture.pull();
            let s = structure_of(&sample);
            assert_eq!(s.name(), "video/x-bayer", "{order}");
            assert_eq!(s.get::<&str>("format").unwrap(), order);
            assert_eq!(
                (
                    s.get::<i32>("width").unwrap(),
                    s.get::<i32>("height").unwrap()
                ),
                (640, 360)
            );
            let buffer = sample.buffer().expect("a buffer");
            assert_eq!(buffer.size(), 640 * 360, "{order}");
            assert!(
                in_device_memory(buffer, &device),
                "{order}: the frame was copied"
            );
        }
    }
}

/// GStreamer's bayer2rgb reads what the element gives it.
#[test]
fn bayer_demosaics_downstream() {
    let _device = setup();
    let capture = open_capture(
        &common::vivid_sp(),
        "video/x-bayer,format=bggr,width=640,height=360 ! bayer2rgb ! video/x-raw,format=RGBA",
    );
    capture.play();
    let sample = capture.pull();
    assert_eq!(sample.buffer().unwrap().size(), 640 * 360 * 4);
}

/// The colorimetry the driver settled on, as the crate maps it, for comparison with caps.
fn driver_colorimetry(device: &str, is_rgb: bool) -> String {
    let fmt = Device::open(Path::new(device))
        .unwrap_or_else(|_| panic!("open {device}"))
        .g_fmt()
        .expect("G_FMT");
    let c = V4l2Colorimetry {
        colorspace: fmt.colorspace,
        xfer_func: fmt.xfer_func,
        ycbcr_enc: fmt.ycbcr_enc,
        quantization: fmt.quantization,
    };
    colorimetry::to_gst(&c, is_rgb, fmt.height)
        .expect("vivid reports a known colorspace")
        .to_string()
}

/// Raw caps say what the driver does: progressive frames, and the colorimetry of the format
/// `VIDIOC_S_FMT` settled on (vivid's webcam: sRGB, limited-range BT.601 Y'CbCr).
#[test]
fn raw_caps_carry_the_drivers_colorimetry() {
    let _device = setup();
    let device = common::vivid_sp();
    let capture = open_capture(&device, "video/x-raw,format=YUY2,width=640,height=360");
    capture.play();
    let sample = capture.pull();
    let s = structure_of(&sample);
    assert_eq!(s.get::<&str>("interlace-mode").unwrap(), "progressive");
    let caps_colorimetry = s
        .get::<String>("colorimetry")
        .expect("raw caps carry colorimetry");
    drop(capture);
    assert_eq!(caps_colorimetry, driver_colorimetry(&device, false));
    let parsed: gst_video::VideoColorimetry = caps_colorimetry.parse().expect("valid");
    assert_eq!(parsed.primaries(), gst_video::VideoColorPrimaries::Bt709);
    // Bayer caps carry none: GStreamer's Bayer elements know no colorimetry.
    let capture = open_capture(&device, "video/x-bayer,format=rggb,width=640,height=360");
    capture.play();
    assert!(!structure_of(&capture.pull()).has_field("colorimetry"));
}

/// Puts vivid's colorimetry back to its defaults for YUYV when dropped: asking for a
/// colorimetry (`V4L2_PIX_FMT_FLAG_SET_CSC`) changes it for every later user of the node.
struct RestoreColorimetry(String);

impl Drop for RestoreColorimetry {
    fn drop(&mut self) {
        if let Ok(device) = Device::open(Path::new(&self.0)) {
            // sRGB primaries and transfer, limited-range BT.601: vivid's webcam default.
            let _ = device.s_fmt(&FormatRequest {
                colorspace: colorimetry::COLORSPACE_SRGB,
                xfer_func: colorimetry::XFER_FUNC_SRGB,
                ycbcr_enc: colorimetry::YCBCR_ENC_601,
                quantization: colorimetry::QUANTIZATION_LIM_RANGE,
                ..FormatRequest::new(Fourcc::new(b"YUYV"), 640, 360)
            });
        }
    }
}

/// A colorimetry downstream asks for reaches `VIDIOC_S_FMT`; vivid converts (it offers
/// colorspace conversion on capture), so the caps and the driver's format both say BT.709.
#[test]
fn downstream_colorimetry_is_asked_of_the_driver() {
    let _device = setup();
    let device = common::vivid_sp();
    let _restore = RestoreColorimetry(device.clone());
    let capture = open_capture(
        &device,
        "video/x-raw,format=YUY2,width=640,height=360,colorimetry=bt709",
    );
    capture.play();
    let sample = capture.pull();
    assert_eq!(
        structure_of(&sample).get::<&str>("colorimetry").unwrap(),
        "bt709"
    );
    drop(capture);
    assert_eq!(driver_colorimetry(&device, false), "bt709");
    let fmt = Device::open(Path::new(&device))
        .expect("open")
        .g_fmt()
        .expect("G_FMT");
    assert_eq!(fmt.colorspace, colorimetry::COLORSPACE_REC709);
    assert_eq!(fmt.ycbcr_enc, colorimetry::YCBCR_ENC_709);
}

/// A buffer's video flags (`INTERLACED`, `TFF`, ...), which `BufferRef::flags()` leaves out.
fn video_flags(buffer: &gst::BufferRef) -> gst_video::VideoBufferFlags {
    // SAFETY: `buffer` is a valid GstBuffer for the duration of the borrow; only its flags
    // word is read.
    let bits = unsafe { (*buffer.as_ptr()).mini_object.flags };
    gst_video::VideoBufferFlags::from_bits_truncate(bits)
}

/// vivid's S-Video input is PAL: interlaced frames, top field first, and BT.601's sampling
/// of a 4:3 picture into 720 pixels (`VIDIOC_CROPCAP` says 54/59: pixels 59/54 wide).
#[test]
fn interlaced_pal_and_its_pixel_aspect_ratio() {
    let _device = setup();
    let device = common::vivid_sp();
    let _input = SVideoInput::select(&device);

    // Downstream says nothing about interlacing: the caps say what the driver delivers.
    let capture = open_capture(&device, "video/x-raw,format=YUY2,width=720,height=576");
    capture.play();
    let sample = capture.pull();
    let s = structure_of(&sample);
    assert_eq!(s.get::<&str>("interlace-mode").unwrap(), "interleaved");
    assert_eq!(s.get::<&str>("field-order").unwrap(), "top-field-first");
    assert_eq!(
        s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap(),
        gst::Fraction::new(59, 54)
    );
    let flags = video_flags(sample.buffer().expect("a buffer"));
    assert!(
        flags.contains(gst_video::VideoBufferFlags::INTERLACED | gst_video::VideoBufferFlags::TFF),
        "{flags:?}"
    );
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    assert_eq!(
        info.interlace_mode(),
        gst_video::VideoInterlaceMode::Interleaved
    );
    drop(capture);

    // Asking for an order goes to the driver as V4L2_FIELD_INTERLACED_TB/BT; vivid follows
    // either, and the caps and buffer flags say what it delivers.
    for (order, field, tff) in [
        (
            "top-field-first",
            gstrustv4l2::v4l2::V4L2_FIELD_INTERLACED_TB,
            true,
        ),
        (
            "bottom-field-first",
            gstrustv4l2::v4l2::V4L2_FIELD_INTERLACED_BT,
            false,
        ),
    ] {
        let capture = open_capture(
            &device,
            &format!(
                "video/x-raw,format=YUY2,width=720,height=576,interlace-mode=interleaved,\
                 field-order={order}"
            ),
        );
        capture.play();
        let sample = capture.pull();
        let s = structure_of(&sample);
        assert_eq!(s.get::<&str>("field-order").unwrap(), order);
        let flags = video_flags(sample.buffer().expect("a buffer"));
        assert!(flags.contains(gst_video::VideoBufferFlags::INTERLACED));
        assert_eq!(
            flags.contains(gst_video::VideoBufferFlags::TFF),
            tff,
            "{order}: {flags:?}"
        );
        drop(sample);
        drop(capture);
        let fmt = Device::open(Path::new(&device))
            .expect("open")
            .g_fmt()
            .expect("G_FMT");
        assert_eq!(fmt.field, field, "{order}");
    }
}
