//! The sequential models that histories are checked against.
//!
//! | model | functions | state |
//! |---|---|---|
//! | `register` | `read`, `write` | one JSON value, `null` at first |
//! | `cas-register` | `read`, `write`, `cas` with value `[from, to]` | one JSON value, `null` at first |
//! | `kv` | `get`, `put`, `append` on strings | one string per key, `""` at first |
//!
//! Histories are split by their operations' `key`, and each key is its own
//! register (or string), so a model describes one key. How completions are
//! read:
//!
//! * `ok` read / get: returned its value. A `kv` get that returned `null`
//!   read the absent key, that is `""`.
//! * `ok` write / put / append / cas: took effect once, between its
//!   invocation and its completion. A cas that took effect found `from`.
//! * `fail`: did not take effect, so it constrains nothing and is dropped
//!   (a failed cas found something other than `from`, but nothing observed
//!   it, so it is dropped too).
//! * `info` or never completed: may take effect at any time after its
//!   invocation, or never. A read with unknown output constrains nothing and
//!   is dropped; an unknown write or cas is kept as an optional operation.
//!   An unknown cas that takes effect must have found `from`; one that did
//!   not is the same as one that never happened.
//!
//! Values are interned: the checker works on small integer ids, one per
//! distinct value (registers) or string (kv).

use crate::op::OpType;
use crate::pair::Operation;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Which sequential model to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelKind {
    /// `read` and `write`.
    Register,
    /// `read`, `write` and compare-and-set `cas`.
    #[default]
    CasRegister,
    /// `get`, `put` and `append` on strings.
    Kv,
}

impl ModelKind {
    /// The names accepted by [`ModelKind::from_str`].
    pub const NAMES: [&'static str; 3] = ["register", "cas-register", "kv"];

    /// The functions the model understands, for error messages.
    fn functions(self) -> &'static str {
        match self {
            ModelKind::Register => "read or write",
            ModelKind::CasRegister => "read, write or cas",
            ModelKind::Kv => "get, put or append",
        }
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ModelKind, String> {
        match s {
            "register" => Ok(ModelKind::Register),
            "cas-register" => Ok(ModelKind::CasRegister),
            "kv" => Ok(ModelKind::Kv),
            _ => Err(format!(
                "expected a model, one of {}, found {s:?}",
                ModelKind::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ModelKind::NAMES[*self as usize])
    }
}

/// An operation the model cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelError {
    /// What was found and what was expected.
    pub message: String,
    /// The completion is at fault, not the invocation.
    pub completion: bool,
}

/// One operation as the model sees it; values are interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// `read` / `get`: legal when the state is the value; no change.
    Read(u32),
    /// `write` / `put`: the state becomes the value.
    Write(u32),
    /// `cas`: legal when the state is `from`; it becomes `to`.
    Cas(u32, u32),
    /// `append`: the state becomes itself followed by the value.
    Append(u32),
}

/// The interned values and states of one key, and the model's transitions.
pub(crate) struct States {
    kind: ModelKind,
    texts: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
    appends: HashMap<(u32, u32), u32>,
    bytes: usize,
}

/// The state that stands for every value no remaining operation can
/// observe (see the linearization search). It is never interned from a text.
pub(crate) const UNSEEN: u32 = 0;

impl States {
    pub(crate) fn new(kind: ModelKind) -> States {
        States {
            kind,
            texts: vec!["(a value no later operation observes)".into()],
            ids: HashMap::new(),
            appends: HashMap::new(),
            bytes: 0,
        }
    }

