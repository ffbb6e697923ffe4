//! De-duplication of streamed and replayed responses, with the
//! tie-breaks ccusage 20.0.24 uses (measured; see the tests).
//!
//! Claude Code writes one line per content block of a streamed response (same
//! `message.id`, growing `output_tokens`) and copies earlier lines into resumed
//! sessions and sidechain replays. One response must count once.

use rustc_hash::FxHashMap;

use crate::domain::UsageEntry;

/// Identity of a response: its message id with its request id, or, for lines
/// without a request id, with its session.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ExactKey {
    Request { message: u64, request: u64 },
    Session { message: u64, session: u64 },
}

/// Sessions a response has been seen in: a sidechain replay (new request id)
/// is matched within them.
type SeenIn = (u64, u64);

fn keys(e: &UsageEntry) -> Option<(ExactKey, SeenIn)> {
    let message = e.message_id?;
    let exact = match e.request_id {
        Some(request) => ExactKey::Request { message, request },
        None => ExactKey::Session {
            message,
            session: e.session_key,
        },
    };
    Some((exact, (message, e.session_key)))
}

/// A counted response: the copy that counts, where it was first seen and
/// where the counted copy was read (`P` is a position: `()` when the caller
/// only needs the entries, the store's (file, offset) otherwise).
#[derive(Clone, Debug)]
pub struct Kept<P> {
    /// The copy that counts (the best one seen so far).
    pub entry: UsageEntry,
    /// The position of the response's first sighting.
    pub slot: P,
    /// Where the counted copy (`entry`) was read.
    pub winner: P,
}

/// Incremental de-duplicator: feed entries in reading order (files sorted by
/// path, lines in file order); each response keeps the place of its first
/// sighting and the content of the best copy.
///
/// The matching rules are ccusage 20.0.24's, measured on fixtures (see the
/// `dedup_*` cases in tests/fixtures/ccusage): an exact key match; else a
/// sidechain copy with the same message id, in a session the response was
/// seen in, at the same instant as the copy kept.
pub struct Deduper<P = ()> {
    kept: Vec<Kept<P>>,
    exact: FxHashMap<ExactKey, usize>,
    seen_in: FxHashMap<SeenIn, Slots>,
}

/// The responses seen in one session under one message id: nearly always
/// one, held inline (a cold load has 100,000 of them: a small vector each
/// cost 5 MB and as many allocations to make and free). The rare list is
/// boxed so a map entry stays 32 bytes.
enum Slots {
    One(usize),
    #[expect(clippy::box_collection, reason = "keeps the common case 16 bytes")]
    Many(Box<Vec<usize>>),
}

impl Slots {
    fn as_slice(&self) -> &[usize] {
        match self {
            Slots::One(i) => std::slice::from_ref(i),
            Slots::Many(v) => v,
        }
    }

