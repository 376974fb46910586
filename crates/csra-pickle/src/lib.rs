//! A strict reader for the pickle that `torch.save` writes as `data.pkl` for a state dict (or a
//! training checkpoint that nests one next to plain metadata), without libtorch: csra-host
//! turns its records into tensors, and the fuzzers run it alone.
//!
//! It runs the few pickle opcodes such a file uses (protocols 2 to 5) and knows only the
//! globals a state dict needs: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter` and the typed storages (`torch.FloatStorage`, ...). Any
//! other global or opcode is an error, never a guess: a pickle can name any Python callable,
//! and only these mean "a dict of tensors".

use std::collections::HashMap;
use std::fmt;

/// The opcodes the reader runs, named as in Python's `pickletools`.
pub mod op {
    /// End of the pickle: the top of the stack is the result.
    pub const STOP: u8 = b'.';
    /// The protocol version (one byte).
    pub const PROTO: u8 = 0x80;
    /// A frame's 8-byte length (protocol 4): a hint only.
    pub const FRAME: u8 = 0x95;
    /// Marks the stack for the opcodes that take everything above the mark.
    pub const MARK: u8 = b'(';
    /// Pushes an empty dict.
    pub const EMPTY_DICT: u8 = b'}';
    /// Pushes an empty list.
    pub const EMPTY_LIST: u8 = b']';
    /// Pushes an empty tuple.
    pub const EMPTY_TUPLE: u8 = b')';
    /// A tuple of everything above the mark.
    pub const TUPLE: u8 = b't';
    /// A tuple of the top stack item.
    pub const TUPLE1: u8 = 0x85;
    /// A tuple of the top three stack items (`TUPLE2`, 0x86, lies between).
    pub const TUPLE3: u8 = 0x87;
    /// Pushes `None`.
    pub const NONE: u8 = b'N';
    /// Pushes `True`.
    pub const NEWTRUE: u8 = 0x88;
    /// Pushes `False`.
    pub const NEWFALSE: u8 = 0x89;
    /// A 4-byte signed little-endian integer.
    pub const BININT: u8 = b'J';
    /// A 1-byte unsigned integer.
    pub const BININT1: u8 = b'K';
    /// A 2-byte unsigned little-endian integer.
    pub const BININT2: u8 = b'M';
    /// An integer of a 1-byte count of little-endian two's-complement bytes.
    pub const LONG1: u8 = 0x8a;
    /// An 8-byte big-endian float.
    pub const BINFLOAT: u8 = b'G';
    /// A UTF-8 string with a 4-byte length.
    pub const BINUNICODE: u8 = b'X';
    /// A UTF-8 string with a 1-byte length.
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    /// A UTF-8 string with an 8-byte length.
    pub const BINUNICODE8: u8 = 0x8d;
    /// A global named by two newline-terminated lines: module, then name.
    pub const GLOBAL: u8 = b'c';
    /// A global named by the two strings on top of the stack.
    pub const STACK_GLOBAL: u8 = 0x93;
    /// Stores the top of the stack in the memo at a 1-byte index.
    pub const BINPUT: u8 = b'q';
    /// Stores the top of the stack in the memo at a 4-byte index.
    pub const LONG_BINPUT: u8 = b'r';
    /// Stores the top of the stack in the memo at the next index.
    pub const MEMOIZE: u8 = 0x94;
    /// Pushes the memo entry at a 1-byte index.
    pub const BINGET: u8 = b'h';
    /// Pushes the memo entry at a 4-byte index.
    pub const LONG_BINGET: u8 = b'j';
    /// Adds one key and value to the dict below them.
    pub const SETITEM: u8 = b's';
    /// Adds the keys and values above the mark to the dict below it.
    pub const SETITEMS: u8 = b'u';
    /// Appends one value to the list below it.
    pub const APPEND: u8 = b'a';
    /// Appends the values above the mark to the list below it.
    pub const APPENDS: u8 = b'e';
    /// A persistent id (torch's storage reference) from the top of the stack.
    pub const BINPERSID: u8 = b'Q';
    /// Calls the callable below the top of the stack with the argument tuple on top.
    pub const REDUCE: u8 = b'R';
    /// Sets the state (the top of the stack) of the object below it.
    pub const BUILD: u8 = b'b';
}

