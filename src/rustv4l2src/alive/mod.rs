//! What keeps the stream alive when the device or its source does not: following a source
//! change and waiting out a lost signal (`signal`), waiting for an unplugged device and
//! bringing it back (`reconnect`), and restarting a stream the driver failed (`restart`).
//! All of it runs in `create()`, on the streaming thread.
//!
//! May import `stream`, `knobs` and `face`; only the element imports this folder.

pub(in crate::rustv4l2src) mod reconnect;
pub(in crate::rustv4l2src) mod restart;
pub(in crate::rustv4l2src) mod signal;
