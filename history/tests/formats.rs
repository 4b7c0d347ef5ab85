//! Reading and writing histories: the native JSON Lines, Jepsen's EDN and
//! the Porcupine corpus, with errors that name the line at fault.

use history::formats::{read_str, write_edn, write_jsonl, Format, FormatError};
use history::{Op, OpType, Process};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

fn op(index: u64, process: Process, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index,
        time: index * 100,
        process,
        kind,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

fn read(text: &str, format: Format) -> Result<Vec<Op>, FormatError> {
    read_str(text, format, "history")
}

fn jsonl_of(history: &[Op]) -> String {
    let mut out = Vec::new();
    write_jsonl(&mut out, history).unwrap();
    String::from_utf8(out).unwrap()
}

fn edn_of(history: &[Op]) -> String {
    let mut out = Vec::new();
    write_edn(&mut out, history).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn native_jsonl_keeps_the_documented_schema() {
    let h = vec![Op {
        key: Some("k1".into()),
        ..op(0, Process::Client(3), OpType::Invoke, "cas", json!([1, 2]))
    }];
    assert_eq!(
        jsonl_of(&h),
        "{\"index\":0,\"time\":0,\"process\":3,\"type\":\"invoke\",\"f\":\"cas\",\
         \"key\":\"k1\",\"value\":[1,2]}\n"
    );
}

#[test]
fn jsonl_error_names_the_file_line_and_the_expected_types() {
    let text = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\
                \n\
                {\"index\":1,\"time\":2,\"process\":0,\"type\":\"done\",\"f\":\"read\"}\n";
    let err = read_str(text, Format::Auto, "history.jsonl").unwrap_err();
    assert_eq!(
        err.to_string(),
        "history.jsonl:3: expected \"type\" to be one of invoke, ok, fail, info, found \"done\""
    );
}

#[test]
fn jsonl_syntax_error_gives_line_and_column() {
    let err = read("{\"index\":0,\n", Format::Jsonl).unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.column.is_some());
    assert!(
        err.message
            .starts_with("expected an operation as a JSON object"),
        "{err}"
    );
}

#[test]
fn jsonl_without_time_reads_time_zero() {
    let h = read(
        r#"{"index": 0, "process": "nemesis", "type": "info", "f": "kill"}"#,
        Format::Jsonl,
    )
    .unwrap();
    assert_eq!((h[0].time, h[0].process), (0, Process::Nemesis));
}

#[test]
fn jsonl_drops_a_last_line_cut_short_by_a_crash() {
    let h = vec![op(
        0,
        Process::Client(0),
        OpType::Invoke,
        "read",
        Value::Null,
    )];
    let whole = jsonl_of(&h);
    let cut = format!("{whole}{{\"index\":1,\"time\":5,\"pro");
    assert_eq!(read(&cut, Format::Jsonl).unwrap(), h);

    // The same text with its newline was written whole, so it is bad input.
    let err = read(&format!("{cut}\n"), Format::Jsonl).unwrap_err();
    assert_eq!(err.line, Some(2));
}

#[test]
fn jsonl_rejects_an_index_that_does_not_grow() {
    let h = vec![
        op(5, Process::Client(0), OpType::Invoke, "read", Value::Null),
        op(5, Process::Client(0), OpType::Ok, "read", json!(1)),
    ];
    let err = read(&jsonl_of(&h), Format::Jsonl).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("greater than 5"), "{err}");
}

#[test]
fn unpaired_history_gets_the_pairing_error_with_its_line() {
    let h = vec![
        op(0, Process::Client(1), OpType::Invoke, "read", Value::Null),
        op(1, Process::Client(2), OpType::Invoke, "read", Value::Null),
        op(2, Process::Client(1), OpType::Invoke, "write", json!(3)),
    ];
    let err = read_str(&jsonl_of(&h), Format::Jsonl, "h.jsonl").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("h.jsonl:3: operation 2: process 1 invokes again"),
        "{err}"
    );

    let edn = "[{:process 0, :type :ok, :f :read, :value 1}]";
    let err = read_str(edn, Format::Edn, "h.edn").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("h.edn:1: operation 0: `ok` for process 0"),
        "{err}"
    );
}

