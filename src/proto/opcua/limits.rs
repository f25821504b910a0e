//! Decode limits: one set of caps handed to every OPC UA decoder.
//!
//! Every declared length on the wire is checked against the bytes that remain AND against the
//! matching cap here before anything is allocated; exceeding a cap is a counted violation.

/// Caps on what one OPC UA message may make the decoders do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest String (and XmlElement) accepted, bytes.
    pub max_string_len: usize,
    /// Longest ByteString accepted, bytes.
    pub max_bytestring_len: usize,
    /// Most elements in one array.
    pub max_array_len: usize,
    /// Deepest nesting of Variant / ExtensionObject / DiagnosticInfo / DataValue.
    pub max_depth: usize,
    /// Largest reassembled message (sum of its chunk bodies), bytes.
    pub max_message_size: usize,
    /// Most chunks in one message.
    pub max_chunks_per_message: usize,
    /// Largest transport chunk buffered; bigger chunks are skipped and counted.
    pub max_chunk_size: usize,
    /// Largest chunk size a header may declare and still look like OPC UA (probe, resync).
    pub max_declared_chunk_size: u32,
    /// Values kept per object in an event (the rest are decoded and dropped).
    pub max_values_kept: usize,
    /// Objects (node accesses) kept per event.
    pub max_accesses_kept: usize,
    /// Messages being reassembled at once, per direction.
    pub max_partial_messages: usize,
    /// Requests awaiting a response at once, per flow.
    pub max_pending: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_string_len: 65_535,
            max_bytestring_len: 1 << 20,
            max_array_len: 65_536,
            max_depth: 16,
            max_message_size: 4 << 20,
            max_chunks_per_message: 64,
            max_chunk_size: 1 << 20,
            max_declared_chunk_size: 16 << 20,
            max_values_kept: 64,
            max_accesses_kept: 256,
            max_partial_messages: 16,
            max_pending: 500,
        }
    }
}
