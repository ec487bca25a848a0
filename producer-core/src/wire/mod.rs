//! Sans-IO Kafka protocol codec.
//!
//! Everything here works on caller-provided byte slices: encoders write into
//! `&mut [u8]` through a [`Writer`] that reports a full buffer as an error,
//! decoders borrow from the input through a [`Reader`] and return
//! [`DecodeError`] for any malformed input, never panicking or allocating.
//! Arrays are [`List`]s: caller slices when encoding, lazily iterated wire
//! bytes when decoding.
//!
//! Layers, bottom up (private files; what they define is re-exported here):
//!
//! - `varint`, `writer`, `reader`, `tagged`, `list`: primitive types.
//! - `frame`: the size prefix and partial-read handling ([`FrameDecoder`]).
//! - `body`: the traits every API body implements (a leaf: nothing here imports back).
//! - `header`, `message`: request/response headers and whole messages; `any` (feature
//!   `decode-any`, for model brokers and cross-checks): a frame of whichever API.
//! - `api_versions`, `metadata`, `init_producer_id`, `produce`, `sasl_handshake`,
//!   `sasl_authenticate`: API bodies; `api_key` holds the implemented version ranges and the
//!   negotiation rule. The SASL mechanisms themselves are in [`crate::sasl`].
//! - `record_batch`, `record`, `compression`, `crc`: record batch v2.
//!
//! # Example: one idempotent produce round trip
//!
//! ```
//! use producer_core::wire::{self, *};
//!
//! // Versions: negotiated from the broker's ApiVersions answer.
//! let keys = [ApiVersion { api_key: 0, min_version: 0, max_version: 13 }];
//! let versions = ApiVersionsResponse { api_keys: List::from_slice(&keys), ..Default::default() };
//! let produce_version = versions.negotiate(ApiKey::Produce).unwrap(); // 11
//!
//! // Build a batch in place while records accumulate...
//! let mut batch_buf = [0u8; 1024];
//! let mut builder = BatchBuilder::new(&mut batch_buf, Attributes::default(), 1_700_000_000_000)?;
//! builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[])?;
//! let batch = builder.finish()?;
//! // ...and stamp it with the producer identity when it is sent.
//! wire::stamp(batch, 1000, 0, 0)?;
//!
//! // Frame a Produce request around it.
//! let partitions = [ProducePartition { index: 0, records: Some(&*batch) }];
//! let topics = [ProduceTopic { name: "events", partitions: List::from_slice(&partitions) }];
//! let request = ProduceRequest { transactional_id: None, acks: -1, timeout_ms: 30_000, topics: List::from_slice(&topics) };
//! let mut out = [0u8; 2048];
//! let n = encode_request(&mut out, produce_version, 7, Some("my-client"), &request)?;
//!
//! // The receive side: find a complete frame, then decode the response.
//! let mut reply = [0u8; 256];
//! let partition = [ProducePartitionResponse { base_offset: 42, ..Default::default() }];
//! let topic = [ProduceTopicResponse { name: "events", partitions: List::from_slice(&partition) }];
//! let m = encode_response(&mut reply, produce_version, 7, &ProduceResponse { topics: List::from_slice(&topic), ..Default::default() })?;
//! let FrameStatus::Complete { frame, .. } = FrameDecoder::new(1 << 20).decode(&reply[..m])? else { unreachable!() };
//! let (header, response): (_, ProduceResponse<'_>) = decode_response(frame, produce_version)?;
//! assert_eq!(header.correlation_id, 7);
//! let p = response.topics.iter().next().unwrap().partitions.iter().next().unwrap();
//! assert_eq!((p.error_code, p.base_offset), (0, 42));
//! # let _ = n;
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

#[cfg(feature = "decode-any")]
mod any;
mod api_key;
mod api_versions;
mod body;
mod compression;
mod crc;
mod error;
mod frame;
mod header;
mod init_producer_id;
mod list;
mod message;
mod metadata;
mod produce;
mod reader;
mod record;
mod record_batch;
mod sasl_authenticate;
mod sasl_handshake;
mod tagged;
mod varint;
mod writer;

#[cfg(feature = "decode-any")]
pub use any::{Request, Response, decode_any_response, decode_request};
pub use api_key::{ApiKey, VersionRange};
pub use api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse, FinalizedFeature, NegotiatedVersions,
    SupportedFeature, UNSUPPORTED_VERSION,
};
pub use body::{Body, RequestBody, ResponseBody};
pub use compression::{Attributes, Compression, TimestampType};
pub use crc::crc32c;
pub use error::{DecodeError, EncodeError};
pub use frame::{FrameDecoder, FrameStatus};
pub use header::{RequestHeader, ResponseHeader};
pub use init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
pub use list::{Item, List, Source};
#[cfg(feature = "decode-any")]
pub use message::{decode_request_as, decode_request_header};
pub use message::{decode_response, decode_response_lenient, encode_request, encode_response};
pub use metadata::{
    MetadataBroker, MetadataPartition, MetadataRequest, MetadataRequestTopic, MetadataResponse,
    MetadataTopic,
};
pub use produce::{
    LeaderIdAndEpoch, NodeEndpoint, ProducePartition, ProducePartitionResponse, ProduceRequest,
    ProduceResponse, ProduceTopic, ProduceTopicResponse, RecordError,
};
pub use reader::Reader;
pub use record::{Record, RecordHeader};
pub use record_batch::{
    BatchBuilder, LOG_OVERHEAD, MAGIC, NO_PRODUCER_ID, OpenBatch, RECORD_BATCH_OVERHEAD,
    RecordBatch, RecordBatchHeader, RecordBatches, header_of, set_base_offset,
    set_partition_leader_epoch, stamp,
};
pub use sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
pub use sasl_handshake::{MechanismName, SaslHandshakeRequest, SaslHandshakeResponse};
pub use varint::{unzigzag32, unzigzag64, zigzag32, zigzag64};
pub use writer::Writer;
