use super::*;
use serde_json::json;

const NOW: u64 = 1_700_000_000_000;

fn q(s: &str) -> Result<ListParams, QueryError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parse_list_query(&pairs, NOW, None)
}

fn one(s: &str) -> Filter {
    let p = q(s).expect("valid");
    assert_eq!(p.filters.len(), 1, "{s}");
    p.filters[0].clone()
}

#[test]
fn values_are_json_when_they_parse() {
    assert_eq!(one("age=30").value, json!(30));
    assert_eq!(one("age=%2230%22").value, json!("30"));
    assert_eq!(one("name=Alice").value, json!("Alice"));
    assert_eq!(one("flag=true").value, json!(true));
    assert_eq!(one("in_age=25,30").value, json!([25, 30]));
    assert_eq!(one("contains_any_tags=x,z").value, json!(["x,z"]));
    assert_eq!(one("contains_tags=[\"x\",\"z\"]").value, json!(["x", "z"]));
    assert_eq!(one("has_v=0").value, json!(false));
    assert_eq!(one("has_v=1").value, json!(true));
}

#[test]
fn operators_are_recognised() {
    for (s, op, field) in [
        ("min_a=1", Op::Min, "a"),
        ("max_a=1", Op::Max, "a"),
        ("lt_a=1", Op::Lt, "a"),
        ("gt_a=1", Op::Gt, "a"),
        ("not_a=1", Op::Not, "a"),
        ("exclude_a=1", Op::Exclude, "a"),
        ("like_a=x", Op::Like, "a"),
        ("eq_a.b=1", Op::Eq, "a.b"),
        ("contains_any_a=1", Op::ContainsAny, "a"),
    ] {
        let f = one(s);
        assert_eq!((f.op, f.field.as_str()), (op, field), "{s}");
    }
}

#[test]
fn since_before_and_to() {
    let p = q("_since=%22123%22&_before=200").expect("valid");
    assert_eq!(
        p.filters[0],
        Filter {
            field: "last_modified".into(),
            op: Op::Gt,
            value: json!(123)
        }
    );
    assert_eq!(p.filters[1].op, Op::Lt);
    assert!(p.has_timestamp_filter && !p.deprecated_to);
    assert!(q("_to=5").expect("valid").deprecated_to);
    assert!(!q("a=1").expect("valid").has_timestamp_filter);
    assert_eq!(
        q("_since=abc").expect_err("must fail").name.as_deref(),
        Some("_since")
    );
    let future = format!("_since={}", NOW + 25 * 3600 * 1000);
    assert_eq!(
        q(&future).expect_err("must fail").description,
        "Invalid value for _since"
    );
    assert!(q("gt_last_modified=x").is_err());
}

#[test]
fn id_and_like_typing() {
    assert_eq!(
        q("id=10").expect_err("must fail").description,
        "10 is not a string: {'id': ''}"
    );
    assert_eq!(
        q("in_id=10,a").expect_err("must fail").description,
        "Invalid value for in_id"
    );
    // Values colander drops stay, and match no id.
    assert_eq!(one("id=null").value, json!(null));
    assert_eq!(one("id=true").value, json!("true"));
    assert_eq!(one("in_id=a,b").value, json!(["a", "b"]));
    assert_eq!(one("not_id=10").value, json!("10"));
    assert!(q("like_age=3").is_err());
    assert_eq!(
        q("contains_id=a").expect_err("must fail").description,
        "Field 'id' is not an array"
    );
}

#[test]
fn limit_sort_fields_token() {
    let e = q("_limit=-1").expect_err("must fail");
    assert_eq!(
        (e.name.as_deref(), e.description.as_str()),
        (Some("_limit"), "-1 is less than minimum value 0")
    );
    assert!(q("_limit=abc").is_err());
    assert_eq!(q("_limit=0").expect("valid").limit, None);
    let p = q("_sort=title,-age&_fields=a,b.c&_limit=5").expect("valid");
    let keys: Vec<(&str, bool)> = p
        .sort
        .iter()
        .map(|k| (k.field.as_str(), k.descending))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("title", false),
            ("age", true),
            ("last_modified", true),
            ("id", false)
        ]
    );
    assert_eq!(p.fields, Some(vec!["a".to_string(), "b.c".to_string()]));
    assert_eq!(p.limit, Some(5));
    let e = q("_token=garbage").expect_err("must fail");
    assert_eq!(
        (e.name, e.description.as_str()),
        (None, "_token has invalid content")
    );
    assert_eq!(
        q("_token=1").expect_err("must fail").description,
        "1 is not a string: {'_token': ''}"
    );
    assert_eq!(q("_token=null").expect("valid").token, None);
    assert_eq!(q("_limit=1.5").expect("valid").limit, Some(1));
    assert_eq!(q("_limit=").expect("valid").limit, None);
    assert_eq!(
        q("_limit=9223372036854775809")
            .expect_err("must fail")
            .description,
        "9223372036854775809 is greater than maximum value 9223372036854775808"
    );
    let default = q("").expect("valid");
    assert_eq!(
        default.sort[0],
        SortKey {
            field: "last_modified".into(),
            descending: true
        }
    );
}

