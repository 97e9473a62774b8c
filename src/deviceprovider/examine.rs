//! What one node is: opened, probed for everything it can capture (the way the element
//! probes), and closed again; a `RustV4l2Device` when it is a capture node the element can use.
//! The provider's only way to the kernel (`crate::v4l2`) and to caps (`crate::caps`); knows
//! nothing of scanning or hot-plug.

use super::log::CAT;
use crate::caps;
use crate::v4l2::{self, Device, OpenError};
use std::path::Path;

/// Fills in the frame intervals of every listed size the way the element does, so the device
/// shows the caps the element will offer.
fn probe_intervals(device: &Device, formats: &mut [v4l2::ProbedFormat]) -> Result<(), v4l2::Error> {
    for format in formats {
        let fourcc = format.fourcc;
        for size in &mut format.sizes {
            match device.fill_intervals(fourcc, size) {
                Ok(()) => {}
                Err(e) if e.is_disconnect() => return Err(e),
                Err(e) => gst::warning!(CAT, "Probing frame intervals of {}: {}", fourcc, e),
            }
        }
    }
    Ok(())
}

/// What a node turned out to be.
pub(super) enum Examined {
    Capture(super::RustV4l2Device),
    /// Not a capture node this element can use; it stays that as long as it keeps its number.
    Skipped(String),
    /// Could not tell (no permission, a driver error): try again on the next scan.
    Failed(String),
}

/// Opens the node, probes everything it can capture, and closes it again.
pub(super) fn examine(path: &Path) -> Examined {
    let device = match Device::open(path) {
        Ok(device) => device,
        Err(OpenError::NotCapture { card, device_caps }) => {
            return Examined::Skipped(format!(
                "'{card}' cannot capture with streaming I/O (device caps {device_caps:#010x})"
            ));
        }
        Err(OpenError::NotV4l2) => return Examined::Skipped("not a V4L2 device".into()),
        Err(OpenError::NotADevice) => return Examined::Skipped("not a device file".into()),
        Err(OpenError::NotFound) => {
            return Examined::Failed("gone before it could be opened".into());
        }
        Err(OpenError::Io(e)) => return Examined::Failed(e.to_string()),
    };
    let mut formats = match device.list_formats(|fourcc| caps::entry(fourcc).is_some()) {
        Ok(formats) => formats,
        Err(e) => return Examined::Failed(e.to_string()),
    };
    if let Err(e) = probe_intervals(&device, &mut formats) {
        return Examined::Failed(e.to_string());
    }
    let caps = caps::probed_to_caps(&formats);
    if caps.is_empty() {
        return Examined::Skipped(format!(
            "'{}' offers no format rustv4l2src can capture",
            device.capability().card
        ));
    }
    let path = path.display().to_string();
    let usb = crate::v4l2::UsbDevice::of(&device);
    Examined::Capture(super::RustV4l2Device::new(
        &path,
        device.capability(),
        usb.as_ref(),
        caps,
    ))
}
