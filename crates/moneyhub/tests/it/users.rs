//! Users: create, get, list (pages and all), delete.

use moneyhub::{ErrorKind, PageOptions, Sent};

use crate::support::{env, last_seq, matching, requests_after};

#[tokio::test]
async fn create_get_list_delete() {
    let e = env().await;
    let users = e.client.users();
    let a = users.create(Some("customer-a")).await.unwrap();
    let b = users.create(None).await.unwrap();
    let c = users.create(Some("customer-c")).await.unwrap();
    assert_eq!(a.client_user_id.as_deref(), Some("customer-a"));
    assert_eq!(b.client_user_id, None);
    assert_eq!(a.client_id, e.sandbox.client_id());

    let got = users.get(&a.user_id).await.unwrap();
    assert_eq!(got.user_id, a.user_id);

    let first = users.list(PageOptions::new(2, 0)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.total, Some(3));
    let next = first.next.expect("a second page");
    assert_eq!(next.offset, 2);
    let second = users.list(next).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next, None);

    let seq = last_seq(&e.sandbox).await;
    let all = users.list_all().await.unwrap();
    assert_eq!(all.len(), 3);
    let ids: Vec<_> = all.iter().map(|u| u.user_id.clone()).collect();
    assert!(ids.contains(&a.user_id) && ids.contains(&b.user_id) && ids.contains(&c.user_id));
    let log = requests_after(&e.sandbox, seq).await;
    assert!(matching(&log, "GET", "/users")
        .iter()
        .all(|r| r["query"].as_str().unwrap().contains("limit=100")));

    users.delete(&b.user_id).await.unwrap();
    let gone = users.get(&b.user_id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(gone.status(), Some(404));
    assert_eq!(gone.code(), Some("NotFound"));
    assert!(gone.correlation_id().is_some());
    assert_eq!(gone.sent(), Sent::Answered);
    assert_eq!(users.list_all().await.unwrap().len(), 2);
}

#[tokio::test]
async fn invalid_arguments_are_refused_before_sending() {
    let e = env().await;
    let seq = last_seq(&e.sandbox).await;
    let long = "x".repeat(257);
    let err = e.client.users().create(Some(&long)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Validation { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Never);
    let err = e.client.users().list(PageOptions::new(1001, 0)).await.unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = e.client.users().list(PageOptions::new(0, 0)).await.unwrap_err();
    assert_eq!(err.sent(), Sent::Never);
    assert!(requests_after(&e.sandbox, seq).await.is_empty());
}

/// Issue 11 #7: an id is always exactly one path segment. Characters that mean something in a
/// URL are percent-encoded (the request reaches `/users/{userId}` and is a 404, not another
/// route), and `.`/`..` never become ids, so nothing is sent for them.
#[tokio::test]
async fn ids_stay_one_path_segment() {
    let e = env().await;
    let users = e.client.users();
    let before = last_seq(&e.sandbox).await;
    for raw in ["a?b", "a#b", "a%2Fb", "..x", "a\\b", "%2e%2e"] {
        let id: moneyhub::UserId = raw.parse().unwrap();
        let err = users.get(&id).await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{raw}: {err}");
    }
    let log = requests_after(&e.sandbox, before).await;
    let gets = matching(&log, "GET", "/users/");
    assert_eq!(gets.len(), 6, "{log:#?}");
    for g in &gets {
        let path = g["path"].as_str().unwrap();
        assert_eq!(path.matches('/').count(), 2, "one segment after /users: {path}");
        assert!(g.get("query").is_none_or(|q| q.is_null() || q == ""), "nothing became a query: {g}");
    }
    for raw in [".", ".."] {
        assert!(raw.parse::<moneyhub::UserId>().is_err(), "{raw}");
    }
}