#[test]
fn edn_reads_a_commented_vector_over_many_lines() {
    let text = "; a Jepsen history\n\
                [{:type :invoke, :f :write, :value 3, :process 0, :time 10}\n\
                 {:type :ok, :f :write, :value 3, :process 0, :time 20, :node \"n1\"}\n\
                 {:type :info, :f :partition, :value [:n1 :n2], :process :nemesis}\n\
                 {:type :invoke, :f :read, :value nil, :process 1, :time 40}\n\
                 {:type :fail, :f :read, :value nil, :process 1, :error :timed-out}]\n";
    let h = read(text, Format::Auto).unwrap();
    assert_eq!(h.len(), 5);
    assert_eq!(
        (h[1].index, h[1].time, h[1].node.as_deref()),
        (1, 20, Some("n1"))
    );
    assert_eq!(h[2].process, Process::Nemesis);
    assert_eq!(h[2].value, json!(["n1", "n2"]));
    assert_eq!(h[4].error.as_deref(), Some(":timed-out"));
}

#[test]
fn edn_writer_puts_one_operation_map_per_line() {
    let h = vec![
        Op {
            key: Some("k1".into()),
            node: Some("n1".into()),
            ..op(0, Process::Client(3), OpType::Invoke, "cas", json!([1, 2]))
        },
        Op {
            error: Some("timed out".into()),
            ..op(
                1,
                Process::Nemesis,
                OpType::Info,
                "kill",
                json!({"n1": 1.5}),
            )
        },
    ];
    assert_eq!(
        edn_of(&h),
        "[{:index 0, :time 0, :process 3, :type :invoke, :f :cas, :key \"k1\", \
         :value [1 2], :node \"n1\"}\n \
         {:index 1, :time 100, :process :nemesis, :type :info, :f :kill, \
         :value {\"n1\" 1.5}, :error \"timed out\"}]\n"
    );
    assert_eq!(edn_of(&[]), "[]\n");
}

#[test]
fn edn_reads_lists_and_tagged_records() {
    let text = "(#jepsen.history.Op{:index 0, :process 0, :type :invoke, :f :read}\n\
                 #jepsen.history.Op{:index 1, :process 0, :type :ok, :f :read, :value 2})";
    let h = read(text, Format::Edn).unwrap();
    assert_eq!(h[1].value, json!(2));
}

#[test]
fn edn_error_names_the_line_of_the_bad_operation() {
    let text =
        "[{:process 0, :type :invoke, :f :read}\n\n {:process 0, :type :done, :f :read}]";
    let err = read_str(text, Format::Edn, "history.edn").unwrap_err();
    assert_eq!(
        err.to_string(),
        "history.edn:3:2: expected :type to be one of :invoke, :ok, :fail, :info, found :done"
    );
}

#[test]
fn edn_independent_tuples_become_keys() {
    let text = "{:process 0, :type :invoke, :f :read, :value [1 nil]}\n\
                {:process 0, :type :ok, :f :read, :value [1 4]}\n\
                {:process 1, :type :invoke, :f :cas, :value [\"b\" [1 2]]}\n\
                {:process 1, :type :fail, :f :cas, :value [\"b\" [1 2]]}\n";
    let h = read(text, Format::Edn).unwrap();
    assert_eq!(h[1].key.as_deref(), Some("1"));
    assert_eq!(h[1].value, json!(4));
    assert_eq!(
        (h[3].key.as_deref(), &h[3].value),
        (Some("b"), &json!([1, 2]))
    );
}

#[test]
fn edn_single_register_of_only_cas_is_not_split_into_keys() {
    let text = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                 {:process 0, :type :ok, :f :cas, :value [1 2]}]";
    let h = read(text, Format::Edn).unwrap();
    assert_eq!((h[1].key.as_deref(), &h[1].value), (None, &json!([1, 2])));
}

