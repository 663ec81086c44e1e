//! Reading the positional layout of earlier versions of the event types. A self-describing form
//! (JSON, Avro against its writer schema) finds a field by name and fills one it lacks from its
//! default; a positional one (postcard, in the state changelog) has no names, so a field added
//! or retyped changes where everything after it lies. The changelog reader says which layout a
//! value was written in ([`read_in`]); the fields that changed read that layout here.
//!
//! Layout 1 is the event model up to schema version 1 of `AgentAction`; layout 2 added
//! `tool_call` and made `confidence` optional; layout 3 added the approvals an open action
//! collected and the number it needs (the state's `OpenAction`).

use serde::{Deserialize, Deserializer};
use std::cell::Cell;

/// The layout this version writes.
pub const CURRENT: u8 = 3;

thread_local! {
    static LAYOUT: Cell<u8> = const { Cell::new(CURRENT) };
}

/// Runs `read` with positional values read in `layout`; the current layout again after it.
pub fn read_in<R>(layout: u8, read: impl FnOnce() -> R) -> R {
    let before = LAYOUT.with(|l| l.replace(layout));
    let r = read();
    LAYOUT.with(|l| l.set(before));
    r
}

fn layout() -> u8 {
    LAYOUT.with(Cell::get)
}

/// `confidence`: a number in layout 1, optional since.
pub(super) fn confidence<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    if layout() == 1 {
        return f64::deserialize(d).map(Some);
    }
    Option::<f64>::deserialize(d)
}

/// A field added in layout 2: absent (its default) from a value of layout 1.
pub(super) fn added_in_2<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    if layout() < 2 {
        return Ok(T::default());
    }
    T::deserialize(d)
}

/// A field added in layout 3: absent (its default) from a value of an earlier layout.
pub(crate) fn added_in_3<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    if layout() < 3 {
        return Ok(T::default());
    }
    T::deserialize(d)
}
