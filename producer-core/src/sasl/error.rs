//! The one error type of SASL authentication, with messages that say what to change.

use crate::ErrorCode;
use core::fmt;

const SASL_AUTHENTICATION_FAILED: i16 = ErrorCode::SASL_AUTHENTICATION_FAILED.0;
const ILLEGAL_SASL_STATE: i16 = ErrorCode::ILLEGAL_SASL_STATE.0;

/// Why a SASL authentication could not go on.
///
/// Three kinds: the credentials the application configured cannot be sent as they are (fix the
/// configuration), the broker refused them (fix the credentials, or the broker's user), or the
/// broker's messages are not what the mechanism allows (a broker bug, or someone in between:
/// the connection must be closed). None of them carries a secret, so all can be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The username is empty.
    EmptyUsername,
    /// The password is empty.
    EmptyPassword,
    /// The username or password holds a NUL character, which PLAIN uses as its separator and
    /// SCRAM forbids.
    NulInCredentials,
    /// The OAUTHBEARER token is empty or holds characters a bearer token cannot have
    /// (RFC 6750 `b64token`: letters, digits, `-._~+/`, trailing `=`).
    InvalidToken,
    /// An OAUTHBEARER extension has a key that is not letters only, is the reserved `auth`,
    /// or has an empty value or one with control characters (RFC 7628, section 3.1).
    InvalidExtension,
    /// A SCRAM nonce given as text is empty, longer than [`MAX_NONCE_LEN`](super::MAX_NONCE_LEN),
    /// or holds a character outside printable ASCII or a comma.
    InvalidNonce,
    /// The output buffer cannot hold the next client message.
    BufferTooSmall {
        /// Bytes the message needs, when known before writing (0 when not).
        needed: usize,
    },
    /// The broker's listener does not enable the configured mechanism.
    MechanismNotEnabled {
        /// The mechanism asked for.
        mechanism: &'static str,
    },
    /// The broker answered SaslAuthenticate with an error code: SASL_AUTHENTICATION_FAILED
    /// (58) for credentials it refused, ILLEGAL_SASL_STATE (34) for a message out of turn.
    AuthenticationFailed {
        /// The Kafka error code.
        error_code: i16,
    },
    /// The broker refused the OAUTHBEARER token, with this status (RFC 7628, section 3.2.2).
    #[cfg(feature = "sasl")]
    TokenRejected {
        /// The status the broker gave.
        status: super::OAuthStatus,
    },
    /// The broker sent a mechanism message where the mechanism has none (a PLAIN answer
    /// with content, anything after the exchange ended).
    UnexpectedServerMessage,
    /// A step of the exchange was called out of order (a bug in the caller).
    OutOfOrder,
    /// A step for another mechanism than the configured one (a bug in the caller).
    WrongMechanism,
    /// A SCRAM server message is not a list of `name=value` attributes in printable text.
    ScramMalformed,
    /// A SCRAM server message lacks an attribute it must have, where it must have it.
    ScramMissingAttribute {
        /// The attribute's name (`r`, `s`, `i` or `v`).
        attribute: char,
    },
    /// A SCRAM attribute that must be base64 (`s`, `v`) is not.
    ScramBadBase64 {
        /// The attribute's name.
        attribute: char,
    },
    /// The server's nonce does not extend the client's: the answer belongs to another
    /// exchange, or was forged.
    ScramNonceMismatch,
    /// The server asked for a mandatory SCRAM extension (`m=`), which this client has none of.
    ScramMandatoryExtension,
    /// The iteration count is not a positive decimal number.
    ScramBadIterationCount,
    /// The iteration count is below [`MIN_ITERATIONS`](super::MIN_ITERATIONS).
    ScramIterationsTooLow {
        /// The broker's count.
        iterations: u32,
    },
    /// The iteration count is above [`MAX_ITERATIONS`](super::MAX_ITERATIONS).
    ScramIterationsTooHigh {
        /// The broker's count.
        iterations: u32,
    },
    /// The salt is longer than [`MAX_SALT_LEN`](super::MAX_SALT_LEN) bytes.
    ScramSaltTooLong,
    /// The server's signature is not the one the password gives: the broker does not know
    /// the password (it is not the cluster's broker, or someone is in between).
    ScramServerSignatureMismatch,
    /// The SCRAM server ended the exchange with an error (`e=`).
    ScramServerError(ScramServerError),
}

