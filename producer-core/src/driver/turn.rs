//! An established connection's turn, the same for every transport: received bytes become
//! frames for the client, and the client's requests go out, partial writes kept for the
//! next turn. Dialling, name lookups, timeouts and waiting stay the transport's: they are
//! its sockets, its resolver and its clock.

use super::io::{Broken, ConnBuffers, Io};
use crate::capacity::Capacities;
use crate::client::{Client, ConnId};
use crate::time::Instant;
use crate::wire::FrameDecoder;

/// Reads what arrived on `io` and hands each complete frame to `client`, until nothing more
/// has arrived. `Ok(true)` when anything moved; `Err` when the connection is lost (the
/// caller tells the client with `on_connection_lost`).
pub fn receive<S, R, T, C: Capacities>(
    client: &mut Client<S, C>,
    io: &mut impl Io,
    buffers: &mut ConnBuffers<R, T>,
    decoder: &FrameDecoder,
    conn: ConnId,
    now: Instant,
) -> Result<bool, Broken>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    R: AsRef<[u8]> + AsMut<[u8]>,
    T: AsRef<[u8]> + AsMut<[u8]>,
{
    let mut moved = false;
    loop {
        // Frames that arrived before the connection ended are answers: a broker that answers
        // and closes (Kafka after a refused authentication) is heard before the loss.
        let received = buffers.read_from(io);
        moved |= buffers.frames(decoder, |frame| client.on_frame(conn, now, frame))?;
        let (read, full) = received?;
        moved |= read;
        // A full buffer held whole frames (the decoder refuses larger ones), now taken:
        // read on, since the socket may not say again that more is waiting.
        if !full {
            return Ok(moved);
        }
    }
}

/// Writes the pending request, then each request the client has for `conn`, until the
/// stream takes no more or the client has nothing. `Ok(true)` when anything moved.
pub fn transmit<S, R, T, C: Capacities>(
    client: &mut Client<S, C>,
    io: &mut impl Io,
    buffers: &mut ConnBuffers<R, T>,
    conn: ConnId,
    now: Instant,
) -> Result<bool, Broken>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    R: AsRef<[u8]> + AsMut<[u8]>,
    T: AsRef<[u8]> + AsMut<[u8]>,
{
    let mut moved = false;
    loop {
        moved |= buffers.write_to(io)?;
        let Some(buf) = buffers.request_buffer() else {
            return Ok(moved);
        };
        match client.poll_transmit(conn, now, buf) {
            Some(n) => {
                buffers.queued(n);
                moved = true;
            }
            None => return Ok(moved),
        }
    }
}

/// [`receive`], then [`transmit`]: a whole turn of an established connection.
pub fn service<S, R, T, C: Capacities>(
    client: &mut Client<S, C>,
    io: &mut impl Io,
    buffers: &mut ConnBuffers<R, T>,
    decoder: &FrameDecoder,
    conn: ConnId,
    now: Instant,
) -> Result<bool, Broken>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    R: AsRef<[u8]> + AsMut<[u8]>,
    T: AsRef<[u8]> + AsMut<[u8]>,
{
    let moved = receive(client, io, buffers, decoder, conn, now)?;
    Ok(transmit(client, io, buffers, conn, now)? | moved)
}