    fn add(&mut self, i: usize) {
        const _: () = assert!(std::mem::size_of::<Slots>() == 16);
        match self {
            Slots::One(j) if *j == i => {}
            Slots::One(j) => *self = Slots::Many(Box::new(vec![*j, i])),
            Slots::Many(v) => {
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
    }
}

impl<P> Default for Deduper<P> {
    fn default() -> Self {
        Self {
            kept: Vec::new(),
            exact: FxHashMap::default(),
            seen_in: FxHashMap::default(),
        }
    }
}

/// What [`Deduper::push_at`] did with an entry.
#[derive(Clone, Copy, Debug)]
pub struct Pushed<P> {
    /// The response (index into [`Deduper::kept`]) the entry is a copy of.
    pub index: usize,
    /// Where the copy that counted until now was read, when this one replaced it.
    pub displaced: Option<P>,
}

impl Deduper<()> {
    /// Adds one entry when no positions are tracked.
    pub fn push(&mut self, entry: UsageEntry) {
        self.push_at(entry, ());
    }

    /// The counted entries, in order of first sighting.
    pub fn finish(self) -> Vec<UsageEntry> {
        self.kept.into_iter().map(|k| k.entry).collect()
    }
}

impl<P: Copy> Deduper<P> {
    /// An empty de-duplicator with room for `n` responses.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            kept: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Adds one entry; says which response it counts for and, when it took
    /// over from an earlier copy, where that copy was read.
    pub fn push_at(&mut self, entry: UsageEntry, pos: P) -> Pushed<P> {
        // Entries without a message id are never merged.
        let Some((exact, seen_in)) = keys(&entry) else {
            self.kept.push(Kept {
                entry,
                slot: pos,
                winner: pos,
            });
            return Pushed {
                index: self.kept.len() - 1,
                displaced: None,
            };
        };
        let found = self.exact.get(&exact).copied().or_else(|| {
            self.seen_in.get(&seen_in).and_then(|slots| {
                slots.as_slice().iter().copied().find(|&i| {
                    let kept = &self.kept[i].entry;
                    (entry.is_sidechain || kept.is_sidechain) && kept.timestamp == entry.timestamp
                })
            })
        });
        let mut displaced = None;
        let i = match found {
            Some(i) => {
                if replaces(&entry, &self.kept[i].entry) {
                    displaced = Some(self.kept[i].winner);
                    self.kept[i].entry = entry;
                    self.kept[i].winner = pos;
                    self.exact.insert(exact, i);
                }
                i
            }
            None => {
                self.kept.push(Kept {
                    entry,
                    slot: pos,
                    winner: pos,
                });
                let i = self.kept.len() - 1;
                self.exact.insert(exact, i);
                i
            }
        };
        self.seen_in
            .entry(seen_in)
            .and_modify(|slots| slots.add(i))
            .or_insert(Slots::One(i));
        Pushed {
            index: i,
            displaced,
        }
    }

    /// The responses so far, in order of first sighting.
    pub fn kept(&self) -> &[Kept<P>] {
        &self.kept
    }

    /// The responses with their positions, in order of first sighting.
    pub fn finish_kept(self) -> Vec<Kept<P>> {
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

    use super::*;
    use crate::domain::Speed;
    use crate::ingest::parse::hash_id;

    fn entry(id: Option<&str>, req: Option<&str>, out: u64, side: bool) -> UsageEntry {
        in_session(id, req, out, side, "s", 1_750_000_000)
    }

    fn in_session(
        id: Option<&str>,
        req: Option<&str>,
        out: u64,
        side: bool,
        session: &str,
        ts: i64,
    ) -> UsageEntry {
        UsageEntry {
            message_id: id.map(hash_id),
            request_id: req.map(hash_id),
            session_key: hash_id(session),
            is_sidechain: side,
            ..crate::domain::sample_entry(jiff::Timestamp::from_second(ts).unwrap(), out)
        }
    }

    fn outs(v: &[UsageEntry]) -> Vec<u64> {
        v.iter().map(|e| e.tokens.output_tokens).collect()
    }

    #[test]
    fn streamed_lines_keep_the_largest_in_either_order() {
        let a = dedup([
            entry(Some("m"), Some("r"), 10, false),
            entry(Some("m"), Some("r"), 50, false),
        ]);
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
        assert_eq!(
            dedup([
                entry(Some("m"), None, 1, false),
                entry(Some("m"), None, 2, false)
            ])
            .len(),
            1
        );
        assert_eq!(
            dedup([
                entry(None, Some("r"), 1, false),
                entry(None, Some("r"), 1, false)
            ])
            .len(),
            2
        );
        assert_eq!(
            dedup([entry(None, None, 1, false), entry(None, None, 1, false)]).len(),
            2
        );
        // (id, r) and (id, none) are different responses.
        assert_eq!(
            dedup([
                entry(Some("m"), Some("r"), 1, false),
                entry(Some("m"), None, 1, false)
            ])
            .len(),
            2
        );
        // Same id, different request ids, both main conversation: two responses.
        assert_eq!(
            dedup([
                entry(Some("m"), Some("r1"), 1, false),
                entry(Some("m"), Some("r2"), 1, false)
            ])
            .len(),
            2
        );
    }

    #[test]
    fn sidechain_copies_merge_and_lose_to_the_main_conversation() {
        let a = dedup([
            entry(Some("m"), Some("r1"), 10, false),
            entry(Some("m"), Some("r2"), 90, true),
        ]);
        assert_eq!(outs(&a), vec![10]);
        let b = dedup([
            entry(Some("m"), Some("r2"), 90, true),
            entry(Some("m"), Some("r1"), 10, false),
        ]);
        assert_eq!(outs(&b), vec![10]);
        let both_side = dedup([
            entry(Some("m"), Some("r1"), 10, true),
            entry(Some("m"), Some("r2"), 90, true),
        ]);
        assert_eq!(outs(&both_side), vec![90]);
    }

    #[test]
    fn without_request_id_only_the_same_session_merges() {
        let a = in_session(Some("m"), None, 1, false, "s1", 100);
        let b = in_session(Some("m"), None, 2, false, "s2", 100);
        let c = in_session(Some("m"), None, 3, false, "s1", 200);
        assert_eq!(outs(&dedup([a, b, c])), vec![3, 2]);
    }

    #[test]
    fn a_replay_matches_in_a_session_that_saw_a_resumed_copy() {
        let first = in_session(Some("m"), Some("r1"), 63, false, "a", 100);
        let last = in_session(Some("m"), Some("r1"), 127, false, "a", 101);
        let resumed = in_session(Some("m"), Some("r1"), 63, false, "b", 100);
        let replay = in_session(Some("m"), Some("r9"), 127, true, "b", 101);
        assert_eq!(
            outs(&dedup([
                first.clone(),
                last.clone(),
                resumed.clone(),
                replay.clone()
            ])),
            vec![127]
        );
        assert_eq!(
            dedup([first.clone(), last.clone(), replay.clone()]).len(),
            2
        );
        let stale = in_session(Some("m"), Some("r9"), 63, true, "b", 100);
        assert_eq!(dedup([first, last, resumed, stale]).len(), 2);
    }

    #[test]
    fn sidechain_replays_merge_only_at_the_same_instant_in_the_same_session() {
        let main = in_session(Some("m"), Some("r1"), 10, false, "s", 100);
        let later = in_session(Some("m"), Some("r2"), 90, true, "s", 160);
        assert_eq!(dedup([main.clone(), later]).len(), 2);
        let other_session = in_session(Some("m"), Some("r2"), 90, true, "t", 100);
        assert_eq!(dedup([main.clone(), other_session]).len(), 2);
        let replay = in_session(Some("m"), None, 90, true, "s", 100);
        assert_eq!(outs(&dedup([main, replay])), vec![10]);
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