/// The `server-error-value`s of RFC 5802 (section 7), and one for any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScramServerError {
    /// `invalid-encoding`
    InvalidEncoding,
    /// `extensions-not-supported`
    ExtensionsNotSupported,
    /// `invalid-proof`: the password is wrong.
    InvalidProof,
    /// `channel-bindings-dont-match`
    ChannelBindingsDontMatch,
    /// `server-does-support-channel-binding`
    ServerDoesSupportChannelBinding,
    /// `channel-binding-not-supported`
    ChannelBindingNotSupported,
    /// `unsupported-channel-binding-type`
    UnsupportedChannelBindingType,
    /// `unknown-user`
    UnknownUser,
    /// `invalid-username-encoding`
    InvalidUsernameEncoding,
    /// `no-resources`
    NoResources,
    /// `other-error`, or a value RFC 5802 does not define.
    Other,
}

impl ScramServerError {
    /// The error named by an `e=` value.
    pub fn from_value(value: &[u8]) -> Self {
        match value {
            b"invalid-encoding" => Self::InvalidEncoding,
            b"extensions-not-supported" => Self::ExtensionsNotSupported,
            b"invalid-proof" => Self::InvalidProof,
            b"channel-bindings-dont-match" => Self::ChannelBindingsDontMatch,
            b"server-does-support-channel-binding" => Self::ServerDoesSupportChannelBinding,
            b"channel-binding-not-supported" => Self::ChannelBindingNotSupported,
            b"unsupported-channel-binding-type" => Self::UnsupportedChannelBindingType,
            b"unknown-user" => Self::UnknownUser,
            b"invalid-username-encoding" => Self::InvalidUsernameEncoding,
            b"no-resources" => Self::NoResources,
            _ => Self::Other,
        }
    }
}