#[test]
fn edn_keyless_history_of_pairs_survives_a_round_trip() {
    let h = vec![
        op(
            0,
            Process::Client(0),
            OpType::Invoke,
            "write",
            json!([1, 2]),
        ),
        op(1, Process::Client(0), OpType::Ok, "write", json!([1, 2])),
    ];
    assert_eq!(read(&edn_of(&h), Format::Edn).unwrap(), h);
}

#[test]
fn unknown_content_is_refused_with_what_was_expected() {
    let err = read_str("hello world", Format::Auto, "x.txt").unwrap_err();
    assert!(
        err.to_string().starts_with("x.txt: cannot tell the format"),
        "{err}"
    );
    assert_eq!("porcupine-kv".parse::<Format>(), Ok(Format::PorcupineKv));
    assert!("csv"
        .parse::<Format>()
        .unwrap_err()
        .contains("expected a format"));
}

#[test]
fn detects_each_format_from_its_first_characters() {
    assert_eq!(Format::detect("\n{\"index\": 0}"), Some(Format::Jsonl));
    assert_eq!(
        Format::detect("INFO  jepsen.util - 0\t:invoke"),
        Some(Format::PorcupineEtcd)
    );
    assert_eq!(Format::detect("{:process 0}"), Some(Format::Edn));
    assert_eq!(Format::detect("; comment\n[]"), Some(Format::Edn));
    assert_eq!(Format::detect("(\n)"), Some(Format::Edn));
    assert_eq!(Format::detect("{ \"index\": 0}"), Some(Format::Jsonl));
    assert_eq!(Format::detect("{ :process 0}"), Some(Format::Edn));
    assert_eq!(Format::detect("xyz"), None);
}

/// The Porcupine corpus: every file reads, with one invocation per
/// operation the manifest counts.
#[test]
fn porcupine_corpus_reads_with_the_manifest_operation_counts() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine");
    let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.tsv")) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the corpus is missing"
        );
        println!("skipped: needs ../shared/histories/porcupine");
        return;
    };
    for row in manifest.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let ops: usize = cols[3].parse().unwrap();
        let path = dir.join(cols[0]);
        let h = history::formats::read_path(&path, Format::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        let invocations = h.iter().filter(|op| op.kind == OpType::Invoke).count();
        assert_eq!(invocations, ops, "{}", cols[0]);
    }
}

