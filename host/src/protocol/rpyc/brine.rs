//! Brine, RPyC's serializer for immutable values: one tag byte, then data,
//! big-endian. Every tag of rpyc 6 is read and written the way `brine.py`
//! does, byte for byte.

use crate::value::{MAX_DEPTH, Value};

/// The tags of `rpyc/core/brine.py`.
mod tag {
    pub(super) const NONE: u8 = 0x00;
    pub(super) const EMPTY_STR: u8 = 0x01;
    pub(super) const EMPTY_TUPLE: u8 = 0x02;
    pub(super) const TRUE: u8 = 0x03;
    pub(super) const FALSE: u8 = 0x04;
    pub(super) const NOT_IMPLEMENTED: u8 = 0x05;
    pub(super) const ELLIPSIS: u8 = 0x06;
    pub(super) const UNICODE: u8 = 0x08;
    pub(super) const STR1: u8 = 0x0a;
    pub(super) const STR4: u8 = 0x0d;
    pub(super) const STR_L1: u8 = 0x0e;
    pub(super) const STR_L4: u8 = 0x0f;
    pub(super) const TUP1: u8 = 0x10;
    pub(super) const TUP4: u8 = 0x13;
    pub(super) const TUP_L1: u8 = 0x14;
    pub(super) const TUP_L4: u8 = 0x15;
    pub(super) const INT_L1: u8 = 0x16;
    pub(super) const INT_L4: u8 = 0x17;
    pub(super) const FLOAT: u8 = 0x18;
    pub(super) const SLICE: u8 = 0x19;
    pub(super) const FSET: u8 = 0x1a;
    pub(super) const COMPLEX: u8 = 0x1b;
    /// Tags 0x20..=0xef are the ints -48..=159 (`byte - 0x50`).
    pub(super) const IMM_FIRST: u8 = 0x20;
    pub(super) const IMM_LAST: u8 = 0xef;
    pub(super) const IMM_ZERO: i128 = 0x50;
}

/// Why bytes are not a brine value, or a value cannot be brined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrineError {
    /// The data ends in the middle of a value.
    #[error("brine data ends in the middle of a value")]
    Truncated,
    /// A tag brine does not define.
    #[error("unknown brine tag {0:#04x}")]
    UnknownTag(u8),
    /// Containers nested past [`MAX_DEPTH`].
    #[error("brine value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Well-formed tags carrying an impossible value.
    #[error("invalid brine: {0}")]
    Invalid(String),
    /// Bytes left over after the value.
    #[error("{0} bytes after the brine value")]
    Trailing(usize),
    /// An object reference where only values can go (a frozenset of netrefs).
    #[error("a {0} netref cannot be sent inside a value")]
    ByReference(String),
}

/// Decodes `bytes`, which must hold exactly one value.
pub fn decode(bytes: &[u8]) -> Result<Value, BrineError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    match bytes.len() - reader.at {
        0 => Ok(value),
        left => Err(BrineError::Trailing(left)),
    }
}

/// Appends the brine encoding of `value` to `out`. An object reference
/// cannot be brined (RPyC boxes it instead): on error, `out` may hold part
/// of the value.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), BrineError> {
    match value {
        Value::None => out.push(tag::NONE),
        Value::Bool(true) => out.push(tag::TRUE),
        Value::Bool(false) => out.push(tag::FALSE),
        Value::NotImplemented => out.push(tag::NOT_IMPLEMENTED),
        Value::Ellipsis => out.push(tag::ELLIPSIS),
        Value::Int(i) => match i
            .checked_add(tag::IMM_ZERO)
            .and_then(|b| u8::try_from(b).ok())
        {
            Some(byte) if (tag::IMM_FIRST..=tag::IMM_LAST).contains(&byte) => out.push(byte),
            _ => int_text(&i.to_string(), out),
        },
        Value::BigInt(text) => int_text(text, out),
        Value::Float(x) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Complex(re, im) => {
            out.push(tag::COMPLEX);
            out.extend_from_slice(&re.to_be_bytes());
            out.extend_from_slice(&im.to_be_bytes());
        }
        Value::Str(text) => {
            out.push(tag::UNICODE);
            bytes(text.as_bytes(), out);
        }
        Value::Bytes(data) => bytes(data, out),
        Value::Tuple(items) => tuple(items, out)?,
        Value::FrozenSet(items) => {
            out.push(tag::FSET);
            tuple(items, out)?;
        }
        Value::Slice(parts) => {
            out.push(tag::SLICE);
            tuple(&parts[..], out)?;
        }
        Value::Object(object) => return Err(BrineError::ByReference(object.class.clone())),
        Value::Local(local) => return Err(BrineError::ByReference(local.class().to_owned())),
        Value::Remote(object) => return Err(BrineError::ByReference(object.class().to_owned())),
    }
    Ok(())
}

