//! The body Genesys' upload URL takes to publish a schedule: gzip-encoded JSON.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

/// `{"published": true, "metadata": {"version": V}}`, gzip-encoded.
pub fn gzip_publish_body(version: i64) -> std::io::Result<Vec<u8>> {
    let json = serde_json::json!({"published": true, "metadata": {"version": version}});
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(json.to_string().as_bytes())?;
    encoder.finish()
}
