//! Integer fields read from any form that holds a whole number: JSON Schema (and so the
//! gateway's OpenAPI document) counts `12203.0` as the integer 12203, and so does handoff; a
//! fraction or a value out of range is refused, naming it. Avro and the changelog hand integers
//! over as integers, unchanged.

use serde::de::{Error, Visitor};
use serde::Deserializer;
use std::fmt;

struct Whole(&'static str);

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number ({})", self.0)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range ({})", self.0)))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
        // 2^63 is the first f64 beyond i64; every f64 below it with no fraction is an i64.
        if v.fract() == 0.0 && v.abs() < 9_223_372_036_854_775_808.0 {
            return Ok(v as i64);
        }
        let why = if v.fract() == 0.0 {
            "is out of range"
        } else {
            "is not a whole number"
        };
        Err(E::custom(format!("{v} {why} ({})", self.0)))
    }
}

/// An `i64` field.
pub(super) fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_i64(Whole("a 64-bit integer"))
}

/// An `i32` field.
pub(super) fn int32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = d.deserialize_i32(Whole("a 32-bit integer"))?;
    i32::try_from(v)
        .map_err(|_| D::Error::custom(format!("{v} is out of range (a 32-bit integer)")))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::int64")]
        a: i64,
        #[serde(deserialize_with = "super::int32")]
        b: i32,
    }

    #[test]
    fn whole_numbers_in_any_form_are_read_and_others_refused() {
        let t: T = serde_json::from_str(r#"{"a": 12203.0, "b": 7}"#).unwrap();
        assert_eq!((t.a, t.b), (12203, 7));
        for bad in [
            r#"{"a": 1.5, "b": 1}"#,
            r#"{"a": 1, "b": 3000000000}"#,
            r#"{"a": 1e300, "b": 1}"#,
            r#"{"a": 18446744073709551615, "b": 1}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }
}