/// The element type of a storage, from its class name (`torch.FloatStorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// `torch.float32`.
    Float32,
    /// `torch.float64`.
    Float64,
    /// `torch.float16`.
    Float16,
    /// `torch.bfloat16`.
    BFloat16,
    /// `torch.int64`.
    Int64,
    /// `torch.int32`.
    Int32,
    /// `torch.int16`.
    Int16,
    /// `torch.int8`.
    Int8,
    /// `torch.uint8`.
    UInt8,
    /// `torch.bool`.
    Bool,
}

impl StorageKind {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::Float32,
            "DoubleStorage" => Self::Float64,
            "HalfStorage" => Self::Float16,
            "BFloat16Storage" => Self::BFloat16,
            "LongStorage" => Self::Int64,
            "IntStorage" => Self::Int32,
            "ShortStorage" => Self::Int16,
            "CharStorage" => Self::Int8,
            "ByteStorage" => Self::UInt8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }
}

/// A storage the pickle refers to by persistent id: `archive/data/<key>`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Its element type.
    pub kind: StorageKind,
    /// Its file name under `archive/data/`.
    pub key: String,
    /// Elements in the storage, as the pickle declares it.
    pub numel: i64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    /// The storage it views.
    pub storage: StorageRef,
    /// Its first element's index in the storage.
    pub offset: i64,
    /// Its shape.
    pub size: Vec<i64>,
    /// Its strides, in elements.
    pub stride: Vec<i64>,
}

/// Why a `data.pkl` could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    /// The byte offset of the opcode that failed.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl std::error::Error for PickleError {}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// How deep containers may nest. A state dict's records nest about four deep; a deeper pickle
/// is not one, and unbounded nesting (one byte per level) overflows the stack when the values
/// are cloned or dropped (found by fuzzing).
pub const MAX_DEPTH: usize = 32;

/// How many values the memo may copy in all: each memo reference copies its value, so a
/// pickle can double a value with every few bytes.
pub const MAX_COPIED_VALUES: usize = 1 << 22;

/// The Python callables and classes a state dict pickle may name.
#[derive(Debug, Clone, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(StorageKind),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Self::RebuildTensor),
            ("torch._utils", "_rebuild_parameter") => Some(Self::RebuildParameter),
            ("torch", class) => StorageKind::from_class(class).map(Self::Storage),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRecord),
}

impl Value {
    /// The items a container holds directly; none for the rest.
    fn children(&self) -> Box<dyn Iterator<Item = &Value> + '_> {
        match self {
            Value::Tuple(items) | Value::List(items) => Box::new(items.iter()),
            Value::Dict(items) => Box::new(items.iter().flat_map(|(k, v)| [k, v])),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// How deep it nests (a leaf is 1). The recursion is bounded: every value the machine
    /// holds nests at most [`MAX_DEPTH`] deep.
    fn depth(&self) -> usize {
        1 + self.children().map(Value::depth).max().unwrap_or(0)
    }

    /// How many values it is made of, itself included.
    fn size(&self) -> usize {
        1 + self.children().map(Value::size).sum::<usize>()
    }

    /// A short description for error messages.
    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("the bool {b}"),
            Value::Int(i) => format!("the int {i}"),
            Value::Float(x) => format!("the float {x}"),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Tuple(items) => format!("a tuple of {}", items.len()),
            Value::List(items) => format!("a list of {}", items.len()),
            Value::Dict(items) => format!("a dict of {}", items.len()),
            Value::Global(g) => format!("the global {g:?}"),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
        }
    }
}

/// Parses a `torch.save`d state dict: the names and tensor records, in file order.
///
/// The top level must be a dict (or `OrderedDict`) from strings to tensors; anything else (a
/// training checkpoint that nests the state dict, a pickled module) is an error that says
/// what the file holds instead. [`read_checkpoint`] also takes the nested form.
pub fn read_state_dict(data: &[u8]) -> Result<Vec<(String, TensorRecord)>, PickleError> {
    match Machine::new(data).run()? {
        Value::Dict(items) => state_dict_entries(items, NESTED_HINT),
        value => Err(not_a_dict(&value)),
    }
}

