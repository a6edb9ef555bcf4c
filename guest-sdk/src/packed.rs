//! The byte format of a dynamic [`Value`](crate::Value)'s `packed` field
//! (documented on the record in `wit/service.wit`): one item, a tag byte
//! and what the tag says follows it, little-endian.

/// The tag byte of each kind of item.
pub(crate) mod tag {
    pub(crate) const NONE: u8 = 0;
    pub(crate) const FALSE: u8 = 1;
    pub(crate) const TRUE: u8 = 2;
    pub(crate) const INT: u8 = 3;
    pub(crate) const BIG_INT: u8 = 4;
    pub(crate) const FLOAT: u8 = 5;
    pub(crate) const COMPLEX: u8 = 6;
    pub(crate) const STR: u8 = 7;
    pub(crate) const BYTES: u8 = 8;
    pub(crate) const TUPLE: u8 = 9;
    pub(crate) const FROZENSET: u8 = 10;
    pub(crate) const NETREF: u8 = 11;
    pub(crate) const OBJECT: u8 = 12;
}

/// Appends items to a packed value.
#[derive(Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// The packed bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn tag(&mut self, tag: u8) -> &mut Self {
        self.bytes.push(tag);
        self
    }

    /// `n` as a u32: a length, a count or an index.
    pub(crate) fn u32(&mut self, n: usize) -> &mut Self {
        let n = u32::try_from(n).expect("a packed length fits 32 bits");
        self.bytes.extend(n.to_le_bytes());
        self
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend(bytes);
        self
    }

    /// A length, then the bytes.
    pub(crate) fn sized(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(bytes.len()).raw(bytes)
    }
}

/// Reads the items of a packed value; `None` where the bytes run out or
/// do not hold what they should.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Bytes left.
    pub(crate) fn left(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(taken)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.array()?) as usize)
    }

    /// A length, then that many bytes.
    pub(crate) fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }

    /// A length, then that much UTF-8.
    pub(crate) fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.sized()?).ok()
    }
}
