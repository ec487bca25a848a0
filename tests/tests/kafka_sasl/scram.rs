//! A captured SCRAM exchange (RFC 5802; SHA-512 per RFC 7677) and its check, recomputed
//! from the password with RustCrypto's PBKDF2, HMAC and SHA-512:
//!
//! ```text
//! SaltedPassword  = PBKDF2-HMAC-SHA-512(password, salt, i)
//! ClientKey       = HMAC(SaltedPassword, "Client Key"),  StoredKey = H(ClientKey)
//! AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
//! ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
//! ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

/// The four messages of one exchange, verbatim, with the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCapture {
    pub username: String,
    pub password: String,
    pub client_first: String,
    pub server_first: String,
    pub client_final: String,
    pub server_final: String,
}

impl ScramCapture {
    /// Reads the `key: value` lines of a capture file (`#` lines are comments).
    pub fn parse(text: &str) -> ScramCapture {
        let field = |key: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
                .unwrap_or_else(|| panic!("capture has no {key:?} line"))
                .to_string()
        };
        ScramCapture {
            username: field("username"),
            password: field("password"),
            client_first: field("client-first"),
            server_first: field("server-first"),
            client_final: field("client-final"),
            server_final: field("server-final"),
        }
    }

    /// The `key: value` lines [`ScramCapture::parse`] reads.
    pub fn to_lines(&self) -> String {
        format!(
            "username: {}\npassword: {}\nclient-first: {}\nserver-first: {}\nclient-final: {}\nserver-final: {}\n",
            self.username,
            self.password,
            self.client_first,
            self.server_first,
            self.client_final,
            self.server_final
        )
    }

    /// The server's iteration count (`i=`).
    pub fn iterations(&self) -> u32 {
        attribute(&self.server_first, 'i')
            .parse()
            .expect("a numeric i= in server-first")
    }

    /// Checks the exchange against the password: the framing of each message, the nonces,
    /// and the client proof and server signature recomputed from scratch. Panics on the
    /// first difference.
    pub fn verify(&self) {
        let bare = self
            .client_first
            .strip_prefix("n,,")
            .expect("client-first starts with the GS2 header n,, (no channel binding, no authzid)");
        assert_eq!(attribute(bare, 'n'), self.username, "n= of client-first");
        let client_nonce = attribute(bare, 'r');
        let nonce = attribute(&self.server_first, 'r');
        assert!(
            nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
            "the server nonce extends the client's"
        );
        let salt = STANDARD
            .decode(attribute(&self.server_first, 's'))
            .expect("base64 salt");
        let (without_proof, proof) = self
            .client_final
            .rsplit_once(",p=")
            .expect("client-final ends with p=");
        assert_eq!(attribute(without_proof, 'c'), "biws", "c= is base64 of n,,");
        assert_eq!(attribute(without_proof, 'r'), nonce, "r= of client-final");
        let auth_message = format!("{bare},{},{without_proof}", self.server_first);

        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(
            self.password.as_bytes(),
            &salt,
            self.iterations(),
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha512::digest(&client_key);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let expected_proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(proof, STANDARD.encode(expected_proof), "client proof");
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        assert_eq!(
            self.server_final,
            format!("v={}", STANDARD.encode(server_signature)),
            "server signature"
        );
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The value of attribute `name` (`name=value`) of a comma-separated SCRAM message.
fn attribute(message: &str, name: char) -> &str {
    message
        .split(',')
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {message:?}"))
}
