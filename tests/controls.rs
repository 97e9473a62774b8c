//! Device controls, the GstColorBalance interface and the v4l2:// URI handler, against vivid in
//! the test VM.

mod common;

use gst::glib;
use gst::prelude::*;
use gst_video::prelude::*;
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// The value `v4l2-ctl` reads back for a control: what the driver really holds.
fn driver_value(device: &str, control: &str) -> String {
    let text = common::v4l2_ctl_ok(&["-d", device, "-C", control]);
    text.split(':')
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `element` to READY (device open, controls applied) and returns the warnings it posted,
/// failing the test on an error.
fn warnings_at_ready(element: &gst::Element) -> Vec<glib::Error> {
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
            gst::MessageView::Warning(w) => warnings.push(w.error()),
            gst::MessageView::Error(e) => panic!("error at READY: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    warnings
}

#[test]
fn color_and_extra_controls_reach_the_driver() {
    let _device = common::setup();
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
    common::v4l2_ctl_ok(&[
        "-d",
        &device,
        "-c",
        "brightness=128,contrast=128,hue=0,test_pattern=0",
    ]);
}

#[test]
fn unknown_or_out_of_range_controls_warn_without_failing() {
    let _device = common::setup();
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
            .all(|w| w.matches(gst::ResourceError::Settings)),
        "a control the device refuses is a settings warning: {warnings:?}"
    );
    let texts: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        texts
            .iter()
            .any(|w| w.contains("no_such_control") && w.contains(&device)),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|w| w.contains("Saturation") && w.contains("out of its range")),
        "{texts:?}"
    );
    assert_ne!(driver_value(&device, "saturation"), "100000");
}

#[test]
fn v4l2_uri_makes_a_working_source() {
    let _device = common::setup();
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

/// `v4l2-ctl --list-ctrls` for `device`: each control's name and its min and max.
fn listed_ranges(device: &str) -> HashMap<String, (i32, i32)> {
    let text = common::v4l2_ctl_ok(&["-d", device, "--list-ctrls"]);
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.parse::<i32>().ok())
    };
    text.lines()
        .filter_map(|line| {
            let name = line.split_whitespace().next()?;
            Some((
                name.to_owned(),
                (field(line, "min=")?, field(line, "max=")?),
            ))
        })
        .collect()
}

/// Puts vivid's colour controls back to its defaults when a test ends, passed or not, so the
/// other tests find the device as they expect.
struct DefaultColorsOnDrop(String);

impl Drop for DefaultColorsOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("v4l2-ctl")
            .args([
                "-d",
                &self.0,
                "-c",
                "brightness=128,contrast=128,saturation=128,hue=0",
            ])
            .status();
    }
}

/// Every `value-changed` the element emits, as (label, value).
fn record_value_changes(balance: &gst_video::ColorBalance) -> Arc<Mutex<Vec<(String, i32)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    balance.connect_value_changed(move |_, channel, value| {
        sink.lock()
            .unwrap()
            .push((channel.label().to_string(), value));
    });
    seen
}

fn channel(balance: &gst_video::ColorBalance, label: &str) -> gst_video::ColorBalanceChannel {
    balance
        .list_channels()
        .into_iter()
        .find(|c| c.label() == label)
        .unwrap_or_else(|| panic!("no '{label}' channel"))
}

fn colour_source(device: &str) -> gst::Element {
    gst::ElementFactory::make("rustv4l2src")
        .property("device", device)
        .build()
        .unwrap()
}

