//! Signing and checking access tokens: JWT with HS256 only (`alg: none` and every
//! other algorithm are refused), no leeway on `exp`.

use super::claims::Claims;
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a secret is too weak to sign with: too short, or one byte repeated.
pub fn weakness(secret: &[u8]) -> Option<String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!("it is {} bytes long; at least {MIN_SECRET_BYTES} are needed", secret.len()));
    }
    if secret.iter().all(|b| *b == secret[0]) {
        return Some("it is one byte repeated".into());
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature is wrong")]
    BadSignature,
    #[error("the token is not signed with HS256")]
    BadAlgorithm,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("this kind of token is not accepted here: {0}")]
    WrongKind(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Result<Keys, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let key_err = |e: jsonwebtoken::errors::Error| TokenError::Sign(e.to_string());
        Ok(Keys {
            encoding: EncodingKey::from_secret(secret).map_err(key_err)?,
            decoding: DecodingKey::from_secret(secret).map_err(key_err)?,
            validation,
        })
    }

    pub fn mint(&self, claims: &Claims) -> Result<String, TokenError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(|e| TokenError::Sign(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::BadAlgorithm,
            _ => TokenError::Malformed(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "a".into(),
            exp,
            iat: None,
            nbf: None,
            typ: None,
            sub_topics: vec!["*".into()],
            pub_topics: vec![],
            rights: Default::default(),
        }
    }

    #[test]
    fn nbf_is_honoured_and_weak_secrets_are_named() {
        let keys = Keys::new(&[7u8, 8u8].repeat(16)).unwrap();
        let later = Claims { nbf: Some(now() + 60), ..claims(now() + 120) };
        assert_eq!(keys.verify(&keys.mint(&later).unwrap()), Err(TokenError::NotYetValid));
        let now_ok = Claims { nbf: Some(now() - 1), ..claims(now() + 120) };
        assert!(keys.verify(&keys.mint(&now_ok).unwrap()).is_ok());
        assert!(weakness(b"short").unwrap().contains("5 bytes"));
        assert!(weakness(&[b'a'; 64]).unwrap().contains("repeated"));
        assert_eq!(weakness(b"0123456789abcdef0123456789abcdef"), None);
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_minted_token_verifies_and_others_do_not() {
        let keys = Keys::new(&[7u8; 32]).unwrap();
        let token = keys.mint(&claims(now() + 60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().sub, "a");
        assert_eq!(Keys::new(&[8u8; 32]).unwrap().verify(&token), Err(TokenError::BadSignature));
        assert_eq!(keys.verify(&keys.mint(&claims(now() - 1)).unwrap()), Err(TokenError::Expired));
        assert!(matches!(keys.verify("not.a.token"), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = Keys::new(&[7u8; 32]).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(serde_json::to_string(&claims(now() + 60)).unwrap());
        let forged = format!("{header}.{body}.");
        assert!(matches!(keys.verify(&forged), Err(TokenError::BadAlgorithm | TokenError::Malformed(_))));
        let hs512 = b64.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{hs512}.{body}.c2ln")).is_err());
    }
}
