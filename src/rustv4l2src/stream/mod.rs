//! The stream: the capture session and its state machine (`session`), negotiation, allocation
//! and the io-modes (`negotiation`, `allocation`, `iomodes`, `reading`, and `import` over the
//! `slots` of `io-mode=dmabuf-import`), the frame pool and lending frames downstream (`pool`,
//! `lend`), the capture loop (`capture`) and the timeline of timestamps and sequence numbers.
//!
//! May import `knobs`, `face`, and from `interfaces` the lists the session keeps for the open
//! device (`colorbalance::Channels`, `tuner_lists::Lists`); not `alive` or the element.

pub(in crate::rustv4l2src) mod allocation;
pub(in crate::rustv4l2src) mod capture;
pub(in crate::rustv4l2src) mod import;
mod iomodes;
mod lend;
mod negotiation;
mod pool;
mod reading;
pub(in crate::rustv4l2src) mod session;
pub(in crate::rustv4l2src) mod slots;
pub(in crate::rustv4l2src) mod timeline;
