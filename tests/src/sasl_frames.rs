//! SaslHandshake (api key 17) and SaslAuthenticate (api key 36) frames, read and written by
//! the tests themselves, independently of the producer's codec: for a recording proxy
//! ([`crate::sasl_recorder`]) and a SASL probe of messages fixed in advance
//! ([`sasl_probe`]) that checks what a broker's SASL listener accepts.
//!
//! A frame is a 4-byte big-endian length and that many bytes. A request header is
//! `api_key: i16, api_version: i16, correlation_id: i32, client_id: nullable string (i16
//! length)` and, in a flexible version (header v2), tagged fields. A response header is the
//! correlation id, and tagged fields when the request's version is flexible (header v1).
//! SaslHandshake is never flexible; SaslAuthenticate is from v2 on (compact strings and
//! bytes: an unsigned varint of the length plus one).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// SaslHandshake's api key.
pub const SASL_HANDSHAKE: i16 = 17;
/// SaslAuthenticate's api key.
pub const SASL_AUTHENTICATE: i16 = 36;

/// Whether requests of `api_key` at `version` use the flexible header and encodings (only
/// the two SASL APIs are known here).
pub fn is_flexible(api_key: i16, version: i16) -> bool {
    api_key == SASL_AUTHENTICATE && version >= 2
}

/// A request header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// A SaslAuthenticate answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateAnswer {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub auth_bytes: Vec<u8>,
    /// v1 and later: how long the session lasts (0: no limit; KIP-368).
    pub session_lifetime_ms: i64,
}

/// A cursor over a frame's bytes; every read fails on a short frame.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "frame too short")
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(short());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn i16(&mut self) -> io::Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }

    pub fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn uvarint(&mut self) -> io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "varint too long",
        ))
    }

    /// A string or bytes that may be null: `i16`/`i32` length (classic) or varint length + 1
    /// (compact, `flexible`). `wide`: an `i32` classic length (bytes), else `i16` (string).
    fn nullable(&mut self, flexible: bool, wide: bool) -> io::Result<Option<&'a [u8]>> {
        let len: i64 = if flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }

    pub fn string(&mut self, flexible: bool) -> io::Result<Option<String>> {
        Ok(self
            .nullable(flexible, false)?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    pub fn bytes(&mut self, flexible: bool) -> io::Result<Vec<u8>> {
        Ok(self.nullable(flexible, true)?.unwrap_or_default().to_vec())
    }

    /// Skips a tagged-fields section.
    pub fn tagged_fields(&mut self) -> io::Result<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

/// The header of a request frame (without its length prefix), and a reader at its body.
pub fn request_header(frame: &[u8]) -> io::Result<(RequestHeader, Reader<'_>)> {
    let mut r = Reader::new(frame);
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    let client_id = r.string(false)?;
    if is_flexible(api_key, api_version) {
        r.tagged_fields()?;
    }
    let header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    };
    Ok((header, r))
}

/// A SaslAuthenticate request body: its `auth_bytes`.
pub fn authenticate_request(version: i16, body: &mut Reader<'_>) -> io::Result<Vec<u8>> {
    body.bytes(version >= 2)
}

/// A SaslAuthenticate response frame (header included) of `version`.
pub fn authenticate_response(version: i16, frame: &[u8]) -> io::Result<AuthenticateAnswer> {
    let flexible = version >= 2;
    let mut r = Reader::new(frame);
    r.i32()?;
    if flexible {
        r.tagged_fields()?;
    }
    let error_code = r.i16()?;
    let error_message = r.string(flexible)?;
    let auth_bytes = r.bytes(flexible)?;
    let session_lifetime_ms = if version >= 1 { r.i64()? } else { 0 };
    Ok(AuthenticateAnswer {
        error_code,
        error_message,
        auth_bytes,
        session_lifetime_ms,
    })
}

/// A SaslHandshake response frame (header included): error code and enabled mechanisms.
pub fn handshake_response(frame: &[u8]) -> io::Result<(i16, Vec<String>)> {
    let mut r = Reader::new(frame);
    r.i32()?;
    let error_code = r.i16()?;
    let n = r.i32()?.max(0);
    let mechanisms = (0..n)
        .map(|_| Ok(r.string(false)?.unwrap_or_default()))
        .collect::<io::Result<_>>()?;
    Ok((error_code, mechanisms))
}

/// Reads one frame (without its length prefix).
pub fn read_frame(from: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad frame length",
        ));
    }
    let mut frame = vec![0u8; len as usize];
    from.read_exact(&mut frame)?;
    Ok(frame)
}

/// A request frame (length prefix included): header v1 (`client_id` "sasl-probe"), or v2
/// when the version is flexible, then `body`.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    let client_id = b"sasl-probe";
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    if is_flexible(api_key, version) {
        frame.push(0);
    }
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// What a [`sasl_probe`] met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// SaslHandshake's error code (0, or 33 UNSUPPORTED_SASL_MECHANISM).
    pub handshake_error: i16,
    /// The mechanisms the listener offers.
    pub mechanisms: Vec<String>,
    /// The answers to the SaslAuthenticate requests, in order (none when the handshake
    /// failed; the last is the first with an error).
    pub answers: Vec<AuthenticateAnswer>,
}

/// Authenticates on a fresh connection to `addr` with messages fixed in advance:
/// SaslHandshake v1 for `mechanism`, then one SaslAuthenticate v2 per message (PLAIN's
/// `\0user\0password`, OAUTHBEARER's initial response and, after an error status, its
/// `\x01`) until the broker answers one with an error.
pub fn sasl_probe(addr: SocketAddr, mechanism: &str, mut messages: &[&[u8]]) -> io::Result<Probe> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut body = (mechanism.len() as i16).to_be_bytes().to_vec();
    body.extend_from_slice(mechanism.as_bytes());
    conn.write_all(&request(SASL_HANDSHAKE, 1, 1, &body))?;
    let (handshake_error, mechanisms) = handshake_response(&read_frame(&mut conn)?)?;
    let mut answers = Vec::new();
    if handshake_error != 0 {
        messages = &[];
    }
    for (i, auth_bytes) in messages.iter().enumerate() {
        let mut body = Vec::new();
        let mut n = auth_bytes.len() as u64 + 1;
        while n >= 0x80 {
            body.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        body.push(n as u8);
        body.extend_from_slice(auth_bytes);
        body.push(0);
        conn.write_all(&request(SASL_AUTHENTICATE, 2, 2 + i as i32, &body))?;
        let answer = authenticate_response(2, &read_frame(&mut conn)?)?;
        let failed = answer.error_code != 0;
        answers.push(answer);
        if failed {
            break;
        }
    }
    Ok(Probe {
        handshake_error,
        mechanisms,
        answers,
    })
}