const CHECK_USER: &str = "check the username and password, and that the user exists for this \
    mechanism on the cluster (kafka-configs --describe --entity-type users)";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyUsername => f.write_str("SASL: the username is empty: configure one"),
            Self::EmptyPassword => f.write_str("SASL: the password is empty: configure one"),
            Self::NulInCredentials => f.write_str(
                "SASL: the username or password holds a NUL character, which SASL cannot send: \
                 remove it",
            ),
            Self::InvalidToken => f.write_str(
                "OAUTHBEARER: the token is empty or not a bearer token (letters, digits, \
                 -._~+/ and trailing =): pass the access token itself, without a scheme",
            ),
            Self::InvalidExtension => f.write_str(
                "OAUTHBEARER: an extension key must be letters only and not `auth`, and its \
                 value non-empty printable text: fix the extension",
            ),
            Self::InvalidNonce => f.write_str(
                "SCRAM: a nonce must be 1 to 64 printable ASCII characters without a comma: \
                 build it from random bytes (Nonce::from_random)",
            ),
            Self::BufferTooSmall { needed: 0 } => {
                f.write_str("SASL: the buffer is too small for the next message: give a larger one")
            }
            Self::BufferTooSmall { needed } => write!(
                f,
                "SASL: the next message needs {needed} bytes, more than the buffer holds: give \
                 a larger one"
            ),
            Self::MechanismNotEnabled { mechanism } => write!(
                f,
                "SASL: the broker's listener does not enable {mechanism}: configure a mechanism \
                 from its sasl.enabled.mechanisms, or enable {mechanism} there"
            ),
            Self::AuthenticationFailed {
                error_code: SASL_AUTHENTICATION_FAILED,
            } => write!(
                f,
                "SASL: the broker refused the credentials (SASL_AUTHENTICATION_FAILED): \
                 {CHECK_USER}"
            ),
            Self::AuthenticationFailed {
                error_code: ILLEGAL_SASL_STATE,
            } => f.write_str(
                "SASL: the broker did not expect this authentication message \
                 (ILLEGAL_SASL_STATE): a client bug, please report it",
            ),
            Self::AuthenticationFailed { error_code } => write!(
                f,
                "SASL: the broker refused the authentication with error code {error_code} ({})",
                ErrorCode(*error_code).name().unwrap_or("unknown")
            ),
            #[cfg(feature = "sasl")]
            Self::TokenRejected { status } => write!(
                f,
                "OAUTHBEARER: the broker refused the token ({}): supply a fresh token from the \
                 identity provider the broker trusts, with the scope and audience it expects",
                status.as_str()
            ),
            Self::UnexpectedServerMessage => f.write_str(
                "SASL: the broker sent a message the mechanism does not have: close the \
                 connection; a broker that keeps doing this is not speaking this mechanism",
            ),
            Self::OutOfOrder => {
                f.write_str("SASL: authentication steps called out of order (a caller bug)")
            }
            Self::WrongMechanism => f.write_str(
                "SASL: an authentication step for another mechanism than the configured one \
                 (a caller bug)",
            ),
            Self::ScramMalformed => f.write_str(
                "SCRAM: the broker's message is not SCRAM attributes: close the connection",
            ),
            Self::ScramMissingAttribute { attribute } => write!(
                f,
                "SCRAM: the broker's message lacks `{attribute}=` where RFC 5802 puts it: close \
                 the connection"
            ),
            Self::ScramBadBase64 { attribute } => write!(
                f,
                "SCRAM: the broker's `{attribute}=` is not base64: close the connection"
            ),
            Self::ScramNonceMismatch => f.write_str(
                "SCRAM: the broker's nonce does not extend the client's: the answer is not to \
                 this exchange (a replay, or someone in between): close the connection",
            ),
            Self::ScramMandatoryExtension => f.write_str(
                "SCRAM: the broker requires an extension (m=) this client does not implement: \
                 use another mechanism",
            ),
            Self::ScramBadIterationCount => f.write_str(
                "SCRAM: the broker's iteration count is not a positive number: close the \
                 connection",
            ),
            Self::ScramIterationsTooLow { iterations } => write!(
                f,
                "SCRAM: the broker's credential has {iterations} iterations, below the {} that \
                 RFC 7677 and Kafka require: recreate the user's SCRAM credential with more \
                 (kafka-configs --alter --add-config 'SCRAM-SHA-512=[iterations=8192,password=...]')",
                super::MIN_ITERATIONS
            ),
            Self::ScramIterationsTooHigh { iterations } => write!(
                f,
                "SCRAM: the broker's credential asks for {iterations} iterations, above the {} \
                 Kafka allows: a broker that asks this would keep the device busy for minutes; \
                 recreate the credential with fewer",
                super::MAX_ITERATIONS
            ),
            Self::ScramSaltTooLong => write!(
                f,
                "SCRAM: the broker's salt is longer than {} bytes: recreate the user's SCRAM \
                 credential (Kafka's salts are at most 26 bytes)",
                super::MAX_SALT_LEN
            ),
            Self::ScramServerSignatureMismatch => f.write_str(
                "SCRAM: the broker could not prove it knows the password: it is not the \
                 cluster's broker, or someone is in between; close the connection and check \
                 the bootstrap addresses (and use TLS)",
            ),
            Self::ScramServerError(ScramServerError::InvalidProof) => write!(
                f,
                "SCRAM: the broker refused the password (invalid-proof): {CHECK_USER}"
            ),
            Self::ScramServerError(ScramServerError::UnknownUser) => write!(
                f,
                "SCRAM: the broker does not know the user (unknown-user): {CHECK_USER}"
            ),
            Self::ScramServerError(e) => write!(f, "SCRAM: the broker ended the exchange: {e:?}"),
        }
    }
}

impl core::error::Error for Error {}