/// The top-level keys under which a training checkpoint keeps its state dict, tried in order:
/// mmpretrain / mmengine (and most training scripts) write `state_dict`, others `model`.
pub const STATE_DICT_KEYS: [&str; 2] = ["state_dict", "model"];

/// What a `torch.save` file of model weights holds: a state dict, plain or nested in a
/// training checkpoint next to metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointFile {
    /// The state dict's names and tensor records, in file order.
    pub tensors: Vec<(String, TensorRecord)>,
    /// The top-level key the state dict sat under; `None` for a plain state dict.
    pub nested_under: Option<String>,
    /// The checkpoint's other top-level entries with a short description each, in file
    /// order: metadata the weights do not need, listed so a report can show what was skipped.
    pub other_entries: Vec<(String, String)>,
    /// The class names the metadata records: mmpretrain's `meta.dataset_meta.classes` or
    /// mmcls's `meta.CLASSES`.
    pub classes: Option<Vec<String>>,
}

/// Parses a `torch.save`d state dict, or a training checkpoint (`{"meta": ..., "state_dict":
/// ...}`) whose state dict sits under one of [`STATE_DICT_KEYS`].
///
/// The checkpoint's other entries may hold plain values only (numbers, strings, lists,
/// tuples, dicts, tensors): the same opcodes, globals and limits as [`read_state_dict`] apply
/// to the whole file, so a pickled Python object anywhere in it is still refused.
pub fn read_checkpoint(data: &[u8]) -> Result<CheckpointFile, PickleError> {
    let items = match Machine::new(data).run()? {
        Value::Dict(items) => items,
        value => return Err(not_a_dict(&value)),
    };
    if items.iter().all(|(_, v)| matches!(v, Value::Tensor(_))) {
        return Ok(CheckpointFile {
            tensors: state_dict_entries(items, NESTED_HINT)?,
            nested_under: None,
            other_entries: Vec::new(),
            classes: None,
        });
    }
    let Some((key, index)) = STATE_DICT_KEYS.iter().find_map(|key| {
        let index = items
            .iter()
            .position(|(k, v)| is_str(k, key) && matches!(v, Value::Dict(_)))?;
        Some((*key, index))
    }) else {
        return Err(top_level_error(&format!(
            "the file holds a dict with the keys {}, but no state dict under {}",
            key_list(&items),
            STATE_DICT_KEYS.map(|k| format!("{k:?}")).join(" or ")
        )));
    };
    let mut items = items;
    let (_, nested) = items.remove(index);
    let Value::Dict(nested) = nested else {
        return Err(top_level_error(&format!("{key:?} is not a dict")));
    };
    let classes = metadata_classes(&items);
    let other_entries = items
        .iter()
        .map(|(k, v)| (key_name(k), v.describe()))
        .collect();
    Ok(CheckpointFile {
        tensors: state_dict_entries(
            nested,
            &format!("the state dict under {key:?} must map names to tensors"),
        )?,
        nested_under: Some(key.to_owned()),
        other_entries,
        classes,
    })
}

/// What [`read_state_dict`] says of a dict entry that is not a tensor.
const NESTED_HINT: &str = "this is not a plain state dict (a training checkpoint keeps it \
     under a key such as \"state_dict\")";

/// A state dict's entries, which must all be string keys with tensor values; `hint` follows
/// the name of an entry that is not a tensor.
fn state_dict_entries(
    items: Vec<(Value, Value)>,
    hint: &str,
) -> Result<Vec<(String, TensorRecord)>, PickleError> {
    items
        .into_iter()
        .map(|(key, value)| match (key, value) {
            (Value::Str(name), Value::Tensor(tensor)) => Ok((name, tensor)),
            (Value::Str(name), other) => Err(top_level_error(&format!(
                "entry {name:?} is {}, not a tensor: {hint}",
                other.describe()
            ))),
            (key, _) => Err(top_level_error(&format!(
                "a key is {}, not a string",
                key.describe()
            ))),
        })
        .collect()
}

/// An error about the file's structure rather than one opcode.
fn top_level_error(message: &str) -> PickleError {
    PickleError {
        offset: 0,
        message: message.to_owned(),
    }
}

