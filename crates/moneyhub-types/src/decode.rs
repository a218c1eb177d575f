//! JSON decoding that reports where a document went wrong.

use serde::de::DeserializeOwned;

use crate::Error;

/// Decodes a JSON document, reporting the JSON path of the field that failed.
///
/// Trailing non-whitespace after the document is an error.
///
/// ```
/// use moneyhub_types::{decode, Amount, DataResponse};
/// let err = decode::<DataResponse<Vec<Amount>>>(
///     br#"{"data":[{"value":1,"currency":"GBP"},{"value":"2","currency":"GBP"}]}"#,
/// )
/// .unwrap_err();
/// assert!(err.to_string().starts_with("data[1].value: invalid type: string \"2\""));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // Path tracking costs about as much as the decoding itself, and only a failure needs it:
    // decode plainly first, and again with paths to explain an error.
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
            de.end().map_err(|source| Error::Decode { path: ".".into(), source })?;
            Ok(value)
        }
    }
}

/// [`decode`] for a string.
pub fn decode_str<T: DeserializeOwned>(s: &str) -> Result<T, Error> {
    decode(s.as_bytes())
}

/// Decodes an already-parsed JSON value, reporting the path of the field that failed.
pub fn decode_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = err.path().to_string();
    Error::Decode { path, source: err.into_inner() }
}
