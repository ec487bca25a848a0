//! The few facts of an X.509 certificate that embedded-tls's verifier does not report: its
//! validity period and a name it carries. embedded-tls answers every chain, name and date
//! failure with the same `InvalidCertificate`; these facts let the transport tell the
//! firmware which setting to change ([`TlsFailure`](producer_core::tls::TlsFailure)).
//!
//! A bounded walk over DER (definite lengths, at most three length bytes): nothing is
//! allocated, and a certificate this cannot read is simply not described (the verifier has
//! already refused or accepted it on its own terms).

/// One DER element: its tag, its contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The element at the front of `input` if it has `tag`: its contents and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = tlv(input)?;
    (t == tag).then_some((contents, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
/// `[2] IMPLICIT IA5String` inside GeneralNames.
const DNS_NAME: u8 = 0x82;
/// 2.5.4.3, the subject's common name.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// What this module reads from a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Facts<'a> {
    /// Seconds since the Unix epoch.
    pub(crate) not_before: u64,
    /// Seconds since the Unix epoch.
    pub(crate) not_after: u64,
    /// The first DNS subject alternative name, else the subject's common name.
    pub(crate) name: Option<&'a [u8]>,
}

/// The validity and a name of the DER certificate `der`, if it can be read.
pub(crate) fn facts(der: &[u8]) -> Option<Facts<'_>> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional.
    if let Some((0xa0, _, r)) = tlv(rest) {
        rest = r;
    }
    let (_serial, r) = expect(rest, 0x02)?;
    let (_signature, r) = expect(r, SEQUENCE)?;
    let (_issuer, r) = expect(r, SEQUENCE)?;
    let (validity, r) = expect(r, SEQUENCE)?;
    let (subject, r) = expect(r, SEQUENCE)?;
    let (_spki, mut r) = expect(r, SEQUENCE)?;
    let (not_before, v) = time(validity)?;
    let (not_after, _) = time(v)?;
    // issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut san = None;
    while let Some((tag, contents, next)) = tlv(r) {
        if tag == 0xa3 {
            san = first_dns_name(contents);
        }
        r = next;
    }
    Some(Facts {
        not_before,
        not_after,
        name: san.or_else(|| common_name(subject)),
    })
}

/// The subject's first common name.
fn common_name(mut subject: &[u8]) -> Option<&[u8]> {
    while let Some((set, rest)) = expect(subject, SET) {
        let mut attributes = set;
        while let Some((attribute, next)) = expect(attributes, SEQUENCE) {
            let (oid, value) = expect(attribute, OID)?;
            if oid == COMMON_NAME {
                let (_, name, _) = tlv(value)?;
                return Some(name);
            }
            attributes = next;
        }
        subject = rest;
    }
    None
}

/// The first dNSName of the subjectAltName extension in `[3] EXPLICIT Extensions`.
fn first_dns_name(extensions: &[u8]) -> Option<&[u8]> {
    let (mut list, _) = expect(extensions, SEQUENCE)?;
    while let Some((extension, next)) = expect(list, SEQUENCE) {
        let (oid, mut r) = expect(extension, OID)?;
        if oid == SUBJECT_ALT_NAME {
            if let Some((_, after)) = expect(r, BOOLEAN) {
                r = after;
            }
            let (value, _) = expect(r, OCTET_STRING)?;
            let (mut names, _) = expect(value, SEQUENCE)?;
            while let Some((tag, name, after)) = tlv(names) {
                if tag == DNS_NAME {
                    return Some(name);
                }
                names = after;
            }
            return None;
        }
        list = next;
    }
    None
}

/// A UTCTime or GeneralizedTime at the front of `input`, as Unix seconds.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (tag, text, rest) = tlv(input)?;
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |a, &b| {
            b.is_ascii_digit().then(|| a * 10 + u64::from(b - b'0'))
        })
    };
    let (year, text) = match tag {
        // RFC 5280: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        UTC_TIME => {
            let yy = digits(text.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME => (digits(text.get(..4)?)?, &text[4..]),
        _ => return None,
    };
    let month = digits(text.get(0..2)?)?;
    let day = digits(text.get(2..4)?)?;
    let hour = digits(text.get(4..6)?)?;
    let minute = digits(text.get(6..8)?)?;
    let second = digits(text.get(8..10)?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian, year ≥ 1970).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    // Whole years: 365 each, plus the leap days before `year` counted from 1970.
    let leaps_before = |y: u64| (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
    let mut days = (year - 1970) * 365 + leaps_before(year) - leaps_before(1970);
    const BEFORE_MONTH: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    days += BEFORE_MONTH[(month - 1) as usize];
    if month > 2 && leap(year) {
        days += 1;
    }
    days + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_unix_seconds() {
        assert_eq!(days_since_epoch(1970, 1, 1), 0);
        assert_eq!(days_since_epoch(2000, 3, 1), 11_017);
        // 2024-02-29 is 19,782 days after the epoch.
        assert_eq!(days_since_epoch(2024, 2, 29), 19_782);
        let utc = [
            UTC_TIME, 13, b'2', b'0', b'1', b'2', b'3', b'1', b'2', b'3', b'5', b'9', b'5', b'9',
            b'Z',
        ];
        assert_eq!(time(&utc).map(|t| t.0), Some(1_609_459_199));
        let mut general = [0u8; 17];
        general[0] = GENERALIZED_TIME;
        general[1] = 15;
        general[2..].copy_from_slice(b"20900101000000Z");
        assert_eq!(time(&general).map(|t| t.0), Some(3_786_912_000));
    }

    #[test]
    fn truncated_input_is_not_described() {
        assert_eq!(facts(&[]), None);
        assert_eq!(facts(&[0x30, 0x82, 0x01]), None);
        assert_eq!(facts(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}