#[test]
fn color_balance_lists_the_devices_colour_controls_as_v4l2src_does() {
    let _device = common::setup();
    let device = common::vivid_sp();
    let src = colour_source(&device);
    let balance = src
        .dynamic_cast_ref::<gst_video::ColorBalance>()
        .expect("rustv4l2src implements GstColorBalance");
    assert_eq!(
        balance.balance_type(),
        gst_video::ColorBalanceType::Hardware
    );
    assert!(balance.list_channels().is_empty(), "no channels in NULL");

    src.set_state(gst::State::Ready).unwrap();
    let channels = balance.list_channels();
    let labels: Vec<String> = channels.iter().map(|c| c.label().to_string()).collect();
    assert_eq!(labels, ["brightness", "contrast", "saturation", "hue"]);
    let listed = listed_ranges(&device);
    for c in &channels {
        let label = c.label();
        assert_eq!(
            Some(&(c.min_value(), c.max_value())),
            listed.get(label.as_str()),
            "range of '{label}' against v4l2-ctl --list-ctrls"
        );
    }
    // The same objects for as long as the device stays open.
    assert_eq!(balance.list_channels(), channels);

    // C v4l2src lists more controls of vivid's; the four it shares must look the same.
    let theirs = gst::ElementFactory::make("v4l2src")
        .property("device", &device)
        .build()
        .expect("v4l2src (gstreamer1.0-plugins-good, which scripts/setup-deps installs)");
    theirs.set_state(gst::State::Ready).unwrap();
    let their_channels: Vec<(String, i32, i32)> = theirs
        .dynamic_cast_ref::<gst_video::ColorBalance>()
        .unwrap()
        .list_channels()
        .iter()
        .map(|c| (c.label().to_string(), c.min_value(), c.max_value()))
        .collect();
    theirs.set_state(gst::State::Null).unwrap();
    for c in &channels {
        let ours = (c.label().to_string(), c.min_value(), c.max_value());
        assert!(
            their_channels.contains(&ours),
            "{ours:?} is not among v4l2src's channels {their_channels:?}"
        );
    }
    src.set_state(gst::State::Null).unwrap();
}

#[test]
fn color_balance_set_value_reaches_the_driver_and_the_property() {
    let _device = common::setup();
    let device = common::vivid_sp();
    let _reset = DefaultColorsOnDrop(device.clone());
    let src = colour_source(&device);
    let balance = src.dynamic_cast_ref::<gst_video::ColorBalance>().unwrap();
    src.set_state(gst::State::Ready).unwrap();
    let seen = record_value_changes(balance);

    let brightness = channel(balance, "brightness");
    let on_channel = Arc::new(Mutex::new(Vec::new()));
    let sink = on_channel.clone();
    brightness.connect_value_changed(move |_, value| sink.lock().unwrap().push(value));
    balance.set_value(&brightness, 77);
    assert_eq!(driver_value(&device, "brightness"), "77");
    assert_eq!(balance.value(&brightness), 77);
    assert_eq!(src.property::<i32>("brightness"), 77);
    assert_eq!(*seen.lock().unwrap(), [("brightness".to_owned(), 77)]);
    assert_eq!(*on_channel.lock().unwrap(), [77]);

    // The other way round: the property, seen through the interface.
    seen.lock().unwrap().clear();
    src.set_property("contrast", 66i32);
    assert_eq!(balance.value(&channel(balance, "contrast")), 66);
    assert_eq!(*seen.lock().unwrap(), [("contrast".to_owned(), 66)]);

    // Beyond the channel's range: the nearest end of it.
    seen.lock().unwrap().clear();
    let hue = channel(balance, "hue");
    balance.set_value(&hue, hue.max_value() + 1000);
    assert_eq!(
        driver_value(&device, "hue"),
        hue.max_value().to_string(),
        "clamped to the range"
    );
    assert_eq!(*seen.lock().unwrap(), [("hue".to_owned(), hue.max_value())]);
    src.set_state(gst::State::Null).unwrap();
}

