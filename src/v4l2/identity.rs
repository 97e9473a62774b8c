//! Which device a node belongs to, apart from its number: a node number is handed to whichever
//! device registers first, so after an unplug `/dev/video0` may be another camera, and the same
//! camera may come back as `/dev/video2`. Built from `VIDIOC_QUERYCAP` (driver, card, bus) and,
//! for USB devices, the serial number the device reports (read from sysfs, as udev does for its
//! `/dev/v4l/by-id` links). Knows nothing of GStreamer.

use super::device::Device;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// How far up from the node's sysfs folder the USB device may sit: the node hangs off the
/// interface (`1-1:1.0/video4linux/video0`), whose parent is the USB device.
const USB_DEVICE_DEPTH: usize = 4;

/// What tells one capture device from another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub driver: String,
    pub card: String,
    /// Where the device sits (`usb-0000:00:14.0-1`, `platform:vivid-000`): the same for the same
    /// port, not for the same device on another port.
    pub bus_info: String,
    /// The USB serial number, where the device has one.
    pub serial: Option<String>,
}

impl Identity {
    /// The identity of the open `device`.
    pub fn of(device: &Device) -> Identity {
        let capability = device.capability();
        Identity {
            driver: capability.driver.clone(),
            card: capability.card.clone(),
            bus_info: capability.bus_info.clone(),
            // Only USB devices have one, and their drivers name the bus "usb-..." (the kernel
            // has them use `usb_make_path`): elsewhere the sysfs walk, a dozen syscalls that
            // take milliseconds of every start on a slow machine, would find nothing.
            serial: if capability.bus_info.starts_with("usb-") {
                sysfs_folder(device).and_then(|folder| usb_serial(&folder))
            } else {
                None
            },
        }
    }

    /// Whether `other` is the same device. Two devices with serial numbers are the same when
    /// these are, wherever they are plugged in; otherwise they must sit at the same place on
    /// the bus (cameras of one model without a serial cannot be told apart any other way).
    pub fn same_device(&self, other: &Identity) -> bool {
        if self.driver != other.driver || self.card != other.card {
            return false;
        }
        match (&self.serial, &other.serial) {
            (Some(a), Some(b)) => a == b,
            _ => self.bus_info == other.bus_info,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' ({}, {}", self.card, self.driver, self.bus_info)?;
        if let Some(serial) = &self.serial {
            write!(f, ", serial {serial}")?;
        }
        write!(f, ")")
    }
}

/// What the USB device behind a node says of itself in sysfs, as udev reads it for its
/// `ID_VENDOR_ID`, `ID_MODEL_ID` and `ID_SERIAL_SHORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbDevice {
    /// Four hex digits, as `lsusb` shows them.
    pub vendor_id: String,
    pub product_id: String,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// The USB device's folder in sysfs (`/sys/devices/.../usb1/1-1`).
    pub sysfs: PathBuf,
}

impl UsbDevice {
    /// The USB device behind the open `device`; `None` when it is not on USB.
    pub fn of(device: &Device) -> Option<UsbDevice> {
        if !device.capability().bus_info.starts_with("usb-") {
            return None;
        }
        let folder = sysfs_folder(device)?;
        let usb = usb_folder(&folder)?;
        let read = |name: &str| {
            let text = std::fs::read_to_string(usb.join(name)).ok()?;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        Some(UsbDevice {
            vendor_id: read("idVendor")?,
            product_id: read("idProduct")?,
            manufacturer: read("manufacturer"),
            product: read("product"),
            serial: read("serial"),
            sysfs: usb.to_path_buf(),
        })
    }
}

/// The USB device folder above a node's sysfs folder.
fn usb_folder(node_folder: &Path) -> Option<&Path> {
    node_folder
        .ancestors()
        .take(USB_DEVICE_DEPTH + 1)
        .find(|folder| folder.join("idVendor").is_file())
}

/// The node's folder in sysfs, found by its device number (the path may be a link or a node
/// made by hand under another name).
fn sysfs_folder(device: &Device) -> Option<PathBuf> {
    let st = nix::sys::stat::fstat(device.as_fd()).ok()?;
    let (major, minor) = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    std::fs::canonicalize(format!("/sys/dev/char/{major}:{minor}")).ok()
}

/// The serial number of the USB device above `node_folder`, if it is on USB and has one.
fn usb_serial(node_folder: &Path) -> Option<String> {
    let usb_device = usb_folder(node_folder)?;
    let serial = std::fs::read_to_string(usb_device.join("serial")).ok()?;
    let serial = serial.trim();
    (!serial.is_empty()).then(|| serial.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(bus_info: &str, serial: Option<&str>) -> Identity {
        Identity {
            driver: "uvcvideo".into(),
            card: "HD Webcam".into(),
            bus_info: bus_info.into(),
            serial: serial.map(Into::into),
        }
    }

    #[test]
    fn a_serial_number_follows_the_device_to_another_port() {
        let before = camera("usb-0000:00:14.0-1", Some("A1B2"));
        assert!(before.same_device(&camera("usb-0000:00:14.0-3", Some("A1B2"))));
        // Another camera of the same model on the same port.
        assert!(!before.same_device(&camera("usb-0000:00:14.0-1", Some("C3D4"))));
    }

    #[test]
    fn without_a_serial_number_the_port_decides() {
        let before = camera("usb-0000:00:14.0-1", None);
        assert!(before.same_device(&camera("usb-0000:00:14.0-1", None)));
        assert!(!before.same_device(&camera("usb-0000:00:14.0-2", None)));
        assert!(before.same_device(&camera("usb-0000:00:14.0-1", Some("A1B2"))));
        let vivid = |bus: &str| Identity {
            driver: "vivid".into(),
            card: "vivid".into(),
            bus_info: bus.into(),
            serial: None,
        };
        assert!(!vivid("platform:vivid-000").same_device(&vivid("platform:vivid-001")));
        assert!(!vivid("usb-0000:00:14.0-1").same_device(&before));
    }

    #[test]
    fn the_usb_serial_is_read_from_the_usb_device_above_the_node() {
        let root = std::env::temp_dir().join(format!("rustv4l2-identity-{}", std::process::id()));
        let usb = root.join("usb1/1-1");
        let node = usb.join("1-1:1.0/video4linux/video0");
        std::fs::create_dir_all(&node).unwrap();
        assert_eq!(usb_serial(&node), None);
        std::fs::write(usb.join("idVendor"), "046d\n").unwrap();
        assert_eq!(usb_serial(&node), None);
        std::fs::write(usb.join("serial"), "  \n").unwrap();
        assert_eq!(usb_serial(&node), None);
        std::fs::write(usb.join("serial"), "A1B2\n").unwrap();
        assert_eq!(usb_serial(&node).as_deref(), Some("A1B2"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
