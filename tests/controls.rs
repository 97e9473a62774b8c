//! Device controls and the v4l2:// URI handler, against vivid in the test VM.

mod common;

use gst::prelude::*;
use std::process::Command;

/// The value `v4l2-ctl` reads back for a control: what the driver really holds.
fn driver_value(device: &str, control: &str) -> String {
    let out = Command::new("v4l2-ctl")
        .args(["-d", device, "-C", control])
        .output()
        .expect("v4l2-ctl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split(':')
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `element` to READY (device open, controls applied) and returns the warnings it posted.
fn warnings_at_ready(element: &gst::Element) -> Vec<String> {
    let pipeline = gst::Pipeline::new();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([element, &sink]).unwrap();
    element.link(&sink).unwrap();
    pipeline.set_state(gst::State::Ready).expect("READY");
    let bus = pipeline.bus().unwrap();
    let mut warnings = Vec::new();
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(200),
        &[gst::MessageType::Warning, gst::MessageType::Error],
    ) {
        match msg.view() {
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("error at READY: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    warnings
}

#[test]
fn color_and_extra_controls_reach_the_driver() {
    common::init();
    let device = common::vivid_sp();
    let src = gst::ElementFactory::make("rustv4l2src")
        .property("device", &device)
        .property("brightness", 201i32)
        .property("hue", 7i32)
        .property(
            "extra-controls",
            "c,contrast=99,test_pattern=2"
                .parse::<gst::Structure>()
                .unwrap(),
        )
        .build()
        .unwrap();
    let warnings = warnings_at_ready(&src);
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    assert_eq!(driver_value(&device, "brightness"), "201");
    assert_eq!(driver_value(&device, "hue"), "7");
    assert_eq!(driver_value(&device, "contrast"), "99");
    assert_eq!(driver_value(&device, "test_pattern"), "2");

    // Changed while open: applied at once, and the property reads the driver's value.
    src.set_state(gst::State::Ready).unwrap();
    src.set_property("brightness", 55i32);
    assert_eq!(driver_value(&device, "brightness"), "55");
    assert_eq!(src.property::<i32>("brightness"), 55);
    src.set_state(gst::State::Null).unwrap();
    // Leave the device as the other tests expect it.
    Command::new("v4l2-ctl")
        .args([
            "-d",
            &device,
            "-c",
            "brightness=128,contrast=128,hue=0,test_pattern=0",
        ])
        .status()
        .unwrap();
}

#[test]
fn unknown_or_out_of_range_controls_warn_without_failing() {
    common::init();
    let device = common::vivid_sp();
    let src = gst::ElementFactory::make("rustv4l2src")
        .property("device", &device)
        .property(
            "extra-controls",
            "c,no_such_control=1,saturation=100000"
                .parse::<gst::Structure>()
                .unwrap(),
        )
        .build()
        .unwrap();
    let warnings = warnings_at_ready(&src);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no_such_control") && w.contains(&device))
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Saturation") && w.contains("out of its range"))
    );
    assert_ne!(driver_value(&device, "saturation"), "100000");
}

#[test]
fn v4l2_uri_makes_a_working_source() {
    common::init();
    let device = common::vivid_sp();
    let uri = format!("v4l2://{device}");
    let factory = gst::ElementFactory::find("rustv4l2src").unwrap();
    assert!(factory.uri_protocols().iter().any(|p| p == "v4l2"));
    let src = gst::Element::make_from_uri(gst::URIType::Src, &uri, None).unwrap();
    // With v4l2src installed at PRIMARY the C element wins; ours is taken when asked by name.
    let src = if src.factory().unwrap().name() == "rustv4l2src" {
        src
    } else {
        let ours = gst::ElementFactory::make("rustv4l2src").build().unwrap();
        ours.dynamic_cast_ref::<gst::URIHandler>()
            .unwrap()
            .set_uri(&uri)
            .unwrap();
        ours
    };
    assert_eq!(src.property::<String>("device"), device);
    let pipeline =
        gst::parse::launch("capsfilter caps=video/x-raw,width=320,height=180 ! fakesink name=sink")
            .unwrap()
            .downcast::<gst::Bin>()
            .unwrap();
    pipeline.add(&src).unwrap();
    src.link(
        &pipeline
            .iterate_sorted()
            .into_iter()
            .flatten()
            .find(|e| e.name().starts_with("capsfilter"))
            .unwrap(),
    )
    .unwrap();
    src.set_property("num-buffers", 3i32);
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 20 s");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
}
