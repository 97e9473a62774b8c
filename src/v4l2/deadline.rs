//! Turning a deadline into poll()'s timeout, for every wait of this layer (the poller's and the
//! hot-plug monitor's).

use nix::poll::PollTimeout;
use std::time::Instant;

/// poll()'s timeout for waiting until `deadline` (forever without one), from now.
pub(super) fn timeout_until(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
        }
    }
}
