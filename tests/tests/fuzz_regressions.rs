//! Every input kept under `fuzz/regressions/<target>/` (the seeds, and any crash a fuzz run
//! found) replayed through the same code the fuzz target runs (`fuzz/cases.rs`), in a plain
//! `cargo test`: a crash once found stays found. `scripts/fuzz.sh` runs the fuzzers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/cases.rs"]
mod cases;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = openclaw_tests::repo_root()
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no kept inputs in {}", dir.display());
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        // A panic names the input that caused it.
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} panicked", input.display());
    }
}

#[test]
fn config_loader_inputs() {
    replay("config_loader", cases::config_loader);
}

#[test]
fn ws_frame_inputs() {
    replay("ws_frames", cases::ws_frames);
}

#[test]
fn pairing_message_inputs() {
    replay("pairing_messages", cases::pairing_messages);
}

#[test]
fn backup_reader_inputs() {
    replay("backup_reader", cases::backup_reader);
}

#[test]
fn node_protocol_inputs() {
    replay("node_protocol", cases::node_protocol);
}
