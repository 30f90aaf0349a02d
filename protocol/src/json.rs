//! The strict JSON front end shared by the frame and event decoders.
//!
//! `serde-json-core` parses without allocating but reports errors without a
//! field name. The visitors here record which field they are in (a [`Ctx`])
//! so that a failure deep in the JSON layer still comes back as "`seq`: wrong
//! type".

use core::cell::Cell;

use serde::de;
use serde_json_core::de::{Deserializer, Error as JsonError};

use crate::{DecodeError, Field, MAX_PAYLOAD, Problem};

/// Where the decoder is, and what a visitor found wrong.
pub(crate) struct Ctx {
    at: Cell<Field>,
    problem: Cell<Option<Problem>>,
}

impl Ctx {
    /// Notes the field about to be parsed.
    pub(crate) fn at(&self, field: Field) {
        self.at.set(field);
    }

    /// Records a semantic problem found by a visitor and returns the error
    /// that unwinds the parse.
    pub(crate) fn fail<E: de::Error>(&self, field: Field, problem: Problem) -> E {
        self.at.set(field);
        self.problem.set(Some(problem));
        E::custom("rejected")
    }
}

/// Stores `v` in `slot`; returns `true` if the slot was already filled
/// (a duplicate key).
pub(crate) fn once<T>(slot: &mut Option<T>, v: T) -> bool {
    let dup = slot.is_some();
    *slot = Some(v);
    dup
}

/// Runs `parse` over `payload` after the size check, and turns any failure
/// into a [`DecodeError`] naming the field.
pub(crate) fn decode<'a, T>(
    payload: &'a [u8],
    parse: impl FnOnce(&Ctx, &mut Deserializer<'a, '_>) -> Result<T, JsonError>,
) -> Result<T, DecodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::new(Field::Payload, Problem::TooLarge));
    }
    let ctx = Ctx {
        at: Cell::new(Field::Payload),
        problem: Cell::new(None),
    };
    let mut de = Deserializer::new(payload, None);
    let result = parse(&ctx, &mut de).and_then(|v| de.end().map(|_| v));
    result.map_err(|e| {
        let field = ctx.at.get();
        if let Some(problem) = ctx.problem.get() {
            return DecodeError::new(field, problem);
        }
        let problem = match e {
            JsonError::InvalidType
            | JsonError::InvalidNumber
            | JsonError::ExpectedSomeIdent
            | JsonError::ExpectedSomeValue
            | JsonError::CustomError
            | JsonError::AnyIsUnsupported
            | JsonError::BytesIsUnsupported
                if field != Field::Payload =>
            {
                Problem::WrongType
            }
            _ => Problem::Malformed,
        };
        DecodeError::new(field, problem)
    })
}

/// Skips the value of an unknown key, nesting at most `depth` arrays or
/// objects deep. serde's `IgnoredAny` would recurse without bound, and a
/// 1 KiB payload of `[[[[…` must not cost a device its stack.
#[derive(Clone, Copy)]
pub(crate) struct Skip<'c> {
    pub(crate) ctx: &'c Ctx,
    pub(crate) depth: u8,
}

impl Skip<'_> {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Self { depth, ..self }),
            None => Err(self.ctx.fail(Field::Payload, Problem::Malformed)),
        }
    }
}

impl<'de> de::DeserializeSeed<'de> for Skip<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_ignored_any(self)
    }
}

impl<'de> de::Visitor<'de> for Skip<'_> {
    type Value = ();

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while map.next_key::<&'de str>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}
