//! OAUTHBEARER tokens for Kafka's unsecured JWS validator (the broker's default for the
//! mechanism when no validator is configured), and the client message that carries one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An unsecured JWS that Kafka's default OAUTHBEARER validator accepts: header
/// `{"alg":"none"}`, claims `sub`, `iat` (now) and `exp` (now + `lifetime`), in seconds
/// since the epoch ([`unsecured_jws_of`]).
pub fn unsecured_jws(subject: &str, lifetime: Duration) -> String {
    unsecured_jws_valid_for(subject, lifetime).0
}

/// [`unsecured_jws`], and how long from now it is valid: `iat` and `exp` are whole seconds
/// (the current one, truncated), so that is between `lifetime - 1 s` and `lifetime`, what a
/// token source should say (`OAuthToken::valid_for`) for its token not to outlive its `exp`.
pub fn unsecured_jws_valid_for(subject: &str, lifetime: Duration) -> (String, Duration) {
    let now = SystemTime::now();
    let since_epoch = now.duration_since(UNIX_EPOCH).expect("clock after 1970");
    let (iat, exp) = (
        since_epoch.as_secs(),
        since_epoch.as_secs() + lifetime.as_secs(),
    );
    let token = unsecured_jws_of(&format!(
        "{{\"sub\":\"{subject}\",\"iat\":{iat},\"exp\":{exp}}}"
    ));
    let valid_for = (UNIX_EPOCH + Duration::from_secs(exp))
        .duration_since(now)
        .unwrap_or_default();
    (token, valid_for)
}

/// An unsecured JWS of the claims `claims` (a JSON object): the header `{"alg":"none"}`
/// and the claims, each base64url without padding, and an empty signature (the token ends
/// with a dot). Kafka's validator wants a string `sub`, a number `exp` (seconds since the
/// epoch, in the future), an `iat` if any not in the future; `scope` is optional.
pub fn unsecured_jws_of(claims: &str) -> String {
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(claims.as_bytes())
    )
}

/// The OAUTHBEARER client's first (and only) message carrying `token` (RFC 7628: the GS2
/// header `n,,`, then `auth=Bearer TOKEN` between 0x01 separators).
pub fn oauthbearer_initial_response(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// Base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
