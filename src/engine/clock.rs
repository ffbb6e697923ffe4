//! Where "now" comes from.

use jiff::Timestamp;

/// The system clock, or a fixed instant (`CSM_NOW`) for tests, demos and
/// screenshots. Computation takes `now` as an argument; only this reads it.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The real clock: `now` reads the system time.
    System,
    /// A frozen instant (`CSM_NOW`, tests): `now` always returns it.
    Fixed(Timestamp),
}

impl Clock {
    /// The current instant by this clock.
    pub fn now(self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => t,
        }
    }
}