/// A length-prefixed item: the short tag for lengths 1..=4, else a
/// one-byte or four-byte length. `empty` is the tag of length 0.
fn sized(len: usize, empty: u8, fixed_first: u8, l1: u8, l4: u8, out: &mut Vec<u8>) {
    match len {
        0 => out.push(empty),
        1..=4 => out.push(fixed_first + (len as u8 - 1)),
        5..=255 => out.extend_from_slice(&[l1, len as u8]),
        _ => {
            out.push(l4);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

fn bytes(data: &[u8], out: &mut Vec<u8>) {
    sized(
        data.len(),
        tag::EMPTY_STR,
        tag::STR1,
        tag::STR_L1,
        tag::STR_L4,
        out,
    );
    out.extend_from_slice(data);
}

/// Writes the header of a tuple of `len` items; the items follow.
pub fn tuple_header(len: usize, out: &mut Vec<u8>) {
    sized(
        len,
        tag::EMPTY_TUPLE,
        tag::TUP1,
        tag::TUP_L1,
        tag::TUP_L4,
        out,
    );
}

fn tuple(items: &[Value], out: &mut Vec<u8>) -> Result<(), BrineError> {
    sized(
        items.len(),
        tag::EMPTY_TUPLE,
        tag::TUP1,
        tag::TUP_L1,
        tag::TUP_L4,
        out,
    );
    items.iter().try_for_each(|item| encode(item, out))
}

fn int_text(text: &str, out: &mut Vec<u8>) {
    if text.len() < 256 {
        out.extend_from_slice(&[tag::INT_L1, text.len() as u8]);
    } else {
        out.push(tag::INT_L4);
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BrineError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(BrineError::Truncated)?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, BrineError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, BrineError> {
        let raw = self.take(4)?;
        Ok(u32::from_be_bytes(raw.try_into().expect("four bytes")) as usize)
    }

    fn f64(&mut self) -> Result<f64, BrineError> {
        let raw = self.take(8)?;
        Ok(f64::from_be_bytes(raw.try_into().expect("eight bytes")))
    }

    fn value(&mut self, depth: usize) -> Result<Value, BrineError> {
        if depth > MAX_DEPTH {
            return Err(BrineError::TooDeep);
        }
        let tag = self.byte()?;
        Ok(match tag {
            tag::NONE => Value::None,
            tag::TRUE => Value::Bool(true),
            tag::FALSE => Value::Bool(false),
            tag::NOT_IMPLEMENTED => Value::NotImplemented,
            tag::ELLIPSIS => Value::Ellipsis,
            tag::IMM_FIRST..=tag::IMM_LAST => Value::Int(i128::from(tag) - tag::IMM_ZERO),
            tag::INT_L1 | tag::INT_L4 => {
                let len = if tag == tag::INT_L1 {
                    usize::from(self.byte()?)
                } else {
                    self.u32()?
                };
                int(self.take(len)?)?
            }
            tag::FLOAT => Value::Float(self.f64()?),
            tag::COMPLEX => Value::Complex(self.f64()?, self.f64()?),
            tag::EMPTY_STR | tag::STR1..=tag::STR4 | tag::STR_L1 | tag::STR_L4 => {
                Value::Bytes(self.bytes_after(tag)?.to_vec())
            }
            tag::UNICODE => {
                let tag = self.byte()?;
                let raw = self.bytes_after(tag)?;
                let text = std::str::from_utf8(raw)
                    .map_err(|e| BrineError::Invalid(format!("a str that is not UTF-8: {e}")))?;
                Value::Str(text.to_owned())
            }
            tag::EMPTY_TUPLE | tag::TUP1..=tag::TUP4 | tag::TUP_L1 | tag::TUP_L4 => {
                Value::Tuple(self.items_after(tag, depth)?)
            }
            tag::FSET => Value::FrozenSet(self.tuple(depth, "a frozenset")?),
            tag::SLICE => match <[Value; 3]>::try_from(self.tuple(depth, "a slice")?) {
                Ok(parts) => Value::Slice(Box::new(parts)),
                Err(parts) => {
                    return Err(BrineError::Invalid(format!(
                        "a slice of {} parts",
                        parts.len()
                    )));
                }
            },
            unknown => return Err(BrineError::UnknownTag(unknown)),
        })
    }

    /// The bytes of a byte-string item whose tag was `tag`.
    fn bytes_after(&mut self, tag: u8) -> Result<&'a [u8], BrineError> {
        let len = match tag {
            tag::EMPTY_STR => 0,
            tag::STR1..=tag::STR4 => usize::from(tag - tag::STR1) + 1,
            tag::STR_L1 => usize::from(self.byte()?),
            tag::STR_L4 => self.u32()?,
            other => {
                return Err(BrineError::Invalid(format!(
                    "tag {other:#04x} where bytes were expected"
                )));
            }
        };
        self.take(len)
    }

    /// The items of a tuple whose tag was `tag`.
    fn items_after(&mut self, tag: u8, depth: usize) -> Result<Vec<Value>, BrineError> {
        let count = match tag {
            tag::EMPTY_TUPLE => 0,
            tag::TUP1..=tag::TUP4 => usize::from(tag - tag::TUP1) + 1,
            tag::TUP_L1 => usize::from(self.byte()?),
            tag::TUP_L4 => self.u32()?,
            other => {
                return Err(BrineError::Invalid(format!(
                    "tag {other:#04x} where a tuple was expected"
                )));
            }
        };
        // Every item takes at least a byte: a hostile count cannot reserve more than the input.
        let mut items = Vec::with_capacity(count.min(self.bytes.len() - self.at));
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    /// A tuple that must follow a frozenset or slice tag.
    fn tuple(&mut self, depth: usize, what: &str) -> Result<Vec<Value>, BrineError> {
        let tag = self.byte()?;
        self.items_after(tag, depth)
            .map_err(|_| BrineError::Invalid(format!("{what} whose members are not a tuple")))
    }
}

/// An int from its decimal text, as Python's `int(bytes)` reads what
/// `str(int)` wrote: an optional sign, then digits.
fn int(text: &[u8]) -> Result<Value, BrineError> {
    let invalid = || BrineError::Invalid(format!("int text {:?}", String::from_utf8_lossy(text)));
    let text = std::str::from_utf8(text).map_err(|_| invalid())?.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let canonical = if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    Ok(canonical
        .parse::<i128>()
        .map_or(Value::BigInt(canonical), Value::Int))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rpyc::vectors::{Vectors, hex};

    #[test]
    fn every_vector_of_the_real_rpyc_decodes_and_encodes_byte_for_byte() {
        let vectors = Vectors::load();
        assert!(vectors.brine.len() > 50);
        for (value, bytes) in &vectors.brine {
            assert_eq!(decode(bytes).as_ref(), Ok(value), "decoding {}", hex(bytes));
            let mut out = Vec::new();
            encode(value, &mut out).unwrap();
            assert_eq!(hex(&out), hex(bytes), "encoding {value}");
        }
    }

    #[test]
    fn reference_examples() {
        let cases: [(Value, &str); 6] = [
            (Value::Int(0), "50"),
            (Value::Int(-48), "20"),
            (Value::Int(160), "1603313630"),
            (Value::Str("hé".into()), "080c68c3a9"),
            (Value::Float(1.5), "183ff8000000000000"),
            (
                Value::Slice(Box::new([Value::Int(1), Value::Int(2), Value::None])),
                "1912515200",
            ),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            encode(&value, &mut out).unwrap();
            assert_eq!(hex(&out), expected);
        }
    }

    #[test]
    fn hostile_input_is_refused_without_allocating_or_recursing() {
        assert_eq!(decode(&[]), Err(BrineError::Truncated));
        for unknown in [0x07, 0x09, 0x1c, 0x1f, 0xf0, 0xff] {
            assert_eq!(decode(&[unknown]), Err(BrineError::UnknownTag(unknown)));
        }
        // A tuple claiming four billion items, or a string four billion bytes long.
        assert_eq!(
            decode(&[0x15, 0xff, 0xff, 0xff, 0xff, 0x00]),
            Err(BrineError::Truncated)
        );
        assert_eq!(
            decode(&[0x0f, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(BrineError::Truncated)
        );
        let deep = [vec![0x10; MAX_DEPTH + 1], vec![0x00]].concat();
        assert_eq!(decode(&deep), Err(BrineError::TooDeep));
        let shallow = [vec![0x10; MAX_DEPTH], vec![0x00]].concat();
        assert!(decode(&shallow).is_ok());
        assert_eq!(decode(&[0x00, 0x00]), Err(BrineError::Trailing(1)));
        assert!(matches!(
            decode(&[0x16, 0x02, b'1', b'x']),
            Err(BrineError::Invalid(_))
        ));
        assert!(
            matches!(decode(&[0x08, 0x0a, 0xff]), Err(BrineError::Invalid(_))),
            "bad UTF-8"
        );
        assert!(
            matches!(decode(&[0x08, 0x50]), Err(BrineError::Invalid(_))),
            "unicode of an int"
        );
        assert!(
            matches!(decode(&[0x1a, 0x50]), Err(BrineError::Invalid(_))),
            "frozenset of an int"
        );
        assert!(
            matches!(
                decode(&[0x19, 0x11, 0x50, 0x50]),
                Err(BrineError::Invalid(_))
            ),
            "slice of two"
        );
        assert_eq!(decode(&[0x16, 0x03, b'+', b'0', b'7']), Ok(Value::Int(7)));
    }
}
