//! Parsing each kind of setting value, the same way for every source.
//!
//! A value arrives as text (an environment variable) or as JSON (the npm
//! package's configuration, a Worker var written as a JSON value). A JSON string
//! means what the same text means in the environment. Problems read after the
//! setting's name and never quote the value.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::crypto::{KeyMaterial, KeySpec};
use crate::engine::keys::Alg;

/// A setting's value as a source holds it. `Debug` shows its kind and size, never the value.
#[derive(Clone, PartialEq)]
pub enum Raw {
    Text(String),
    Json(Value),
    /// An object bound by the platform (a Worker's KV or Durable Object namespace).
    Binding,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Text(t) => write!(f, "Text(<{} bytes>)", t.len()),
            Raw::Json(v) => write!(f, "Json(<{} bytes>)", v.to_string().len()),
            Raw::Binding => f.write_str("Binding"),
        }
    }
}

impl Raw {
    /// Empty text and JSON `null` are "not set".
    pub fn is_unset(&self) -> bool {
        match self {
            Raw::Text(s) | Raw::Json(Value::String(s)) => s.trim().is_empty(),
            Raw::Json(Value::Null) => true,
            _ => false,
        }
    }

    /// The value as text, if it is text (a JSON string included).
    fn as_text(&self) -> Option<&str> {
        match self {
            Raw::Text(s) | Raw::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// What went wrong, to be read after the setting's name.
pub type Problem = String;

/// Longest duration accepted, in milliseconds (about 317 years): far past any lifetime.
const MAX_MS: u64 = 10_000_000_000_000;

const NOT_DURATION: &str = "is not a duration: give seconds (900) or a number with a unit (500ms, 10s, 15m, 12h, 14d)";

/// A duration: a number is seconds (fractions allowed); text may carry a unit:
/// `ms`, `s`, `m`, `h` or `d` (`500ms`, `10s`, `15m`, `12h`, `14d`).
pub fn duration(raw: &Raw) -> Result<Duration, Problem> {
    let ms = match raw {
        Raw::Json(Value::Number(n)) => {
            n.as_f64().map(|s| s * 1000.0).filter(|ms| (0.0..=MAX_MS as f64).contains(ms)).map(|ms| ms.round() as u64)
        }
        _ => {
            let text = raw.as_text().ok_or(NOT_DURATION)?.trim();
            let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let unit_ms = match unit {
                "" | "s" => 1000,
                "ms" => 1,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(NOT_DURATION.into()),
            };
            decimal_times(number, unit_ms)
        }
    };
    match ms {
        Some(ms) if ms <= MAX_MS => Ok(Duration::from_millis(ms)),
        Some(_) => Err("is too long a duration".into()),
        None => Err(NOT_DURATION.into()),
    }
}

/// `number` (digits, perhaps with a fraction: `1.5`) times `unit`, rounded; in
/// whole-number arithmetic, which keeps float parsing out of the wasm module.
fn decimal_times(number: &str, unit: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') || whole.len() > 19 {
        return None;
    }
    let fraction = &fraction[..fraction.len().min(9)];
    let scale = 10u64.pow(fraction.len() as u32);
    let part: u64 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    whole.parse::<u64>().ok()?.checked_mul(unit)?.checked_add((part * unit + scale / 2) / scale)
}

/// A duration, or `off`.
pub fn duration_or_off(raw: &Raw) -> Result<Option<Duration>, Problem> {
    if raw.as_text().is_some_and(|t| t.trim() == "off") {
        return Ok(None);
    }
    match duration(raw) {
        Ok(d) if d.is_zero() => Err("must be longer than zero; to turn it off, set off".into()),
        Ok(d) => Ok(Some(d)),
        Err(_) => Err("is not a duration (900, 500ms, 10s, 15m, 12h, 14d) or off".into()),
    }
}

/// A whole number from 0 to 4294967295.
pub fn count(raw: &Raw) -> Result<u32, Problem> {
    const NOT_COUNT: &str = "is not a whole number from 0 to 4294967295";
    let n = match raw {
        Raw::Json(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
        _ => raw.as_text().map(str::trim).filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).and_then(|t| t.parse().ok()),
    };
    n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| NOT_COUNT.into())
}

/// Text, trimmed.
pub fn text(raw: &Raw) -> Result<String, Problem> {
    raw.as_text().map(|t| t.trim().to_owned()).ok_or_else(|| "is not text".into())
}

/// Text as given, surrounding spaces included: secrets are used byte for byte.
pub fn secret(raw: &Raw) -> Result<Vec<u8>, Problem> {
    raw.as_text().map(|t| t.as_bytes().to_vec()).ok_or_else(|| "is not text".into())
}

/// A list: comma-separated text, or a JSON array of strings. Blank items are dropped.
pub fn list(raw: &Raw) -> Result<Vec<String>, Problem> {
    let items: Vec<String> = match raw {
        Raw::Json(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().map(str::to_owned).ok_or("is not a list of strings")).collect::<Result<_, _>>()?
        }
        _ => {
            raw.as_text().ok_or("is not a list: give comma-separated text or an array of strings")?.split(',').map(str::to_owned).collect()
        }
    };
    Ok(items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

/// One of `choices`, by its exact name.
pub fn choice<T: Copy>(raw: &Raw, choices: &[(&str, T)]) -> Result<T, Problem> {
    let text = raw.as_text().map(str::trim);
    choices.iter().find(|(name, _)| Some(*name) == text).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        format!("must be one of {}", names.join(", "))
    })
}

