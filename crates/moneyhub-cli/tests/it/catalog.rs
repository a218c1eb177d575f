//! `moneyhub catalog`.

use crate::support::{fits_80, snapshot, Env};

#[test]
fn catalog_table_and_json() {
    let env = Env::new();
    let r = env.ok(&["catalog", "--type", "test"]);
    fits_80(&r.stdout);
    snapshot("catalog_test", &r.stdout);

    let all = env.json(&["catalog"]);
    let all = all.as_array().expect("array");
    assert!(all.len() > 10);
    let mock = all.iter().find(|p| p["id"] == "1ffe704d39629a929c8e293880fb449a").expect("mock bank");
    assert_eq!(mock["name"], "Moneyhub Open Banking Mock");
    assert_eq!(mock["type"], "test");
    assert!(mock["accountTypes"].as_array().is_some_and(|a| !a.is_empty()));

    for (kind, expected) in [("api", "api"), ("legacy", "legacy")] {
        let list = env.json(&["catalog", "--type", kind]);
        let list = list.as_array().expect("array");
        assert!(!list.is_empty());
        assert!(list.iter().all(|p| p["type"] == expected), "{kind}: {list:?}");
    }
    let payments = env.json(&["catalog", "--type", "payments"]);
    assert!(payments
        .as_array()
        .expect("array")
        .iter()
        .all(|p| p["payments"].as_array().is_some_and(|a| !a.is_empty())));
}
