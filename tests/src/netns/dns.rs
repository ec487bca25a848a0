//! The answers of the namespace's DNS responder ([`super::NetNs::dns_responder`]).

use std::net::Ipv4Addr;

/// The name asked for and the answer to one DNS query, or `None` for a datagram that is not
/// a query (ignored). `A`/IN for a name in `names`: one answer, TTL 60. Another type for a
/// known name: no answer, NOERROR. An unknown name: NXDOMAIN. Not a standard query: NOTIMP.
/// A malformed question: FORMERR (and an empty name).
pub fn dns_answer(query: &[u8], names: &[(String, Ipv4Addr)]) -> Option<(String, Vec<u8>)> {
    const QR: u16 = 0x8000;
    const AA: u16 = 0x0400;
    const RD: u16 = 0x0100;
    let header = query.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & QR != 0 {
        return None;
    }
    let reply = |rcode: u16, question: &[u8], answer: Option<Ipv4Addr>| {
        let mut out = Vec::with_capacity(12 + question.len() + 16);
        out.extend_from_slice(&header[..2]);
        let opcode = flags & 0x7800;
        out.extend_from_slice(&(QR | AA | opcode | (flags & RD) | rcode).to_be_bytes());
        out.extend_from_slice(&u16::from(!question.is_empty()).to_be_bytes());
        out.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(question);
        if let Some(ip) = answer {
            out.extend_from_slice(&[0xC0, 0x0C]); // the name: a pointer to the question's
            out.extend_from_slice(&1u16.to_be_bytes()); // type A
            out.extend_from_slice(&1u16.to_be_bytes()); // class IN
            out.extend_from_slice(&60u32.to_be_bytes()); // TTL
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        out
    };
    if flags & 0x7800 != 0 {
        return Some((String::new(), reply(4, &[], None))); // NOTIMP: standard queries only
    }
    if u16::from_be_bytes([header[4], header[5]]) != 1 {
        return Some((String::new(), reply(1, &[], None))); // FORMERR: one question only
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let Some(&len) = query.get(at) else {
            return Some((String::new(), reply(1, &[], None)));
        };
        let len = usize::from(len);
        if len == 0 {
            at += 1;
            break;
        }
        let label = query.get(at + 1..at + 1 + len);
        match label.map(std::str::from_utf8) {
            Some(Ok(label)) if len < 64 => labels.push(label),
            _ => return Some((String::new(), reply(1, &[], None))),
        }
        at += 1 + len;
    }
    let Some(tail) = query.get(at..at + 4) else {
        return Some((String::new(), reply(1, &[], None)));
    };
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    let question = &query[12..at + 4];
    let name = labels.join(".");
    let answer = match names.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
        None => reply(3, question, None),
        Some((_, ip)) if qtype == 1 && qclass == 1 => reply(0, question, Some(*ip)),
        Some(_) => reply(0, question, None),
    };
    Some((name, answer))
}
