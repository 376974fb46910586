//! Hand-assembled pickles: what torch.save writes for a state dict, and what must be refused.
//! (Files written by real torch are checked in `tests/pth_fixtures.rs`.)

use super::*;

/// A tiny pickle assembler with the opcodes torch.save uses.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Self(vec![0x80, 2])
    }
    fn op(mut self, op: u8) -> Self {
        self.0.push(op);
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn str(self, s: &str) -> Self {
        let len = u32::try_from(s.len()).unwrap().to_le_bytes();
        self.op(b'X').raw(&len).raw(s.as_bytes())
    }
    fn int(self, v: u8) -> Self {
        self.op(b'K').raw(&[v])
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(b'c').raw(format!("{module}\n{name}\n").as_bytes())
    }
    /// `_rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict())`.
    fn tensor(self, key: &str, numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Self {
        let mut p = self
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b'(')
            .op(b'(')
            .str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b't')
            .op(b'Q')
            .int(offset)
            .op(b'(');
        for &s in size {
            p = p.int(s);
        }
        p = p.op(b't').op(b'(');
        for &s in stride {
            p = p.int(s);
        }
        p.op(b't')
            .op(0x89)
            .global("collections", "OrderedDict")
            .op(b')')
            .op(b'R')
            .op(b't')
            .op(b'R')
    }
    fn stop(self) -> Vec<u8> {
        self.op(b'.').0
    }
}

/// `{"a": tensor [2, 3] of storage 0, "b": its transpose at offset 1}` as torch.save writes
/// it: an OrderedDict with `_metadata` set by BUILD.
fn state_dict() -> Pickle {
    state_dict_into(Pickle::new())
}

/// [`state_dict`]'s opcodes appended to `p`, so a checkpoint can nest it.
fn state_dict_into(p: Pickle) -> Pickle {
    p.global("collections", "OrderedDict")
        .op(b')')
        .op(b'R')
        .op(b'q')
        .raw(&[0])
        .op(b'(')
        .str("a")
        .tensor("0", 7, 0, &[2, 3], &[3, 1])
        .str("b")
        .tensor("0", 7, 1, &[3, 2], &[1, 3])
        .op(b'u')
        .op(b'}')
        .str("_metadata")
        .op(b'}')
        .op(b's')
        .op(b'b')
}

fn storage(key: &str, numel: i64) -> StorageRef {
    StorageRef {
        kind: StorageKind::Float32,
        key: key.into(),
        numel,
    }
}

