//! Integration tests of `moneyhub-types` (one test binary; see the submodules).

mod decode_errors;
mod enums;
mod fixtures;
mod ids;
mod models;
mod token;
mod webhooks;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Reads `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Decodes `bytes` as `T`, re-encodes it and asserts the JSON is unchanged. Returns the decoded
/// value for further assertions.
pub fn assert_round_trip<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> T {
    let original: Value = serde_json::from_slice(bytes).expect("fixture is JSON");
    let decoded: T = moneyhub_types::decode(bytes).unwrap_or_else(|e| panic!("decode: {e}"));
    let encoded = serde_json::to_value(&decoded).expect("encode");
    assert_eq!(
        encoded,
        original,
        "round trip changed the JSON:\n got: {}\nwant: {}",
        serde_json::to_string_pretty(&encoded).unwrap_or_default(),
        serde_json::to_string_pretty(&original).unwrap_or_default()
    );
    decoded
}
