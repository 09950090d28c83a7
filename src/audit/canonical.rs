//! RFC 8785 (JCS) canonical JSON and the SHA-256 digests taken over it, so that anyone can
//! recompute an entry's hash from its content with any JCS implementation.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev` of the first entry: no predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The RFC 8785 canonical JSON text of a value.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json_canonicalizer::to_string(value)
}

/// The lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_input_hashes_to_the_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let value = serde_json::json!({"b": [1, 2.50, true], "a": null});
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"a":null,"b":[1,2.5,true]}"#
        );
    }
}
