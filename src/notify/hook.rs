//! The dashboard's share of notifications: while no daemon runs, it
//! evaluates the rules after every refresh and sends what is due (the store's
//! claims keep it from repeating what a daemon, or an earlier run, sent).

use jiff::Timestamp;

use crate::blocks::Block;

pub struct AlertHook {
    notifier: crate::notify::Notifier,
    /// True while a daemon runs (it sends instead).
    daemon_running: Box<dyn Fn() -> bool + Send>,
    /// The newest blocks seen (the rules need only the last few).
    pub(crate) tail: Vec<Block>,
    pub(crate) limit: Option<u64>,
    pub(crate) failures: u32,
    pub(crate) last_error: Option<String>,
}

impl AlertHook {
    pub fn new(
        notifier: crate::notify::Notifier,
        daemon_running: impl Fn() -> bool + Send + 'static,
    ) -> AlertHook {
        AlertHook {
            notifier,
            daemon_running: Box::new(daemon_running),
            tail: Vec::new(),
            limit: None,
            failures: 0,
            last_error: None,
        }
    }

    pub(crate) fn saw(&mut self, blocks: &[Block]) {
        // The current window, a gap and a window dated ahead of now at most.
        let from = blocks.len().saturating_sub(4);
        self.tail = blocks[from..].to_vec();
    }

    pub(crate) fn send(&mut self, now: Timestamp) {
        if (self.daemon_running)() {
            return;
        }
        let input = crate::notify::AlertInput::from_blocks(&self.tail, self.limit, now)
            .with_official(self.notifier.official_limits())
            .with_source_failures(self.failures, self.last_error.clone());
        self.notifier.evaluate_and_send(&input, now);
    }
}
