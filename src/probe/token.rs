//! ServiceAccount tokens: decoding their claims locally (never sent anywhere) and
//! keeping them out of every report.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::report::TokenInfo;

/// How much of a token a report may show.
const PREFIX_CHARS: usize = 12;

/// The claims of a JWT, without checking its signature (the API server did that).
pub fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn prefix(token: &str) -> String {
    let shown: String = token.chars().take(PREFIX_CHARS).collect();
    format!("{shown}…")
}

pub fn info(token: &str) -> TokenInfo {
    let claims = claims(token).unwrap_or(serde_json::Value::Null);
    let time = |key: &str| claims[key].as_i64();
    let rfc3339 = |seconds: Option<i64>| {
        seconds
            .and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_string())
    };
    TokenInfo {
        prefix: prefix(token),
        issued_at: rfc3339(time("iat")),
        expires_at: rfc3339(time("exp")),
        lifetime_seconds: time("exp").zip(time("iat")).map(|(exp, iat)| exp - iat),
        claims,
    }
}

/// Replaces anything shaped like a JWT (three base64url parts, the first a JSON
/// header) with its prefix, so no output kubelab prints or writes carries a token.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(candidate.len());
        let word = &candidate[..end];
        if word.split('.').filter(|p| !p.is_empty()).count() >= 3 {
            out.push_str(&prefix(word));
            out.push_str("(redacted)");
        } else {
            out.push_str(word);
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// A token that is well formed but signed by no key the API server knows: the
/// `invalid` token choice, which must get 401.
pub fn invalid_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"kubelab-invalid"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        br#"{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:default:nobody","aud":["https://kubernetes.default.svc.cluster.local"],"exp":4102444800}"#,
    );
    let signature = URL_SAFE_NO_PAD.encode(b"not-a-signature");
    format!("{header}.{claims}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(claims.as_bytes()),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }

    #[test]
    fn claims_are_decoded_from_the_payload() {
        let token = token_with(r#"{"sub":"system:serviceaccount:default:default"}"#);
        assert_eq!(
            claims(&token).unwrap()["sub"],
            "system:serviceaccount:default:default"
        );
        assert!(claims("not-a-jwt").is_none());
    }

    #[test]
    fn redaction_removes_every_token_and_keeps_the_rest() {
        let token = token_with(r#"{"sub":"x"}"#);
        let text = format!("Authorization: Bearer {token}\n{{\"token\":\"{token}\"}}");
        let redacted = redact(&text);
        assert!(!redacted.contains(&token), "{redacted}");
        assert_eq!(redacted.matches("(redacted)").count(), 2, "{redacted}");
        assert!(
            redacted.starts_with("Authorization: Bearer eyJ"),
            "{redacted}"
        );
    }

    #[test]
    fn redaction_leaves_ordinary_text_alone() {
        for text in [
            "eyJ alone",
            "a.b.c",
            "pods is forbidden: User \"system:anonymous\"",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn the_invalid_token_is_a_jwt_that_decodes() {
        let token = invalid_token();
        assert_eq!(
            claims(&token).unwrap()["sub"],
            "system:serviceaccount:default:nobody"
        );
        assert!(redact(&token).ends_with("(redacted)"));
    }
}
