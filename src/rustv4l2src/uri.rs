//! The `v4l2://` URI handler of `rustv4l2src`: `v4l2:///dev/video0` names the device, as for
//! `v4l2src`. Implemented for the element's subclass from outside `imp.rs`, which does not know
//! this file: it only lists `gst::URIHandler` among the element's interfaces.

use super::imp::RustV4l2Src;
use super::shared::lock;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

/// The device path a `v4l2://` URI names: what follows the scheme, an absolute path.
pub(crate) fn device_of_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix("v4l2://")
        .filter(|path| path.starts_with('/'))
}

/// `v4l2:///dev/video0`, the scheme v4l2src answers too. The element's rank keeps v4l2src the
/// default for such URIs; `GST_PLUGIN_FEATURE_RANK=rustv4l2src:MAX` makes this one win.
impl URIHandlerImpl for RustV4l2Src {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["v4l2"]
    }

    fn uri(&self) -> Option<String> {
        Some(format!("v4l2://{}", lock(&self.settings).device))
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        let path = device_of_uri(uri).ok_or_else(|| {
            glib::Error::new(
                gst::URIError::BadUri,
                &format!("'{uri}' is not a v4l2:///dev/videoN URI"),
            )
        })?;
        if !lock(&self.session).is_closed() {
            return Err(glib::Error::new(
                gst::URIError::BadState,
                "The device can only be changed while the element is in NULL",
            ));
        }
        self.obj().set_property("device", path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gst::glib;
    use gst::prelude::*;

    #[test]
    fn v4l2_uris_set_the_device() {
        gst::init().unwrap();
        let element = glib::Object::new::<crate::rustv4l2src::RustV4l2Src>();
        let handler = element.dynamic_cast_ref::<gst::URIHandler>().unwrap();
        handler.set_uri("v4l2:///dev/video7").unwrap();
        assert_eq!(element.property::<String>("device"), "/dev/video7");
        assert_eq!(handler.uri().as_deref(), Some("v4l2:///dev/video7"));
        assert!(handler.set_uri("v4l2://video7").is_err());
        assert!(handler.set_uri("file:///dev/video7").is_err());
    }
}
