//! The `GstDevice` of one capture node. What the monitor shows (card name, class, caps,
//! properties) lives in `GstDevice`'s own construct-only properties; this subclass adds the
//! node's path, which `create_element` hands to `rustv4l2src`.

use crate::v4l2::{Capability, UsbDevice};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::{LazyLock, OnceLock};

use super::log::CAT;

/// The class `gst-device-monitor-1.0 Video/Source` asks for.
const DEVICE_CLASS: &str = "Video/Source";
const ELEMENT: &str = "rustv4l2src";

#[derive(Default)]
pub struct RustV4l2Device {
    /// Set once, at construction (`device-path` is construct-only).
    path: OnceLock<String>,
}

impl RustV4l2Device {
    fn path(&self) -> &str {
        self.path.get().map_or("", String::as_str)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RustV4l2Device {
    const NAME: &'static str = "GstRustV4l2Device";
    type Type = super::RustV4l2Device;
    type ParentType = gst::Device;
}

impl ObjectImpl for RustV4l2Device {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("device-path")
                    .nick("Device path")
                    .blurb("Path of the V4L2 capture node, e.g. /dev/video0")
                    .construct_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "device-path" => {
                let path: Option<String> = value.get().expect("type checked upstream");
                // Construct-only: GObject sets it exactly once.
                let _ = self.path.set(path.unwrap_or_default());
            }
            _ => unimplemented!("property {}", pspec.name()),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "device-path" => self.path().to_value(),
            _ => unimplemented!("property {}", pspec.name()),
        }
    }
}

impl GstObjectImpl for RustV4l2Device {}

impl DeviceImpl for RustV4l2Device {
    fn create_element(&self, name: Option<&str>) -> Result<gst::Element, gst::LoggableError> {
        // Through the factory, not the type: tools such as gst-device-monitor-1.0 print a launch
        // line from the element's factory, which an element made from its type has not.
        gst::ElementFactory::make(ELEMENT)
            .name_if_some(name)
            .property("device", self.path())
            .build()
            .map_err(|e| {
                gst::loggable_error!(
                    CAT,
                    "Could not make a {} for {}: {}",
                    ELEMENT,
                    self.path(),
                    e
                )
            })
    }

    /// Points an idle `rustv4l2src` at this node. The element opens its device on the way to
    /// READY, so a running one cannot switch: the caller makes a new one instead.
    fn reconfigure_element(&self, element: &gst::Element) -> Result<(), gst::LoggableError> {
        let is_ours = element
            .factory()
            .is_some_and(|factory| factory.name() == ELEMENT);
        if !is_ours {
            return Err(gst::loggable_error!(
                CAT,
                "{} is not a {}; make a new element with create_element()",
                element.name(),
                ELEMENT
            ));
        }
        let (_, current, pending) = element.state(gst::ClockTime::ZERO);
        if current > gst::State::Null || pending > gst::State::Null {
            return Err(gst::loggable_error!(
                CAT,
                "{} has its device open ({:?}); set it to NULL first or make a new element",
                element.name(),
                current
            ));
        }
        element.set_property("device", self.path());
        Ok(())
    }
}

impl super::RustV4l2Device {
    /// The device of the capture node at `path`, as the open node described itself.
    /// `usb`: what the USB device behind it says, for a USB camera.
    pub(super) fn new(
        path: &str,
        capability: &Capability,
        usb: Option<&UsbDevice>,
        caps: gst::Caps,
    ) -> Self {
        let mut properties = gst::Structure::builder("v4l2deviceprovider-properties")
            .field("device.api", "v4l2")
            .field("device.path", path)
            // The names PipeWire's V4L2 monitor uses...
            .field("api.v4l2.path", path)
            .field("api.v4l2.cap.driver", &capability.driver)
            .field("api.v4l2.cap.card", &capability.card)
            .field("api.v4l2.cap.bus_info", &capability.bus_info)
            .field(
                "api.v4l2.cap.device-caps",
                format!("{:08x}", capability.device_caps),
            )
            // ...and those of v4l2's own device provider.
            .field("v4l2.device.driver", &capability.driver)
            .field("v4l2.device.card", &capability.card)
            .field("v4l2.device.bus_info", &capability.bus_info)
            .field("v4l2.device.device_caps", capability.device_caps);
        if let Some(usb) = usb {
            // The names v4l2src's udev-based provider takes from udev (device.bus,
            // device.vendor.id, device.product.id, device.serial as ID_SERIAL_SHORT), the bus
            // path as the driver's bus_info names the port, and the USB device's sysfs folder.
            properties = properties
                .field("device.bus", "usb")
                .field("device.bus_path", &capability.bus_info)
                .field("device.vendor.id", &usb.vendor_id)
                .field("device.product.id", &usb.product_id)
                .field("sysfs.path", usb.sysfs.display().to_string());
            if let Some(name) = &usb.manufacturer {
                properties = properties.field("device.vendor.name", name);
            }
            if let Some(name) = &usb.product {
                properties = properties.field("device.product.name", name);
            }
            if let Some(serial) = &usb.serial {
                properties = properties.field("device.serial", serial);
            }
        }
        let properties = properties.build();
        glib::Object::builder()
            .property("device-path", path)
            .property("display-name", &capability.card)
            .property("device-class", DEVICE_CLASS)
            .property("caps", caps)
            .property("properties", properties)
            .build()
    }
}