/// An algorithm's name: HS256, HS384, HS512, ES256, EdDSA or RS256.
pub fn alg(raw: &Raw) -> Result<Alg, Problem> {
    let choices = Alg::ALL.map(|a| (a.as_str(), a));
    choice(raw, &choices)
}

/// A host and port to listen on, e.g. `127.0.0.1:8080`.
pub fn listen_addr(raw: &Raw) -> Result<SocketAddr, Problem> {
    text(raw)?.parse().map_err(|_| "is not an IP address and port, e.g. 127.0.0.1:8080 or [::1]:8080".into())
}

/// A key for an asymmetric algorithm (or an `oct` JWK): a PEM, or a JWK as a JSON object or its text.
pub fn key_material(raw: &Raw) -> Result<KeyMaterial, Problem> {
    const NOT_KEY: &str = "is neither a PEM (-----BEGIN PRIVATE KEY-----) nor a JWK (a JSON object)";
    match raw {
        Raw::Json(Value::Object(jwk)) => Ok(KeyMaterial::Jwk(Value::Object(jwk.clone()))),
        _ => {
            let text = raw.as_text().ok_or(NOT_KEY)?.trim();
            if text.starts_with("-----BEGIN") {
                if !text.contains("-----END") {
                    return Err("is a PEM without its -----END line".into());
                }
                Ok(KeyMaterial::Pem(text.to_owned()))
            } else if text.starts_with('{') {
                match serde_json::from_str::<Value>(text) {
                    Ok(jwk @ Value::Object(_)) => Ok(KeyMaterial::Jwk(jwk)),
                    _ => Err("is not a valid JWK: its JSON does not parse".into()),
                }
            } else {
                Err(NOT_KEY.into())
            }
        }
    }
}

const KEY_SHAPE: &str = r#"{"kid", "alg", and one of "secret", "pem", "jwk"}"#;

/// Verify-only keys: a JSON array (or its text) of `{"kid", "alg", "secret" | "pem" | "jwk"}`.
/// `alg` may be left out for a secret (HS256) or a JWK (what it says).
pub fn key_list(raw: &Raw) -> Result<Vec<KeySpec>, Problem> {
    let parsed;
    let items = match raw {
        Raw::Json(Value::Array(items)) => items,
        _ => {
            let text = raw.as_text().ok_or_else(|| format!("is not a JSON array of {KEY_SHAPE}"))?;
            parsed = serde_json::from_str::<Value>(text).ok();
            match &parsed {
                Some(Value::Array(items)) => items,
                _ => return Err(format!("is not a JSON array of {KEY_SHAPE}")),
            }
        }
    };
    (1..).zip(items).map(|(i, item)| key_spec(item).map_err(|p| format!("key #{i} {p}"))).collect()
}

fn key_spec(item: &Value) -> Result<KeySpec, Problem> {
    let Value::Object(key) = item else { return Err(format!("is not an object {KEY_SHAPE}")) };
    if key.keys().any(|f| !matches!(f.as_str(), "kid" | "alg" | "secret" | "pem" | "jwk")) {
        return Err(format!("has a field that is not one of {KEY_SHAPE}"));
    }
    let field = |name: &str| -> Result<Option<&str>, Problem> {
        match key.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("has a \"{name}\" that is not a string")),
        }
    };
    let kid = field("kid")?.ok_or("needs a \"kid\"")?.to_owned();
    let material = match (field("secret")?, field("pem")?, jwk_field(key)?) {
        (Some(secret), None, None) => KeyMaterial::Secret(secret.as_bytes().to_vec()),
        (None, Some(pem), None) => key_material(&Raw::Text(pem.to_owned())).map_err(|p| format!("has a \"pem\" that {p}"))?,
        (None, None, Some(jwk)) => KeyMaterial::Jwk(jwk),
        _ => return Err("needs exactly one of \"secret\", \"pem\" or \"jwk\"".into()),
    };
    let implied = match &material {
        KeyMaterial::Secret(_) => Some(Alg::HS256),
        other => other.implied_alg(),
    };
    let alg = match field("alg")? {
        Some(name) => alg(&Raw::Text(name.to_owned())).map_err(|p| format!("has an \"alg\" that {p}"))?,
        None => implied.ok_or("needs an \"alg\" (HS256, HS384, HS512, ES256, EdDSA or RS256)")?,
    };
    Ok(KeySpec { kid, alg, material })
}

fn jwk_field(key: &Map<String, Value>) -> Result<Option<Value>, Problem> {
    match key.get("jwk") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(jwk)) => Ok(Some(Value::Object(jwk.clone()))),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(jwk @ Value::Object(_)) => Ok(Some(jwk)),
            _ => Err("has a \"jwk\" whose JSON does not parse".into()),
        },
        Some(_) => Err("has a \"jwk\" that is not an object".into()),
    }
}
