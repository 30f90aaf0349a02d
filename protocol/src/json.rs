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

/// Runs `parse` over `payload` after the size and nesting checks, and turns
/// any failure into a [`DecodeError`] naming the field.
pub(crate) fn decode<'a, T>(
    payload: &'a [u8],
    max_depth: usize,
    parse: impl FnOnce(&Ctx, &mut Deserializer<'a, '_>) -> Result<T, JsonError>,
) -> Result<T, DecodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::new(Field::Payload, Problem::TooLarge));
    }
    if !depth_within(payload, max_depth) {
        return Err(DecodeError::new(Field::Payload, Problem::Malformed));
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

/// Whether arrays and objects nest at most `max` deep. Checked before
/// parsing so that ignoring an unknown field can never recurse deeply.
fn depth_within(payload: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in payload {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert!(depth_within(br#"{"a":"[[[[[[["}"#, 1));
        assert!(depth_within(br#"{"a":"\"[[[["}"#, 1));
        assert!(!depth_within(br#"{"a":[[1]]}"#, 2));
        assert!(depth_within(br#"{"a":[[1]]}"#, 3));
    }
}