/// Porcupine's key/value files are EDN, so auto-detection reads them with
/// the EDN reader; that must give the operations the dedicated reader does.
#[test]
fn porcupine_kv_reads_the_same_as_edn() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/histories/porcupine/kv/c10-bad.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the corpus is missing"
        );
        println!("skipped: needs ../shared/histories/porcupine");
        return;
    };
    let strip = |h: Vec<Op>| -> Vec<Op> {
        h.into_iter()
            .map(|op| Op {
                time: 0,
                index: 0,
                ..op
            })
            .collect()
    };
    let kv = strip(read(&text, Format::PorcupineKv).unwrap());
    let edn = strip(read(&text, Format::Auto).unwrap());
    assert_eq!(kv, edn);
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i32..1000).prop_map(|n| json!(n as f64 / 8.0)),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Histories whose invocations and completions pair up: each client
/// operation is an invocation directly followed by its completion.
fn paired_history() -> impl Strategy<Value = Vec<Op>> {
    let f = prop_oneof![
        Just("read".to_string()),
        Just("cas".to_string()),
        "[a-z:/ -]{1,6}",
        "\\PC{1,4}",
    ];
    let completion =
        prop_oneof![Just(OpType::Ok), Just(OpType::Fail), Just(OpType::Info)];
    let step = (
        prop::option::of(0u64..4),
        f,
        completion,
        json_value(),
        json_value(),
        prop::option::of(".*"),
        prop::option::of(".*"),
        prop::option::of(".*"),
        any::<u32>(),
    );
    prop::collection::vec(step, 0..12).prop_map(|steps| {
        let mut h = Vec::new();
        for (p, f, done, input, output, key, node, error, time) in steps {
            let process = p.map(Process::Client).unwrap_or(Process::Nemesis);
            let base = Op {
                index: 0,
                time: time as u64,
                process,
                kind: OpType::Invoke,
                f,
                key,
                value: input,
                node,
                error,
            };
            let end = Op {
                kind: done,
                value: output,
                ..base.clone()
            };
            h.push(base);
            h.push(end);
        }
        for (i, op) in h.iter_mut().enumerate() {
            op.index = i as u64;
        }
        h
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn jsonl_round_trips(h in paired_history()) {
        prop_assert_eq!(read(&jsonl_of(&h), Format::Auto).unwrap(), h);
    }

    #[test]
    fn edn_round_trips(h in paired_history()) {
        let text = edn_of(&h);
        prop_assert_eq!(read(&text, Format::Auto).unwrap(), h, "{}", text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        for format in [Format::Auto, Format::Jsonl, Format::Edn,
                       Format::PorcupineEtcd, Format::PorcupineKv] {
            let _ = read(&text, format);
        }
    }

    #[test]
    fn random_lines_of_format_tokens_never_panic(
        tokens in prop::collection::vec(prop_oneof![
            Just("{"), Just("}"), Just("["), Just("]"), Just("("), Just(")"),
            Just("#{"), Just("#_"), Just("#tag"), Just(":process"), Just(":type"),
            Just(":invoke"), Just(":ok"), Just(":f"), Just(":read"), Just(":value"),
            Just(":index"), Just("-1"), Just("0"), Just("18446744073709551616"),
            Just("1.5"), Just("1/0"), Just("nil"), Just("\""), Just("\\"), Just("\\u"),
            Just(";"), Just("\n"), Just(" "), Just(","), Just("\"process\":"),
            Just("\"type\":"), Just("\"index\":"), Just("INFO  jepsen.util - "),
            Just(":cas"), Just("\t"), Just("[1 2]"), Just(":nemesis"), Just("##NaN"),
        ], 0..60)
    ) {
        let text: String = tokens.concat();
        for format in [Format::Auto, Format::Jsonl, Format::Edn,
                       Format::PorcupineEtcd, Format::PorcupineKv] {
            let _ = read(&text, format);
        }
    }
}

#[test]
fn jsonl_missing_field_message_uses_the_right_article() {
    let err = read(
        "{\"time\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"read\"}\n",
        Format::Jsonl,
    )
    .unwrap_err();
    assert!(err.message.contains("expected an \"index\" field"), "{err}");
    let err = read(
        "{\"index\": 0, \"process\": 0, \"type\": \"invoke\"}\n",
        Format::Jsonl,
    )
    .unwrap_err();
    assert!(err.message.contains("expected a \"f\" field"), "{err}");
}

#[test]
fn a_byte_order_mark_is_skipped_in_every_format() {
    let text =
        "\u{feff}{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"read\"}\n";
    assert_eq!(Format::detect(text), Some(Format::Jsonl));
    assert_eq!(read(text, Format::Auto).unwrap().len(), 1);
    assert_eq!(read(text, Format::Jsonl).unwrap().len(), 1);
}

#[test]
fn the_line_of_a_cut_short_last_line_is_known() {
    use history::formats::jsonl::cut_short_line;
    let whole = "{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"read\"}\n";
    assert_eq!(cut_short_line(whole), None);
    assert_eq!(
        cut_short_line(&format!("{whole}\n{{\"index\": 1, \"pro")),
        Some(3)
    );
    assert_eq!(cut_short_line(&format!("{whole}{{\"index\": 1}}")), None);
}

#[test]
fn a_huge_process_number_is_shown_as_written() {
    let text =
        "{\"index\": 0, \"process\": 100000000000000000000000, \"type\": \"invoke\", \
                \"f\": \"read\"}\n";
    let err = read(text, Format::Jsonl).unwrap_err();
    assert!(
        err.message.contains("found 100000000000000000000000"),
        "{err}"
    );
}
