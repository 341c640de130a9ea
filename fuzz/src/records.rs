//! A plain record format for targets whose inputs are mostly raw bytes, so
//! seeds can be written from real traffic: `[tag][len][len bytes]...`, the
//! last record cut short where the input ends.

/// Iterates over `(tag, payload)` records.
#[derive(Debug, Clone)]
pub(crate) struct Records<'a>(&'a [u8]);

impl<'a> Records<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Records(data)
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.0.split_first()?;
        let (&len, rest) = rest.split_first().unwrap_or((&0, rest));
        let n = usize::from(len).min(rest.len());
        let (payload, rest) = rest.split_at(n);
        self.0 = rest;
        Some((tag, payload))
    }
}

/// Writes records in the format [`Records`] reads; payloads over 255 bytes
/// become several records with the same tag.
pub fn write_records(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    if payload.is_empty() {
        out.extend_from_slice(&[tag, 0]);
    }
    for piece in payload.chunks(255) {
        out.push(tag);
        out.push(piece.len() as u8);
        out.extend_from_slice(piece);
    }
}
