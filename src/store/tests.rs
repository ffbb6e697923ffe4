use jiff::Timestamp;

use super::{CHECKPOINT_ON_CLOSE_AFTER, Store};

/// A short run's small WAL is left for the next process (no checkpoint and
/// no fsyncs on close); one grown past the limit is checkpointed and
/// removed, and so is any WAL a run that wrote nothing finds.
#[test]
fn a_small_wal_outlives_its_writer_and_a_big_one_is_checkpointed() {
    use crate::ingest::claude::activity::ActivityEvent;
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("history.db-wal");
    let event = |n: usize, detail: usize| ActivityEvent {
        ts: "2026-11-20T10:00:00Z".parse::<Timestamp>().unwrap(),
        session_id: format!("s{n}"),
        event: "PreToolUse".into(),
        cwd: None,
        project: None,
        detail: Some("x".repeat(detail)),
        transcript: None,
    };
    {
        let mut s = Store::open(dir.path()).unwrap();
        s.record_activity(&event(0, 10)).unwrap();
    }
    let left = std::fs::metadata(&wal).expect("WAL kept").len();
    assert!(left > 0 && left <= CHECKPOINT_ON_CLOSE_AFTER, "{left}");
    {
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.activity_since(Timestamp::MIN).unwrap().len(), 1);
        for n in 1..=700 {
            s.record_activity(&event(n, 4000)).unwrap();
        }
        assert!(std::fs::metadata(&wal).unwrap().len() > CHECKPOINT_ON_CLOSE_AFTER);
    }
    assert!(!wal.exists(), "checkpointed and removed on close");
    {
        let mut s = Store::open(dir.path()).unwrap();
        s.record_activity(&event(702, 10)).unwrap();
    }
    assert!(wal.exists(), "a small WAL again");
    // A run that only reads checkpoints what it found.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.activity_since(Timestamp::MIN).unwrap().len(), 702);
    drop(s);
    assert!(!wal.exists(), "a reader checkpoints a WAL it did not write");
}
