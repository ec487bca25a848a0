//! embassy-net `TcpSocket` and embassy-time driving `producer-core` (issue #5).
//!
//! Nothing lives here yet: it follows transport-std and shares its client.
#![no_std]
