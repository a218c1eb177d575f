//! Typed, wire-exact models of Moneyhub's Open Finance API (UK open banking).
//!
//! * [`ids`]: validated newtypes such as [`UserId`], [`ConnectionId`], [`TransactionId`].
//! * Open enums ([`ConnectionStatus`], [`AccountType`], [`WebhookEventType`], …): unknown wire
//!   values are kept in an `Unknown(String)` variant and encoded back unchanged, never rejected.
//! * Models: [`User`], [`Connection`], [`CatalogueEntry`], [`ConnectionSync`], [`SyncRequest`],
//!   [`SyncResponse`], [`Account`], [`Transaction`], envelopes ([`DataResponse`]), error bodies
//!   ([`ApiErrorBody`], [`OAuthErrorBody`]), [`TokenResponse`], webhooks ([`WebhookEnvelope`],
//!   [`WebhookEvent`]).
//! * [`decode()`]: JSON decoding whose errors name the failing field's path.
//!
//! Field names follow the wire (camelCase) through serde; a wire field called `type` is named
//! `kind` in Rust. Decoding ignores unknown fields (no model denies them), and decoded documents
//! re-encode to the same JSON, up to the normalisations documented on [`time`] and the open
//! enums' alias spellings.
//!
//! ```
//! use moneyhub_types::{decode, Connection, ConnectionError, DataResponse};
//! let body: DataResponse<Vec<Connection>> = decode(br#"{"data": [{
//!     "id": "1ffe704d39629a929c8e293880fb449a:7d235ab0-e951-487f-acde-73cae1a18be0",
//!     "name": "Moneyhub Open Banking Mock", "type": "test",
//!     "connectedOn": "2025-01-02T10:00:00.000Z", "accountIds": [],
//!     "status": "error", "error": "brand_new_code"}], "meta": {}}"#)?;
//! let connection = &body.data[0];
//! assert!(connection.kind.is_api_like());
//! assert_eq!(connection.error, Some(ConnectionError::Unknown("brand_new_code".into())));
//! # Ok::<(), moneyhub_types::Error>(())
//! ```

mod open_enum;

pub mod account;
pub mod amount;
pub mod auth_request;
pub mod catalogue;
pub mod connection;
pub mod decode;
pub mod envelope;
pub mod error;
pub mod error_body;
pub mod ids;
mod num;
pub mod sync;
pub mod time;
pub mod token;
pub mod transaction;
pub mod user;
pub mod webhook;

pub use account::{
    Account, AccountDetails, AccountType, Balance, BalanceType, CustomerType, InterestType,
    ProviderAccountIdentification, RunningCostPeriod, TransactionData,
};
pub use amount::{Amount, Currency};
pub use auth_request::{
    AuthParams, AuthRequest, AuthRequestStatus, AuthRequestSync, NewAuthRequest, RedirectParams,
};
pub use catalogue::{AvailabilityStatus, CatalogueAccountType, CatalogueEntry, ProviderStatus};
pub use connection::{
    Connection, ConnectionError, ConnectionPatch, ConnectionStatus, ConnectionType, ExtendedStatus,
};
pub use decode::{decode, decode_str, decode_value};
pub use envelope::{DataResponse, Links, TransactionsMeta};
pub use error::Error;
pub use error_body::{ApiErrorBody, OAuthErrorBody};
pub use ids::{
    AccountId, BankId, CategoryId, ClientId, ConnectionId, SyncId, TransactionId, UserId, WebhookId,
};
pub use sync::{
    AccountSync, ConnectionSync, FetchStatus, SyncAccount, SyncAction, SyncMethod, SyncRequest, SyncResponse,
};
pub use token::TokenResponse;
pub use transaction::{
    CardInstrument, PartyAccount, PartyAgent, ProprietaryTransactionCode, Transaction, TransactionCode,
    TransactionDetails, TransactionSplit, TransactionStatus, UnenrichedTransaction,
};
pub use user::{ManagedBy, User, UserType};
pub use webhook::{
    event_type_from_urn, urn_for_event_type, AccountTransactions, DeletedAccountPayload,
    PostConnectionEnrichmentPayload, ProcessingStatus, ReauthReminderPayload, RefreshReminderPayload,
    SyncCompletedPayload, TransactionsPayload, WebhookEnvelope, WebhookEvent, WebhookEventType,
    EVENT_URN_PREFIX,
};