#[test]
fn reads_a_state_dict_with_views_and_metadata() {
    let records = read_state_dict(&state_dict().stop()).unwrap();
    assert_eq!(
        records,
        vec![
            (
                "a".to_owned(),
                TensorRecord {
                    storage: storage("0", 7),
                    offset: 0,
                    size: vec![2, 3],
                    stride: vec![3, 1],
                }
            ),
            (
                "b".to_owned(),
                TensorRecord {
                    storage: storage("0", 7),
                    offset: 1,
                    size: vec![3, 2],
                    stride: vec![1, 3],
                }
            ),
        ]
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let full = state_dict().stop();
    for len in 0..full.len() {
        let err = read_state_dict(&full[..len]).unwrap_err();
        assert!(err.offset <= len, "{len}: {err}");
    }
}

#[test]
fn refuses_globals_outside_a_state_dict() {
    let pickle = Pickle::new()
        .global("os", "system")
        .str("echo hi")
        .op(0x85)
        .op(b'R')
        .stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(err.message.contains("os.system"), "{err}");
    assert_eq!(err.offset, 2, "the GLOBAL opcode");
}

#[test]
fn refuses_unknown_storage_types() {
    let pickle = Pickle::new().global("torch", "ComplexFloatStorage").stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(err.message.contains("torch.ComplexFloatStorage"), "{err}");
}

#[test]
fn refuses_a_top_level_that_is_not_a_dict() {
    let pickle = Pickle::new().op(b']').stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(err.message.contains("a list of 0"), "{err}");
}

#[test]
fn refuses_a_checkpoint_that_nests_the_state_dict() {
    let pickle = Pickle::new()
        .op(b'}')
        .str("state_dict")
        .op(b'}')
        .op(b's')
        .stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(
        err.message
            .contains("\"state_dict\" is a dict of 0, not a tensor"),
        "{err}"
    );
}

#[test]
fn reads_protocol_4_framing_and_short_strings() {
    let mut pickle = vec![0x80, 4, 0x95];
    pickle.extend_from_slice(&100u64.to_le_bytes());
    pickle.extend_from_slice(&[b'}', 0x94, b'(']);
    for (key, value) in [("x", 1u8), ("y", 2)] {
        pickle.extend_from_slice(&[0x8c, 1, key.as_bytes()[0], b'K', value]);
    }
    pickle.extend_from_slice(b"u.");
    let err = read_state_dict(&pickle).unwrap_err();
    // Parsed to the end: the values are ints, which the state-dict check then refuses.
    assert!(err.message.contains("\"x\" is the int 1"), "{err}");
}

#[test]
fn long1_integers_are_signed_little_endian() {
    for (bytes, expected) in [
        (vec![], 0i64),
        (vec![0xff], -1),
        (vec![0x00, 0x01], 256),
        (vec![0xff, 0x7f], 32767),
        (vec![0x00, 0x80], -32768),
        (vec![0, 0, 0, 0, 1], 1 << 32),
    ] {
        let mut pickle = vec![0x80, 2, 0x8a, u8::try_from(bytes.len()).unwrap()];
        pickle.extend_from_slice(&bytes);
        pickle.push(b'.');
        let err = read_state_dict(&pickle).unwrap_err();
        assert!(
            err.message.contains(&format!("the int {expected},")),
            "{bytes:?}: {err}"
        );
    }
    let mut too_long = vec![0x80, 2, 0x8a, 9];
    too_long.extend_from_slice(&[0; 9]);
    too_long.push(b'.');
    let err = read_state_dict(&too_long).unwrap_err();
    assert!(err.message.contains("does not fit 64 bits"), "{err}");
}

#[test]
fn refuses_a_second_reference_to_a_mutable_dict() {
    let pickle = Pickle::new()
        .op(b'}')
        .op(b'q')
        .raw(&[0])
        .op(b'h')
        .raw(&[0])
        .stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(err.message.contains("referenced twice"), "{err}");
}

#[test]
fn refuses_unknown_opcodes_and_protocols() {
    let err = read_state_dict(&[0x80, 2, b'P', b'.']).unwrap_err();
    assert!(err.message.contains("opcode 0x50"), "{err}");
    let err = read_state_dict(&[0x80, 1, b'}', b'.']).unwrap_err();
    assert!(err.message.contains("protocol 1"), "{err}");
}

#[test]
fn refuses_leftovers_and_underflow() {
    let err = read_state_dict(&Pickle::new().op(b'}').op(b'}').stop()).unwrap_err();
    assert!(err.message.contains("left on the stack"), "{err}");
    let err = read_state_dict(&Pickle::new().op(b'R').stop()).unwrap_err();
    assert!(err.message.contains("underflow"), "{err}");
    // A MARK hides what lies below it.
    let err = read_state_dict(&Pickle::new().op(b'}').op(b'(').op(b'b').stop()).unwrap_err();
    assert!(err.message.contains("underflow"), "{err}");
}

#[test]
fn refuses_a_tensor_with_mismatched_size_and_stride() {
    let pickle = Pickle::new()
        .op(b'}')
        .str("w")
        .tensor("0", 6, 0, &[2, 3], &[3])
        .op(b's')
        .stop();
    let err = read_state_dict(&pickle).unwrap_err();
    assert!(err.message.contains("differ in length"), "{err}");
}

#[test]
fn refuses_nesting_too_deep_to_clone_or_drop() {
    // Found by fuzzing: `()` then TUPLE1 a million times (one byte a level) overflowed the
    // stack of the derived Clone and Drop.
    let mut p = Pickle::new().op(b')');
    for _ in 0..1_000_000 {
        p = p.op(0x85);
    }
    let err = read_state_dict(&p.stop()).unwrap_err();
    assert!(err.message.contains("nest more than 32 deep"), "{err}");
    // Exactly MAX_DEPTH is allowed (then refused as not a dict, which is the next check).
    let mut p = Pickle::new().op(b')');
    for _ in 1..MAX_DEPTH {
        p = p.op(0x85);
    }
    let err = read_state_dict(&p.stop()).unwrap_err();
    assert!(err.message.contains("not a state dict"), "{err}");
    // Lists count too: MAX_DEPTH + 1 empty lists, each appended into the one below it.
    let mut p = Pickle::new();
    for _ in 0..=MAX_DEPTH {
        p = p.op(b']');
    }
    for _ in 0..MAX_DEPTH {
        p = p.op(b'a');
    }
    let err = read_state_dict(&p.stop()).unwrap_err();
    assert!(err.message.contains("nest more than 32 deep"), "{err}");
}

#[test]
fn refuses_memo_references_that_double_a_value() {
    // x = (x, x), 40 times: 2^40 values from 200 bytes.
    let mut p = Pickle::new().op(b')').op(b'q').raw(&[0]);
    for _ in 0..40 {
        p = p
            .op(b'h')
            .raw(&[0])
            .op(b'h')
            .raw(&[0])
            .op(0x86)
            .op(b'q')
            .raw(&[0]);
    }
    let err = read_state_dict(&p.stop()).unwrap_err();
    assert!(err.message.contains("copy more than"), "{err}");
}

/// `{"meta": {"dataset_meta": {"classes": ("cat", "dog")}, "epoch": 20}, KEY: state_dict}`,
/// the layout mmpretrain's checkpoints have.
fn checkpoint(key: &str) -> Pickle {
    let p = Pickle::new()
        .op(b'}')
        .op(b'(')
        .str("meta")
        .op(b'}')
        .op(b'(')
        .str("dataset_meta")
        .op(b'}')
        .str("classes")
        .str("cat")
        .str("dog")
        .op(0x86)
        .op(b's')
        .str("epoch")
        .int(20)
        .op(b'u')
        .str(key);
    state_dict_into(p).op(b'u')
}

#[test]
fn reads_a_checkpoint_that_nests_its_state_dict() {
    let plain = read_state_dict(&state_dict().stop()).unwrap();
    for key in STATE_DICT_KEYS {
        let file = read_checkpoint(&checkpoint(key).stop()).unwrap();
        assert_eq!(file.tensors, plain, "{key}");
        assert_eq!(file.nested_under.as_deref(), Some(key));
        assert_eq!(
            file.other_entries,
            vec![("meta".to_owned(), "a dict of 2".to_owned())]
        );
        assert_eq!(file.classes, Some(vec!["cat".to_owned(), "dog".to_owned()]));
    }
}

#[test]
fn reads_a_plain_state_dict_as_a_checkpoint() {
    let file = read_checkpoint(&state_dict().stop()).unwrap();
    assert_eq!(file.tensors, read_state_dict(&state_dict().stop()).unwrap());
    assert_eq!(file.nested_under, None);
    assert!(file.other_entries.is_empty());
    assert_eq!(file.classes, None);
}

#[test]
fn the_strict_reader_still_refuses_a_nested_state_dict() {
    let err = read_state_dict(&checkpoint("state_dict").stop()).unwrap_err();
    assert!(
        err.message.contains("entry \"meta\" is a dict of 2"),
        "{err}"
    );
}

#[test]
fn mmcls_class_lists_are_found_too() {
    let p = Pickle::new()
        .op(b'}')
        .op(b'(')
        .str("meta")
        .op(b'}')
        .str("CLASSES")
        .op(b']')
        .op(b'(')
        .str("person")
        .op(b'e')
        .op(b's')
        .str("state_dict");
    let file = read_checkpoint(&state_dict_into(p).op(b'u').stop()).unwrap();
    assert_eq!(file.classes, Some(vec!["person".to_owned()]));
}

#[test]
fn a_checkpoint_without_a_state_dict_names_its_keys() {
    let p = Pickle::new()
        .op(b'}')
        .op(b'(')
        .str("epoch")
        .int(3)
        .str("weights")
        .op(b'}')
        .op(b'u');
    let err = read_checkpoint(&p.stop()).unwrap_err();
    assert!(err.message.contains("[\"epoch\", \"weights\"]"), "{err}");
    assert!(err.message.contains("\"state_dict\" or \"model\""), "{err}");
}

#[test]
fn a_nested_state_dict_must_hold_tensors_only() {
    let p = Pickle::new()
        .op(b'}')
        .op(b'(')
        .str("epoch")
        .int(3)
        .str("state_dict")
        .op(b'}')
        .str("w")
        .int(1)
        .op(b's')
        .op(b'u');
    let err = read_checkpoint(&p.stop()).unwrap_err();
    assert!(
        err.message.contains(
            "entry \"w\" is the int 1, not a tensor: the state dict under \"state_dict\""
        ),
        "{err}"
    );
}

#[test]
fn metadata_naming_other_globals_is_refused() {
    // numpy scalars and mmengine's HistoryBuffer are Python objects: never called.
    let p = Pickle::new()
        .op(b'}')
        .op(b'(')
        .str("meta")
        .global("numpy.core.multiarray", "scalar")
        .str("state_dict");
    let err = read_checkpoint(&state_dict_into(p).op(b'u').stop()).unwrap_err();
    assert!(
        err.message.contains("numpy.core.multiarray.scalar"),
        "{err}"
    );
}

#[test]
fn every_truncated_checkpoint_is_an_error_not_a_panic() {
    let full = checkpoint("state_dict").stop();
    for len in 0..full.len() {
        assert!(read_checkpoint(&full[..len]).is_err(), "length {len}");
    }
}

#[test]
fn deep_metadata_is_refused_by_the_same_limit() {
    let mut p = Pickle::new().op(b'}').op(b'(').str("meta");
    for _ in 0..=MAX_DEPTH {
        p = p.op(b']').op(b'(');
    }
    for _ in 0..=MAX_DEPTH {
        p = p.op(b'e');
    }
    let p = p.str("state_dict");
    let err = read_checkpoint(&state_dict_into(p).op(b'u').stop()).unwrap_err();
    assert!(err.message.contains("nest more than"), "{err}");
}
