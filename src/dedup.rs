//! De-duplication of streamed and replayed responses (SPEC 2.3), with the
//! tie-breaks ccusage 20.0.24 uses (measured; see the tests).
//!
//! Claude Code writes one line per content block of a streamed response (same
//! `message.id`, growing `output_tokens`) and copies earlier lines into resumed
//! sessions and sidechain replays. One response must count once.

use rustc_hash::FxHashMap;

use crate::domain::UsageEntry;

/// Incremental de-duplicator: feed entries in reading order (files sorted by
/// path, lines in file order); each response keeps the place of its first
/// sighting and the content of the best copy.
#[derive(Default)]
pub struct Deduper {
    kept: Vec<UsageEntry>,
    exact: FxHashMap<(u64, Option<u64>), usize>,
    by_message: FxHashMap<u64, Vec<usize>>,
}

impl Deduper {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            kept: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub fn push(&mut self, entry: UsageEntry) {
        // Entries without a message id are never merged.
        let Some(message) = entry.message_id else {
            self.kept.push(entry);
            return;
        };
        let key = (message, entry.request_id);
        let found = self.exact.get(&key).copied().or_else(|| {
            // A sidechain replay carries the parent's message id under a new
            // request id; it is the same response.
            self.by_message.get(&message).and_then(|seen| {
                seen.iter()
                    .copied()
                    .find(|&i| entry.is_sidechain || self.kept[i].is_sidechain)
            })
        });
        match found {
            Some(i) => {
                if replaces(&entry, &self.kept[i]) {
                    self.exact.insert(key, i);
                    self.kept[i] = entry;
                }
            }
            None => {
                let i = self.kept.len();
                self.exact.insert(key, i);
                self.by_message.entry(message).or_default().push(i);
                self.kept.push(entry);
            }
        }
    }

    pub fn finish(self) -> Vec<UsageEntry> {
        self.kept
    }
}

/// Does `new` replace the copy already kept? The main conversation beats a
/// sidechain copy whatever the sizes; then the larger total (the last streamed
/// line); then a copy that states its speed; else the first one stays.
fn replaces(new: &UsageEntry, old: &UsageEntry) -> bool {
    if new.is_sidechain != old.is_sidechain {
        return !new.is_sidechain;
    }
    let (a, b) = (new.tokens.total(), old.tokens.total());
    if a != b {
        return a > b;
    }
    new.speed.is_some() && old.speed.is_none()
}

/// De-duplicates a whole list given in reading order.
pub fn dedup(entries: impl IntoIterator<Item = UsageEntry>) -> Vec<UsageEntry> {
    let mut d = Deduper::default();
    for e in entries {
        d.push(e);
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{Origin, Speed, TokenCounts};
    use crate::ingest::parse::hash_id;

    fn entry(id: Option<&str>, req: Option<&str>, out: u64, side: bool) -> UsageEntry {
        UsageEntry {
            timestamp: jiff::Timestamp::from_second(1_750_000_000).unwrap(),
            tokens: TokenCounts {
                input_tokens: 100,
                output_tokens: out,
                ..Default::default()
            },
            cache_creation_1h: 0,
            speed: None,
            cost_usd: None,
            model: None,
            message_id: id.map(hash_id),
            request_id: req.map(hash_id),
            origin: Arc::new(Origin {
                project: Arc::from("p"),
                session_id: "s".into(),
                project_path: "p".into(),
            }),
            is_sidechain: side,
            usage_limit_reset: None,
        }
    }

    fn outs(v: &[UsageEntry]) -> Vec<u64> {
        v.iter().map(|e| e.tokens.output_tokens).collect()
    }

    #[test]
    fn streamed_lines_keep_the_largest_in_either_order() {
        let a = dedup([entry(Some("m"), Some("r"), 10, false), entry(Some("m"), Some("r"), 50, false)]);
        assert_eq!(outs(&a), vec![50]);
        let b = dedup([
            entry(Some("m"), Some("r"), 1, false),
            entry(Some("m"), Some("r"), 5, false),
            entry(Some("m"), Some("r"), 3, false),
        ]);
        assert_eq!(outs(&b), vec![5]);
    }

    #[test]
    fn keys_need_a_message_id() {
        // id only: merged; request id only: never; neither: never.
        assert_eq!(dedup([entry(Some("m"), None, 1, false), entry(Some("m"), None, 2, false)]).len(), 1);
        assert_eq!(dedup([entry(None, Some("r"), 1, false), entry(None, Some("r"), 1, false)]).len(), 2);
        assert_eq!(dedup([entry(None, None, 1, false), entry(None, None, 1, false)]).len(), 2);
        // (id, r) and (id, none) are different responses.
        assert_eq!(dedup([entry(Some("m"), Some("r"), 1, false), entry(Some("m"), None, 1, false)]).len(), 2);
        // Same id, different request ids, both main conversation: two responses.
        assert_eq!(dedup([entry(Some("m"), Some("r1"), 1, false), entry(Some("m"), Some("r2"), 1, false)]).len(), 2);
    }

    #[test]
    fn sidechain_copies_merge_and_lose_to_the_main_conversation() {
        let a = dedup([entry(Some("m"), Some("r1"), 10, false), entry(Some("m"), Some("r2"), 90, true)]);
        assert_eq!(outs(&a), vec![10]);
        let b = dedup([entry(Some("m"), Some("r2"), 90, true), entry(Some("m"), Some("r1"), 10, false)]);
        assert_eq!(outs(&b), vec![10]);
        let both_side = dedup([entry(Some("m"), Some("r1"), 10, true), entry(Some("m"), Some("r2"), 90, true)]);
        assert_eq!(outs(&both_side), vec![90]);
    }

    #[test]
    fn ties_keep_the_first_unless_the_later_states_its_speed() {
        let mut a = entry(Some("m"), Some("r"), 10, false);
        let mut b = entry(Some("m"), Some("r"), 10, false);
        a.cost_usd = Some(0.1);
        b.cost_usd = Some(0.9);
        assert_eq!(dedup([a.clone(), b.clone()])[0].cost_usd, Some(0.1));
        b.speed = Some(Speed::Fast);
        assert_eq!(dedup([a.clone(), b.clone()])[0].cost_usd, Some(0.9));
        assert_eq!(dedup([b, a])[0].cost_usd, Some(0.9));
    }

    #[test]
    fn winner_keeps_the_first_position() {
        let v = dedup([
            entry(Some("m"), Some("r"), 1, false),
            entry(None, None, 7, false),
            entry(Some("m"), Some("r"), 9, false),
        ]);
        assert_eq!(outs(&v), vec![9, 7]);
    }

    #[test]
    fn idempotent() {
        let input = vec![
            entry(Some("m"), Some("r"), 1, false),
            entry(Some("m"), Some("r2"), 4, true),
            entry(Some("n"), Some("r"), 2, false),
            entry(Some("m"), Some("r"), 3, false),
        ];
        let once = dedup(input);
        let twice = dedup(once.clone());
        assert_eq!(once, twice);
    }
}
