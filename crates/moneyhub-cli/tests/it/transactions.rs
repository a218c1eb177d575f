//! `moneyhub transactions get|list`.

use serde_json::Value;

use crate::support::{banks, fits_80, snapshot, Env};

fn ids_of(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect()
}

#[test]
fn list_with_filters_and_limit() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK, banks::AVIVA]);
    let all = env.json(&["transactions", "list", "--user", &user]);
    let all = all.as_array().expect("array").clone();
    assert!(all.len() > 100, "{}", all.len());
    // Newest first.
    let dates: Vec<&str> = all.iter().map(|t| t["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));

    let limited = env.json(&["transactions", "list", "--user", &user, "--limit", "7"]);
    assert_eq!(
        ids_of(&limited),
        all.iter().take(7).map(|t| t["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    );

    let january =
        env.json(&["transactions", "list", "--user", &user, "--from", "2025-01-01", "--to", "2025-01-10"]);
    let january = january.as_array().unwrap();
    assert!(!january.is_empty());
    assert!(january
        .iter()
        .all(|t| t["date"].as_str().unwrap() >= "2025-01-01" && t["date"].as_str().unwrap() < "2025-01-11"));

    let account = all[0]["accountId"].as_str().unwrap().to_owned();
    let one = env.json(&["transactions", "list", "--user", &user, "--account", &account]);
    assert!(one.as_array().unwrap().iter().all(|t| t["accountId"] == account.as_str()));
    assert!(one.as_array().unwrap().len() < all.len());

    let word = all[0]["shortDescription"].as_str().unwrap().to_owned();
    let text = env.json(&["transactions", "list", "--user", &user, "--text", &word]);
    assert!(!text.as_array().unwrap().is_empty());

    let category = all[0]["categoryId"].as_str().unwrap().to_owned();
    let by_cat = env.json(&["transactions", "list", "--user", &user, "--category", &category]);
    assert!(by_cat.as_array().unwrap().iter().all(|t| t["categoryId"] == category.as_str()));

    let table = env.ok(&["transactions", "list", "--user", &user, "--limit", "12"]);
    fits_80(&table.stdout);
    snapshot("transactions_list", &table.stdout);

    // Invalid filters are named.
    let r = env.run(&["transactions", "list", "--user", &user, "--from", "2025-02-01", "--to", "2025-01-01"]);
    r.code(2);
    assert!(r.stderr.contains("--from"), "{}", r.stderr);
    let r = env.run(&["transactions", "list", "--user", &user, "--account", "not-a-uuid"]);
    r.code(2);
    assert!(r.stderr.contains("--account"), "{}", r.stderr);
    env.run(&["transactions", "list", "--user", &user, "--category", "food"]).code(2);
}

#[test]
fn list_follows_every_page() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    // The background history: months more than one page of 1000.
    env.advance(serde_json::json!({"seconds": 2}));
    let all = env.json(&["transactions", "list", "--user", &user]);
    let n = all.as_array().unwrap().len();
    assert!(n > 1000, "{n}");
    let mut ids = ids_of(&all);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no duplicates across pages");
    let some = env.json(&["transactions", "list", "--user", &user, "--limit", "1500"]);
    assert_eq!(some.as_array().unwrap().len(), 1500);
}

#[test]
fn get_by_ids_reports_the_missing_ones() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let all = env.json(&["transactions", "list", "--user", &user, "--limit", "120"]);
    let ids = ids_of(&all);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let mut wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    wanted.push(unknown);
    // More than 50 ids: fetched in batches, in the order given.
    let joined = wanted.join(",");
    let got = env.json(&["transactions", "get", "--user", &user, "--ids", &joined]);
    assert_eq!(ids_of(&got["data"]), ids);
    assert_eq!(got["missing"], serde_json::json!([unknown]));

    // From a file: plain (whitespace/commas) or a JSON array.
    let file = env.dir.join("ids.txt");
    std::fs::write(&file, format!("{}\n{} , {unknown}\n", ids[0], ids[1])).unwrap();
    let got = env.json(&["transactions", "get", "--user", &user, "--ids-file", file.to_str().unwrap()]);
    assert_eq!(got["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(got["missing"].as_array().map(Vec::len), Some(1));
    std::fs::write(&file, serde_json::json!([ids[2], unknown]).to_string()).unwrap();
    let got = env.json(&["transactions", "get", "--user", &user, "--ids-file", file.to_str().unwrap()]);
    assert_eq!(got["data"][0]["id"], ids[2].as_str());

    let table = env.ok(&[
        "transactions",
        "get",
        "--user",
        &user,
        "--ids",
        &format!("{},{},{unknown}", ids[0], ids[1]),
    ]);
    snapshot("transactions_get", &table.stdout);

    // A malformed id is named and nothing is sent.
    let before = env.last_seq();
    let r = env.run(&["transactions", "get", "--user", &user, "--ids", &format!("{},nope", ids[0])]);
    r.code(2);
    assert!(r.stderr.contains("\"nope\""), "{}", r.stderr);
    assert!(!env
        .requests(before)
        .iter()
        .any(|e| e["path"].as_str().is_some_and(|p| p.contains("transactions"))));
    env.run(&["transactions", "get", "--user", &user]).code(2);
    env.run(&["transactions", "get", "--user", &user, "--ids-file", "/nonexistent"]).code(2);
}