#[test]
fn color_balance_works_while_playing() {
    let _device = common::setup();
    let device = common::vivid_sp();
    let _reset = DefaultColorsOnDrop(device.clone());
    let src = colour_source(&device);
    let pipeline = gst::Pipeline::new();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &sink]).unwrap();
    src.link(&sink).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    common::assert_settles_in(pipeline.upcast_ref(), gst::State::Playing);

    let balance = src.dynamic_cast_ref::<gst_video::ColorBalance>().unwrap();
    let seen = record_value_changes(balance);
    let saturation = channel(balance, "saturation");
    balance.set_value(&saturation, 33);
    assert_eq!(driver_value(&device, "saturation"), "33");
    assert_eq!(balance.value(&saturation), 33);
    assert_eq!(src.property::<i32>("saturation"), 33);
    assert_eq!(*seen.lock().unwrap(), [("saturation".to_owned(), 33)]);

    let bus = pipeline.bus().unwrap();
    let trouble = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(200),
        &[gst::MessageType::Warning, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(trouble.is_none(), "{trouble:?}");
}

#[test]
fn color_balance_channels_go_with_the_device_and_stale_ones_do_nothing() {
    let _device = common::setup();
    let device = common::vivid_sp();
    let _reset = DefaultColorsOnDrop(device.clone());
    let src = colour_source(&device);
    let balance = src.dynamic_cast_ref::<gst_video::ColorBalance>().unwrap();
    let seen = record_value_changes(balance);
    src.set_state(gst::State::Ready).unwrap();
    let stale = channel(balance, "brightness");
    let before = driver_value(&device, "brightness");
    src.set_state(gst::State::Null).unwrap();

    assert!(balance.list_channels().is_empty(), "no channels in NULL");
    balance.set_value(&stale, 9);
    assert_eq!(balance.value(&stale), 0);
    assert_eq!(driver_value(&device, "brightness"), before);
    // Not kept for the next open either: the property was never set.
    assert_eq!(src.property::<i32>("brightness"), 0);

    // Reopened: new channels, and the old one still changes nothing.
    src.set_state(gst::State::Ready).unwrap();
    let fresh = channel(balance, "brightness");
    assert_ne!(fresh, stale);
    balance.set_value(&stale, 9);
    assert_eq!(driver_value(&device, "brightness"), before);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    src.set_state(gst::State::Null).unwrap();
}

/// vivid's `disconnect` button makes every ioctl on the open node fail with ENODEV until the
/// last file handle on it closes: setting a channel then warns, naming the device, the control
/// and the errno, and neither crashes nor reports a change.
#[test]
fn color_balance_on_a_vanished_device_warns() {
    let _device = common::setup();
    let device = common::vivid_sp();
    let _reset = DefaultColorsOnDrop(device.clone());
    let src = colour_source(&device);
    let pipeline = gst::Pipeline::new();
    pipeline.add(&src).unwrap();
    pipeline.set_state(gst::State::Ready).unwrap();
    let balance = src.dynamic_cast_ref::<gst_video::ColorBalance>().unwrap();
    let seen = record_value_changes(balance);
    let brightness = channel(balance, "brightness");

    // v4l2-ctl may complain about the node it just made vanish; what counts is the element.
    let _ = Command::new("v4l2-ctl")
        .args(["-d", &device, "-c", "disconnect=1"])
        .output();
    balance.set_value(&brightness, 42);
    let _ = balance.value(&brightness);
    let warning = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(2),
            &[gst::MessageType::Warning, gst::MessageType::Error],
        )
        .expect("a warning about the failed control");
    let error = match warning.view() {
        gst::MessageView::Warning(w) => w.error(),
        _ => panic!("not a warning: {warning:?}"),
    };
    let text = error.to_string();
    eprintln!("set_value on the vanished device: {text}");
    assert!(
        error.matches(gst::ResourceError::Settings),
        "a control the driver refuses is a settings warning: {text}"
    );
    assert!(
        text.contains(&device)
            && text.to_lowercase().contains("brightness")
            && text.contains("ENODEV"),
        "{text}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    pipeline.set_state(gst::State::Null).unwrap();
    drop(pipeline);

    // vivid brings the node back once the element has closed it.
    assert!(
        common::wait_for_node(&device, std::time::Duration::from_secs(10)).is_some(),
        "{device} did not come back after the element closed it"
    );
}