fn not_a_dict(value: &Value) -> PickleError {
    top_level_error(&format!(
        "the file holds {}, not a state dict (a dict of tensors)",
        value.describe()
    ))
}

fn is_str(value: &Value, s: &str) -> bool {
    matches!(value, Value::Str(v) if v == s)
}

/// A dict key for a report: the string itself, or what it is.
fn key_name(key: &Value) -> String {
    match key {
        Value::Str(s) => s.clone(),
        other => other.describe(),
    }
}

fn key_list(items: &[(Value, Value)]) -> String {
    let keys: Vec<String> = items
        .iter()
        .map(|(k, _)| format!("{:?}", key_name(k)))
        .collect();
    format!("[{}]", keys.join(", "))
}

/// The value under the string key `key` of a dict.
fn lookup<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Dict(items) => items.iter().find(|(k, _)| is_str(k, key)).map(|(_, v)| v),
        _ => None,
    }
}

/// Class names in a checkpoint's `meta`, where mmpretrain (`dataset_meta.classes`) and the
/// older mmcls (`CLASSES`) record them; `None` unless they are a list of strings.
fn metadata_classes(items: &[(Value, Value)]) -> Option<Vec<String>> {
    let meta = items
        .iter()
        .find(|(k, _)| is_str(k, "meta"))
        .map(|(_, v)| v)?;
    let names = lookup(meta, "dataset_meta")
        .and_then(|d| lookup(d, "classes"))
        .or_else(|| lookup(meta, "CLASSES"))?;
    let (Value::List(names) | Value::Tuple(names)) = names else {
        return None;
    };
    names
        .iter()
        .map(|name| match name {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The pickle virtual machine: a stack, marks into it, and a memo.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Where the current opcode started, for error messages.
    op_start: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Values the memo has copied so far, against [`MAX_COPIED_VALUES`].
    copied: usize,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            op_start: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            copied: 0,
        }
    }

    /// Refuses `items` as the contents of a container when that would nest deeper than
    /// [`MAX_DEPTH`].
    fn check_nesting(&self, items: &[Value]) -> Result<(), PickleError> {
        if items.iter().any(|item| item.depth() >= MAX_DEPTH) {
            return self.error(format!(
                "values nest more than {MAX_DEPTH} deep, which no state dict does"
            ));
        }
        Ok(())
    }

    /// Counts a memo copy of `value` against [`MAX_COPIED_VALUES`].
    fn count_copy(&mut self, value: &Value) -> Result<(), PickleError> {
        self.copied = self.copied.saturating_add(value.size());
        if self.copied > MAX_COPIED_VALUES {
            return self.error(format!(
                "memo references copy more than {MAX_COPIED_VALUES} values, which no state \
                 dict does"
            ));
        }
        Ok(())
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.op_start,
            message: message.into(),
        })
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.op_start = self.pos;
            let op = self.take(1)?[0];
            match op {
                op::STOP => return self.stop(),
                _ => self.step(op)?,
            }
        }
    }

    fn stop(mut self) -> Result<Value, PickleError> {
        let value = self.pop()?;
        if !self.stack.is_empty() || !self.marks.is_empty() {
            return self.error("values left on the stack at STOP");
        }
        Ok(value)
    }

    fn step(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            op::PROTO => {
                let protocol = self.take(1)?[0];
                if !(2..=5).contains(&protocol) {
                    return self.error(format!("pickle protocol {protocol} (expected 2 to 5)"));
                }
            }
            op::FRAME => {
                self.take(8)?; // FRAME: a length hint only
            }
            op::MARK => self.marks.push(self.stack.len()),
            op::EMPTY_DICT => self.stack.push(Value::Dict(Vec::new())),
            op::EMPTY_LIST => self.stack.push(Value::List(Vec::new())),
            op::EMPTY_TUPLE => self.stack.push(Value::Tuple(Vec::new())),
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.check_nesting(&items)?;
                self.stack.push(Value::Tuple(items));
            }
            op::TUPLE1..=op::TUPLE3 => {
                let n = usize::from(op - op::TUPLE1) + 1;
                if self.stack.len() < n {
                    return self.error("stack underflow");
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.check_nesting(&items)?;
                self.stack.push(Value::Tuple(items));
            }
            op::NONE => self.stack.push(Value::None),
            op::NEWTRUE => self.stack.push(Value::Bool(true)),
            op::NEWFALSE => self.stack.push(Value::Bool(false)),
            op::BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            op::BININT1 => {
                let v = self.take(1)?[0];
                self.stack.push(Value::Int(i64::from(v)));
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            op::LONG1 => {
                let v = self.long1()?;
                self.stack.push(Value::Int(v));
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.stack.push(Value::Float(v));
            }
            op::BINUNICODE => {
                let n = u32::from_le_bytes(self.array()?);
                self.unicode(u64::from(n))?;
            }
            op::SHORT_BINUNICODE => {
                let n = self.take(1)?[0];
                self.unicode(u64::from(n))?;
            }
            op::BINUNICODE8 => {
                let n = u64::from_le_bytes(self.array()?);
                self.unicode(n)?;
            }
            op::GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(&module, &name)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => self.global(&module, &name)?,
                    _ => return self.error("STACK_GLOBAL needs two strings"),
                }
            }
            op::BINPUT => {
                let index = self.take(1)?[0];
                self.put(u32::from(index))?;
            }
            op::LONG_BINPUT => {
                let index = u32::from_le_bytes(self.array()?);
                self.put(index)?;
            }
            op::MEMOIZE => {
                let index = u32::try_from(self.memo.len()).map_or(u32::MAX, |n| n);
                self.put(index)?;
            }
            op::BINGET => {
                let index = self.take(1)?[0];
                self.get(u32::from(index))?;
            }
            op::LONG_BINGET => {
                let index = u32::from_le_bytes(self.array()?);
                self.get(index)?;
            }
            op::SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.extend_dict(vec![key, value])?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                self.extend_dict(items)?;
            }
            op::APPEND => {
                let value = self.pop()?;
                self.extend_list(vec![value])?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                let storage = self.persistent_load(pid)?;
                self.stack.push(Value::Storage(storage));
            }
            op::REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = self.reduce(callable, args)?;
                self.stack.push(value);
            }
            op::BUILD => {
                let state = self.pop()?;
                self.build(state)?;
            }
            other => {
                return self.error(format!(
                    "unsupported pickle opcode 0x{other:02x}: not a state dict written by \
                     torch.save"
                ))
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        match end {
            Some(end) => {
                let bytes = &self.data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            None => self.error("the pickle ends early (truncated file?)"),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// LONG1: a little-endian two's-complement integer of up to 255 bytes; up to 8 fit i64.
    fn long1(&mut self) -> Result<i64, PickleError> {
        let n = usize::from(self.take(1)?[0]);
        let bytes = self.take(n)?;
        if n > 8 {
            return self.error(format!("a {n}-byte integer does not fit 64 bits"));
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..n].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    fn unicode(&mut self, n: u64) -> Result<(), PickleError> {
        let n = usize::try_from(n).map_or(usize::MAX, |n| n);
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                self.stack.push(Value::Str(s.to_owned()));
                Ok(())
            }
            Err(_) => self.error("a string is not valid UTF-8"),
        }
    }

    /// A newline-terminated ASCII line (GLOBAL's operands).
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return self.error("the pickle ends inside a GLOBAL name (truncated file?)");
        };
        let bytes = self.take(len + 1)?;
        match std::str::from_utf8(&bytes[..len]) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.error("a GLOBAL name is not valid UTF-8"),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        match Global::resolve(module, name) {
            Some(global) => {
                self.stack.push(Value::Global(global));
                Ok(())
            }
            None => self.error(format!(
                "the pickle refers to {module}.{name}, which a plain state dict of dense \
                 float or integer tensors does not use"
            )),
        }
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.error("stack underflow");
        }
        match self.stack.pop() {
            Some(value) => Ok(value),
            None => self.error("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        match self.marks.pop() {
            // Found by fuzzing: opcodes after a MARK can pop below it.
            Some(mark) if mark > self.stack.len() => self.error("the stack fell below its MARK"),
            Some(mark) => Ok(self.stack.split_off(mark)),
            None => self.error("no MARK to pop to"),
        }
    }

    fn put(&mut self, index: u32) -> Result<(), PickleError> {
        let Some(value) = self.stack.last().cloned() else {
            return self.error("memoizing an empty stack");
        };
        self.count_copy(&value)?;
        self.memo.insert(index, value);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<(), PickleError> {
        match self.memo.get(&index) {
            // The memo holds copies, so a dict or list changed after it was memoized would
            // come back stale; state dicts never refer back to one.
            Some(Value::Dict(_) | Value::List(_)) => {
                self.error("a dict or list is referenced twice, which this reader does not support")
            }
            Some(value) => {
                let value = value.clone();
                self.count_copy(&value)?;
                self.stack.push(value);
                Ok(())
            }
            None => self.error(format!("memo entry {index} is not set")),
        }
    }

    fn extend_dict(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.error("SETITEMS with an odd number of values");
        }
        self.check_nesting(&items)?;
        let Some(Value::Dict(dict)) = self.stack.last_mut() else {
            return self.error("SETITEM(S) on something that is not a dict");
        };
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            match dict.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => dict.push((key, value)),
            }
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        self.check_nesting(&items)?;
        match self.stack.last_mut() {
            Some(Value::List(list)) => {
                list.extend(items);
                Ok(())
            }
            _ => self.error("APPEND(S) on something that is not a list"),
        }
    }

    /// torch.save's persistent id for a storage:
    /// `("storage", storage_type, key, location, numel)`.
    fn persistent_load(&self, pid: Value) -> Result<StorageRef, PickleError> {
        let Value::Tuple(fields) = pid else {
            return self.error(format!(
                "persistent id is {}, not a storage tuple",
                pid.describe()
            ));
        };
        match fields.as_slice() {
            [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), Value::Str(_location), Value::Int(numel)]
                if tag == "storage" && *numel >= 0 =>
            {
                Ok(StorageRef {
                    kind: *kind,
                    key: key.clone(),
                    numel: *numel,
                })
            }
            _ => self.error(format!(
                "unsupported persistent id {fields:?}: expected (\"storage\", torch.<Type>Storage, \
                 key, location, numel)"
            )),
        }
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Tuple(args) = args else {
            return self.error(format!(
                "REDUCE arguments are {}, not a tuple",
                args.describe()
            ));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Vec::new())),
            Value::Global(Global::RebuildTensor) => self.rebuild_tensor(args),
            Value::Global(Global::RebuildParameter) => match args.into_iter().next() {
                Some(tensor @ Value::Tensor(_)) => Ok(tensor),
                _ => self.error("_rebuild_parameter without a tensor"),
            },
            other => self.error(format!(
                "cannot call {} with {} arguments",
                other.describe(),
                args.len()
            )),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[,
    /// metadata])`.
    fn rebuild_tensor(&self, args: Vec<Value>) -> Result<Value, PickleError> {
        match args.as_slice() {
            [Value::Storage(storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), Value::Bool(_), _hooks, ..]
                if args.len() <= 7 =>
            {
                let size = self.ints(size, "size")?;
                let stride = self.ints(stride, "stride")?;
                if size.len() != stride.len() {
                    return self.error(format!(
                        "tensor size {size:?} and stride {stride:?} differ in length"
                    ));
                }
                Ok(Value::Tensor(TensorRecord {
                    storage: storage.clone(),
                    offset: *offset,
                    size,
                    stride,
                }))
            }
            _ => self.error(format!(
                "unsupported _rebuild_tensor_v2 arguments: {}",
                args.iter()
                    .map(Value::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn ints(&self, values: &[Value], what: &str) -> Result<Vec<i64>, PickleError> {
        values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => self.error(format!("tensor {what} holds {}", other.describe())),
            })
            .collect()
    }

    /// BUILD sets an object's state; on a state dict that is `_metadata` (BatchNorm versions),
    /// which the tensors do not need.
    fn build(&mut self, state: Value) -> Result<(), PickleError> {
        match (self.stack.last(), &state) {
            (Some(Value::Dict(_)), Value::Dict(_) | Value::None) => Ok(()),
            (target, _) => self.error(format!(
                "cannot BUILD {} with {}",
                target.map_or_else(|| "nothing".into(), Value::describe),
                state.describe()
            )),
        }
    }
}

#[cfg(test)]
mod tests;
