//! Where "now" comes from.

use jiff::Timestamp;

/// The system clock, or a fixed instant (`CSM_NOW`) for tests, demos and
/// screenshots. Computation takes `now` as an argument; only this reads it.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    System,
    Fixed(Timestamp),
}

impl Clock {
    pub fn now(self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => t,
        }
    }
}