    pub(crate) fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Bytes held, roughly: every text twice plus table overhead, and what
    /// the search keeps per state.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The id of a text (a JSON text for registers, the string for kv).
    pub(crate) fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.into());
        self.ids.insert(text.into(), id);
        // Twice the text, the tables, and the search's list of the
        // operations that observe the state (at most 33 ids).
        self.bytes += 2 * text.len() + 64 + 160;
        id
    }

    /// The text of an id.
    pub(crate) fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }

    /// A state or value as JSON, for reports.
    pub(crate) fn to_json(&self, id: u32) -> Value {
        match self.kind {
            _ if id == UNSEEN => Value::String(self.text(id).to_string()),
            ModelKind::Kv => Value::String(self.text(id).to_string()),
            _ => serde_json::from_str(self.text(id)).unwrap_or(Value::Null),
        }
    }

    /// The state after `step` from `state`, or `None` when the step is not
    /// legal there.
    pub(crate) fn step(&mut self, state: u32, step: Step) -> Option<u32> {
        match step {
            Step::Read(v) => (v == state).then_some(state),
            Step::Write(v) => Some(v),
            Step::Cas(from, to) => (from == state).then_some(to),
            Step::Append(_) if state == UNSEEN => Some(UNSEEN),
            Step::Append(v) => {
                if let Some(&next) = self.appends.get(&(state, v)) {
                    return Some(next);
                }
                let text = format!("{}{}", self.text(state), self.text(v));
                let next = self.intern(&text);
                self.appends.insert((state, v), next);
                self.bytes += 32;
                Some(next)
            }
        }
    }

    /// The initial state: `initial` or the model's default.
    pub(crate) fn initial(&mut self, initial: Option<&Value>) -> Result<u32, String> {
        match (self.kind, initial) {
            (ModelKind::Kv, None) => Ok(self.intern("")),
            (ModelKind::Kv, Some(Value::String(s))) => Ok(self.intern(s)),
            (ModelKind::Kv, Some(other)) => {
                Err(format!("the kv model starts from a string, found {other}"))
            }
            (_, None) => Ok(self.intern("null")),
            (_, Some(v)) => Ok(self.intern(&v.to_string())),
        }
    }

    /// The model's view of an operation. `Ok(None)` when the operation
    /// constrains nothing (it failed, or is a read with unknown output);
    /// `Err` says what was expected and what was found, and whether the
    /// completion (rather than the invocation) is at fault.
    pub(crate) fn compile(&mut self, op: &Operation) -> Result<Option<Step>, ModelError> {
        let about_completion = |message: String| ModelError {
            message,
            completion: true,
        };
        let writes = matches!(op.f.as_str(), "write" | "cas" | "put" | "append");
        if writes
            && op.kind == OpType::Ok
            && !op.output.is_null()
            && op.output != op.input
        {
            return Err(about_completion(format!(
                "{} completed with {} but was invoked with {}; expected the same value",
                op.f, op.output, op.input
            )));
        }
        self.compile_step(op)
            .map_err(|(message, completion)| ModelError {
                message,
                completion,
            })
    }

    fn compile_step(&mut self, op: &Operation) -> Result<Option<Step>, (String, bool)> {
        let kind = self.kind;
        let f = op.f.as_str();
        let unknown = || {
            format!(
                "the {kind} model has no function `{f}`; expected {}",
                kind.functions()
            )
        };
        let step = match (kind, f) {
            (ModelKind::Register | ModelKind::CasRegister, "read") => {
                Step::Read(self.intern(&op.output.to_string()))
            }
            (ModelKind::Register | ModelKind::CasRegister, "write") => {
                Step::Write(self.intern(&op.input.to_string()))
            }
            (ModelKind::CasRegister, "cas") => match &op.input {
                Value::Array(pair) if pair.len() == 2 => {
                    let from = self.intern(&pair[0].to_string());
                    Step::Cas(from, self.intern(&pair[1].to_string()))
                }
                other => {
                    let message =
                        format!("cas expects a value [from, to], found {other}");
                    return Err((message, false));
                }
            },
            (ModelKind::Kv, "get") => match &op.output {
                Value::String(s) => Step::Read(self.intern(s)),
                Value::Null => Step::Read(self.intern("")),
                other if op.kind == OpType::Ok => {
                    let message =
                        format!("get expects to return a string, found {other}");
                    return Err((message, true));
                }
                _ => Step::Read(0),
            },
            (ModelKind::Kv, "put" | "append") => match &op.input {
                Value::String(s) if f == "put" => Step::Write(self.intern(s)),
                Value::String(s) => Step::Append(self.intern(s)),
                other => {
                    return Err((
                        format!("{f} expects a string value, found {other}"),
                        false,
                    ))
                }
            },
            _ => return Err((unknown(), false)),
        };
        Ok(match (op.kind, step) {
            (OpType::Fail | OpType::Invoke, _) => None,
            (OpType::Info, Step::Read(_)) => None,
            _ => Some(step),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn operation(f: &str, kind: OpType, input: Value, output: Value) -> Operation {
        Operation {
            process: 0,
            f: f.into(),
            key: None,
            invoke: 0,
            complete: Some(1),
            kind,
            input,
            output,
            invoke_time: 0,
            complete_time: Some(1),
            node: None,
        }
    }

    #[test]
    fn model_names_round_trip() {
        for name in ModelKind::NAMES {
            assert_eq!(name.parse::<ModelKind>().unwrap().to_string(), name);
        }
        assert!("queue".parse::<ModelKind>().is_err());
    }

    #[test]
    fn cas_applies_only_from_its_expected_value() {
        let mut states = States::new(ModelKind::CasRegister);
        let nil = states.initial(None).unwrap();
        let cas = operation("cas", OpType::Ok, json!([1, 2]), json!([1, 2]));
        let step = states.compile(&cas).unwrap().unwrap();
        assert_eq!(states.step(nil, step), None);
        let one = states.intern("1");
        assert_eq!(states.step(one, step), Some(states.intern("2")));
    }

    #[test]
    fn append_concatenates_and_interns() {
        let mut states = States::new(ModelKind::Kv);
        let empty = states.initial(None).unwrap();
        let a = states.compile(&operation("append", OpType::Ok, json!("x"), json!("x")));
        let Ok(Some(step)) = a else {
            panic!("append compiles")
        };
        let once = states.step(empty, step).unwrap();
        let twice = states.step(once, step).unwrap();
        assert_eq!(states.text(twice), "xx");
        assert_eq!(states.step(once, step), Some(twice));
    }

    #[test]
    fn failed_ops_and_unknown_reads_constrain_nothing() {
        let mut states = States::new(ModelKind::CasRegister);
        let fail = operation("cas", OpType::Fail, json!([1, 2]), Value::Null);
        assert_eq!(states.compile(&fail), Ok(None));
        let read = operation("read", OpType::Info, Value::Null, Value::Null);
        assert_eq!(states.compile(&read), Ok(None));
    }

    #[test]
    fn rejects_malformed_operations_saying_what_was_expected() {
        let mut states = States::new(ModelKind::CasRegister);
        let cas = operation("cas", OpType::Ok, json!(3), Value::Null);
        assert_eq!(
            states.compile(&cas).unwrap_err().message,
            "cas expects a value [from, to], found 3"
        );
        let append = operation("append", OpType::Ok, json!("x"), Value::Null);
        assert!(states
            .compile(&append)
            .unwrap_err()
            .message
            .contains("expected read, write or cas"));
    }

    #[test]
    fn a_write_completed_with_another_value_than_invoked_is_an_error() {
        let mut states = States::new(ModelKind::Register);
        let write = operation("write", OpType::Ok, json!(1), json!(2));
        let err = states.compile(&write).unwrap_err();
        assert!(err.completion);
        assert_eq!(
            err.message,
            "write completed with 2 but was invoked with 1; expected the same value"
        );
    }
}
