//! A short description of caps for error messages: full device caps run to pages.

use std::collections::BTreeSet;

/// "YUY2, NV12 (2 formats) at 320x180 to 1920x1080": the formats in order and the size span.
pub fn summary(caps: &gst::CapsRef) -> String {
    let mut formats: Vec<String> = Vec::new();
    let mut sizes = BTreeSet::new();
    for s in caps.iter() {
        let name = s
            .get::<&str>("format")
            .map(str::to_owned)
            .unwrap_or_else(|_| s.name().to_string());
        if !formats.contains(&name) {
            formats.push(name);
        }
        if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
            sizes.insert((w as i64 * h as i64, w, h));
        }
    }
    if formats.is_empty() {
        return "nothing".into();
    }
    let mut text = format!("{} ({} formats)", formats.join(", "), formats.len());
    if let (Some(&(_, w0, h0)), Some(&(_, w1, h1))) = (sizes.first(), sizes.last()) {
        text += &format!(" at {w0}x{h0} to {w1}x{h1}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_formats_once_and_the_size_span() {
        gst::init().unwrap();
        let caps: gst::Caps = "video/x-raw,format=YUY2,width=640,height=360; \
                               video/x-raw,format=YUY2,width=1920,height=1080; \
                               video/x-raw,format=NV12,width=320,height=180"
            .parse()
            .unwrap();
        assert_eq!(
            summary(&caps),
            "YUY2, NV12 (2 formats) at 320x180 to 1920x1080"
        );
        assert_eq!(summary(&gst::Caps::new_empty()), "nothing");
    }
}
