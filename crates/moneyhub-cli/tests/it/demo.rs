//! `moneyhub demo`.

use crate::support::bare;

#[test]
fn demo_tells_the_whole_story_in_under_ten_seconds() {
    let r = bare(&["demo"]);
    r.ok();
    assert!(r.elapsed.as_secs_f64() < 10.0, "took {:?}", r.elapsed);
    let out = &r.stdout;
    for action in ["none", "sync", "reauth", "reconsent", "refresh", "remove", "contact_support"] {
        assert!(
            out.lines().any(|l| l.split_whitespace().any(|w| w == action)),
            "the demo shows the action {action}:\n{out}"
        );
    }
    for step in [
        "1. A user connects ten providers",
        "2. Three days pass",
        "3. `moneyhub doctor --user`",
        "4. Acting on the advice",
        "refused by the guard before anything was sent",
        "the reconsent flow went through",
        "the reauth flow went through",
        "5. Reading transactions",
        "By pages",
        "By ids",
        "6. Removing",
        "0 found",
        "7. `moneyhub doctor` again",
    ] {
        assert!(out.contains(step), "missing {step:?}:\n{out}");
    }
    crate::support::fits_80(out);
}

#[test]
fn demo_json_has_both_doctor_reports() {
    let r = bare(&["demo", "--output", "json"]);
    r.ok();
    let v = r.json();
    let before: Vec<&str> =
        v["doctorBefore"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    for action in ["none", "sync", "reauth", "reconsent", "refresh", "remove"] {
        assert!(before.contains(&action), "{before:?}");
    }
    assert_eq!(v["contactSupport"]["action"], "contact_support");
    // NatWest's sync did not help: "retried", so the advice moved on (lifecycle table row 10).
    let natwest = v["connections"]["natwest"].as_str().unwrap();
    let after = v["doctorAfter"].as_array().unwrap().iter().find(|r| r["connectionId"] == natwest).unwrap();
    assert_eq!((after["action"].as_str(), after["rule"].as_u64()), (Some("reconsent"), Some(10)), "{after}");
    // The removed connection is gone.
    let northwind = v["connections"]["northwind"].as_str().unwrap();
    assert!(!v["doctorAfter"].as_array().unwrap().iter().any(|r| r["connectionId"] == northwind));
}