#[test]
fn unknown_underscore_params_are_ignored_but_repeats_and_nul_are_not() {
    assert!(q("_expected=1&_foo=bar").expect("valid").filters.is_empty());
    assert!(q("a=1&a=2").is_err());
    assert!(q("a=%00").is_err());
}

#[test]
fn strict_resources_refuse_unknown_fields() {
    let pairs = vec![("foo".to_string(), "1".to_string())];
    let e = parse_list_query(&pairs, NOW, Some(&["uri"])).expect_err("must fail");
    assert_eq!(e.description, "Unknown filter field 'foo'");
    // An empty id is read as a literal, still subject to the field list.
    let pairs = vec![("id".to_string(), String::new())];
    let e = parse_list_query(&pairs, NOW, Some(&["uri"])).expect_err("must fail");
    assert_eq!(e.description, "Unknown filter field 'id'");
}

#[test]
fn timestamps_as_kinto_reads_them() {
    let invalid = |s: &str| {
        let e = q(s).expect_err(s);
        let name = e.name.clone().unwrap_or_default();
        assert_eq!(e.description, format!("Invalid value for {name}"), "{s}");
    };
    for s in [
        "_since=",
        "_before=",
        "_to=",
        "_since=[]",
        "_since=%22%22",
        "last_modified=",
        "last_modified=null",
        "gt_last_modified=",
        "gt_last_modified=true",
        "gt_last_modified=null",
        "gt_last_modified=-1",
        "in_last_modified=1",
        "exclude_last_modified=1",
        "contains_last_modified=1",
        "has_last_modified=true",
    ] {
        invalid(s);
    }
    for (s, why) in [
        ("_since=%221", "\"\"1\" is not a number"),
        ("last_modified=12%22", "\"12\"\" is not a number"),
        ("_since=true", "\"true\" is not a number"),
        ("_since=[1]", "\"[1]\" is not a number"),
        ("_since={\"a\":1}", "\"{'a': 1}\" is not a number"),
        ("_since=-1", "-1 is less than minimum value 0"),
    ] {
        assert_eq!(q(s).expect_err(s).description, why, "{s}");
    }
    for (s, op, v) in [
        ("_since=1.5", Op::Gt, 1),
        ("_since=1e3", Op::Gt, 1000),
        ("_since=%201", Op::Gt, 1),
        ("_since=1_0", Op::Gt, 10),
        ("_since=-0.5", Op::Gt, 0),
        ("last_modified=1.5", Op::Eq, 1),
        ("gt_last_modified=1.5", Op::Gt, 1),
        ("lt_last_modified=1.5", Op::Lt, 2),
        ("gt_last_modified=%22%5C%221%5C%22%22", Op::Gt, 1),
        ("_since=null", Op::Min, 0),
        ("_before=null", Op::Lt, 0),
    ] {
        let f = one(s);
        assert_eq!((f.op, f.value), (op, json!(v)), "{s}");
    }
    assert!(q("_since=null").expect("valid").has_timestamp_filter);
    // Typed parameters are checked first, by name.
    assert_eq!(
        q("like_x=1&_since=abc&_limit=abc")
            .expect_err("x")
            .name
            .as_deref(),
        Some("_limit")
    );
}

#[test]
fn tokens_need_last_modified_only_where_entries_have_it() {
    let t = kinto_proto::query::encode_token(&serde_json::Map::new(), 2);
    let pairs = vec![("_token".to_string(), t)];
    assert!(parse_list_query(&pairs, NOW, None).is_err());
    let p = parse_list_query(&pairs, NOW, Some(&["uri"])).expect("permissions entries");
    assert_eq!(p.token_offset, 2);
}
