//! A reading cursor and a writing cursor over byte slices. Every access goes
//! through `get`/`get_mut`, so malformed input can make a read fail but
//! never panic, and a small output buffer makes a write fail, not panic.

use super::Gb26875Error;

/// Reads little-endian fields from the front of a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// What is left unread.
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(b)
    }

    pub(crate) fn u16_le(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_le_bytes)
    }

    pub(crate) fn u32_le(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }
}

/// Appends to a caller-provided buffer.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub(crate) const fn len(&self) -> usize {
        self.pos
    }

    /// The bytes written so far.
    pub(crate) fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Gb26875Error> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(Gb26875Error::BufferFull)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Gb26875Error::BufferFull)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, b: u8) -> Result<(), Gb26875Error> {
        self.put(&[b])
    }

    pub(crate) fn u16_le(&mut self, v: u16) -> Result<(), Gb26875Error> {
        self.put(&v.to_le_bytes())
    }

    pub(crate) fn u32_le(&mut self, v: u32) -> Result<(), Gb26875Error> {
        self.put(&v.to_le_bytes())
    }

    /// Overwrites one byte already written (a length or count patched in
    /// once known).
    pub(crate) fn patch(&mut self, at: usize, b: u8) -> Result<(), Gb26875Error> {
        if at >= self.pos {
            return Err(Gb26875Error::BufferFull);
        }
        *self.buf.get_mut(at).ok_or(Gb26875Error::BufferFull)? = b;
        Ok(())
    }
}

/// The arithmetic sum of `bytes`, carries above 8 bits dropped: the
/// standard's checksum.
pub(crate) fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16_le(), Some(0x0201));
        assert_eq!(r.u16_le(), None);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.u8(), None);
        assert_eq!(r.take(1), None);
        assert_eq!(r.take(0), Some(&[][..]));
    }

    #[test]
    fn writer_refuses_to_overflow() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.u16_le(0x0201).unwrap();
        assert_eq!(w.u16_le(5), Err(Gb26875Error::BufferFull));
        w.u8(3).unwrap();
        assert_eq!(w.u8(4), Err(Gb26875Error::BufferFull));
        assert_eq!(w.written(), &[1, 2, 3]);
        assert_eq!(w.patch(3, 9), Err(Gb26875Error::BufferFull));
    }

    #[test]
    fn sum_drops_carries() {
        assert_eq!(sum(&[0xFF, 0x02]), 0x01);
        assert_eq!(sum(&[]), 0);
    }
}
