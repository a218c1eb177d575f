//! Accounts: list (all, by connection), get, not found.

use moneyhub::AccountFilter;
use moneyhub_types::AccountType;

use crate::support::{env, user_with, MOCK_BANK, MODELO_BANK};

#[tokio::test]
async fn list_by_connection_and_get() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK, MODELO_BANK]).await;
    let a = e.client.accounts();
    let all = a.list(&user, &AccountFilter::new()).await.unwrap();
    let mock = a.list(&user, &AccountFilter::new().connection(ids[0].clone())).await.unwrap();
    assert!(mock.len() < all.len());
    assert!(mock.iter().all(|acc| acc.connection_id.as_ref() == Some(&ids[0])));
    let kinds: Vec<_> = mock.iter().map(|acc| acc.kind.clone()).collect();
    for k in [AccountType::CashCurrent, AccountType::Savings, AccountType::Card] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let with_data = a.list(&user, &AccountFilter::new().show_transaction_data(true)).await.unwrap();
    assert!(with_data.iter().all(|acc| acc.transaction_data.is_some()));

    let one = a.get(&user, &mock[0].id).await.unwrap();
    assert_eq!(one.id, mock[0].id);
    let err = a.get(&user, &"00000000-0000-4000-8000-000000000001".parse().unwrap()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
