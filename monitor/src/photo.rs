//! Metadata stripping for photo evidence, without re-encoding the image
//! (`img-parts` rewrites the containers; the compressed image data is
//! copied byte for byte).
//!
//! Phone photos carry where and with what they were taken: EXIF (GPS
//! position, device make/model/serial, times), XMP, IPTC, comments. A
//! photo of a fire exit needs none of it, and the evidence store is read by
//! many people, so everything but what the picture needs to be shown is
//! dropped:
//!
//! * **JPEG**: every APPn segment but APP0 (JFIF), APP2 `ICC_PROFILE` (the
//!   colours) and APP14 `Adobe` (the colour transform of CMYK/YCCK files);
//!   COM comments; multi-picture data (the MPF segment and the images
//!   appended after the main image's end, which carry their own EXIF).
//! * **PNG**: `eXIf`, `tEXt`, `iTXt`, `zTXt` and `tIME` chunks.
//! * **WebP**: `EXIF` and `XMP ` chunks (the VP8X flags are updated).
//!
//! **Orientation is kept.** Phones store the picture as the sensor saw it
//! and say "rotate 90°" in the EXIF Orientation tag; dropping it would show
//! a portrait photo on its side. When the original has an Orientation other
//! than 1 (normal), the stored file gets a new EXIF block with that single
//! tag (and nothing else); otherwise it has no EXIF at all.

use img_parts::jpeg::{Jpeg, JpegSegment, markers};
use img_parts::png::Png;
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};

/// Why a photo could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    /// The container is corrupt or truncated.
    #[error("file: the {kind} is damaged or truncated ({why})")]
    Malformed {
        /// `JPEG`, `PNG` or `WebP`.
        kind: &'static str,
        /// The parser's words.
        why: String,
    },
    /// Not one of the three types.
    #[error("file: {0} is not a photo type that is stripped")]
    Unsupported(String),
}

/// The EXIF Orientation tag.
const ORIENTATION: u16 = 0x0112;

/// `data` (of `media`, as sniffed) without its metadata but orientation.
pub fn strip(media: &str, data: &[u8]) -> Result<Vec<u8>, StripError> {
    let b = Bytes::copy_from_slice(data);
    match media {
        "image/jpeg" => strip_jpeg(b),
        "image/png" => strip_png(b),
        "image/webp" => strip_webp(b),
        other => Err(StripError::Unsupported(other.into())),
    }
}

fn malformed(kind: &'static str) -> impl Fn(img_parts::Error) -> StripError {
    move |e| StripError::Malformed {
        kind,
        why: e.to_string(),
    }
}

fn missing(kind: &'static str, what: &str) -> StripError {
    StripError::Malformed {
        kind,
        why: format!("no {what}"),
    }
}

fn strip_jpeg(b: Bytes) -> Result<Vec<u8>, StripError> {
    let mut j = Jpeg::from_bytes(b).map_err(malformed("JPEG"))?;
    if j.dimensions().is_none() {
        return Err(missing("JPEG", "frame header"));
    }
    if !j.segments().iter().any(|s| s.marker() == markers::SOS) {
        return Err(missing("JPEG", "image data"));
    }
    let orientation = j.exif().and_then(|e| orientation(&e));
    j.segments_mut().retain(keep_jpeg_segment);
    // The scan segment's entropy runs to the end of the upload: cut it at
    // the main image's EOI, dropping appended (MPF) images.
    for seg in j.segments_mut().iter_mut() {
        if seg.has_entropy() {
            let contents = seg.contents().clone();
            let encoded = seg.clone().encoder().bytes();
            let entropy = encoded.slice((4 + contents.len()).min(encoded.len())..);
            let end = end_of_image(&entropy).ok_or_else(|| missing("JPEG", "end of image"))?;
            *seg = JpegSegment::new_with_entropy(seg.marker(), contents, entropy.slice(..end));
        }
    }
    j.set_exif(orientation.map(orientation_exif));
    Ok(j.encoder().bytes().to_vec())
}

/// APP0 (JFIF), APP2 ICC profile, APP14 Adobe and every non-APPn segment
/// but COM.
fn keep_jpeg_segment(s: &JpegSegment) -> bool {
    let m = s.marker();
    let c = s.contents();
    let app_n = (markers::APP0..=markers::APP15).contains(&m);
    if m == markers::APP0 {
        true
    } else if m == markers::APP2 {
        c.starts_with(b"ICC_PROFILE\0")
    } else if m == markers::APP14 {
        c.starts_with(b"Adobe")
    } else {
        !app_n && m != markers::COM
    }
}

/// The length of `entropy` up to and including the EOI marker, walking the
/// markers (stuffed `FF 00`, restarts and fill bytes carry no length;
/// progressive files have more segments and scans in between).
fn end_of_image(entropy: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < entropy.len() {
        if entropy[i] != 0xFF {
            i += 1;
            continue;
        }
        match entropy[i + 1] {
            // A fill byte: the marker follows.
            0xFF => i += 1,
            // Stuffed data, TEM, restarts: no length.
            0x00 | 0x01 | 0xD0..=0xD7 => i += 2,
            0xD9 => return Some(i + 2),
            _ => {
                // A segment with a length: skip it.
                let len = entropy.get(i + 2..i + 4)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                i += 2 + len;
            }
        }
    }
    None
}

fn strip_png(b: Bytes) -> Result<Vec<u8>, StripError> {
    let mut p = Png::from_bytes(b).map_err(malformed("PNG"))?;
    if p.dimensions().is_none() {
        return Err(missing("PNG", "IHDR header"));
    }
    if !p.chunks().iter().any(|c| c.kind() == *b"IEND") {
        return Err(missing("PNG", "IEND chunk"));
    }
    let orientation = p.exif().and_then(|e| orientation(&e));
    p.chunks_mut()
        .retain(|c| !matches!(&c.kind(), b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt" | b"tIME"));
    p.set_exif(orientation.map(orientation_exif));
    Ok(p.encoder().bytes().to_vec())
}

fn strip_webp(b: Bytes) -> Result<Vec<u8>, StripError> {
    let mut w = WebP::from_bytes(b).map_err(malformed("WebP"))?;
    use img_parts::riff::RiffContent;
    use img_parts::webp::{CHUNK_ANMF, CHUNK_VP8, CHUNK_VP8L, CHUNK_VP8X, CHUNK_XMP};
    if w.dimensions().is_none() {
        return Err(missing("WebP", "image header"));
    }
    if ![CHUNK_VP8, CHUNK_VP8L, CHUNK_ANMF]
        .iter()
        .any(|id| w.has_chunk(*id))
    {
        return Err(missing("WebP", "image data"));
    }
    let orientation = w.exif().and_then(|e| orientation(&e));
    w.remove_chunks_by_id(CHUNK_XMP);
    // Rewrites the VP8X EXIF (and ICC) flag for the chunks that are left …
    w.set_exif(orientation.map(orientation_exif));
    // … but not the XMP flag (bit 2 of the first byte).
    if let Some(vp8x) = w.chunks_mut().iter_mut().find(|c| c.id() == CHUNK_VP8X)
        && let RiffContent::Data(d) = vp8x.content_mut()
        && let Some(&first) = d.first()
    {
        let mut v = d.to_vec();
        v[0] = first & !0b0000_0100;
        *d = Bytes::from(v);
    }
    Ok(w.encoder().bytes().to_vec())
}

/// The Orientation (2–8) in IFD0 of a TIFF-structured EXIF block; `None`
/// for 1 (normal), absent or unreadable.
pub fn orientation(tiff: &[u8]) -> Option<u16> {
    let le = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = tiff.get(o..o.checked_add(2)?)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = tiff.get(o..o.checked_add(4)?)?;
        Some(if le {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let n = usize::from(u16_at(ifd)?);
    for k in 0..n {
        let e = ifd.checked_add(2 + 12 * k)?;
        if u16_at(e)? == ORIENTATION {
            // SHORT, one value, in the first two bytes of the value field.
            if u16_at(e + 2)? != 3 {
                return None;
            }
            let v = u16_at(e + 8)?;
            return (2..=8).contains(&v).then_some(v);
        }
    }
    None
}

/// A big-endian TIFF/EXIF block with IFD0 holding only Orientation = `o`.
pub fn orientation_exif(o: u16) -> Bytes {
    let mut v = Vec::with_capacity(26);
    v.extend_from_slice(b"MM\0*");
    v.extend_from_slice(&8u32.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&ORIENTATION.to_be_bytes());
    v.extend_from_slice(&3u16.to_be_bytes());
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&o.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&0u32.to_be_bytes());
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_round_trip_and_garbage() {
        for o in 2..=8 {
            assert_eq!(orientation(&orientation_exif(o)), Some(o));
        }
        assert_eq!(orientation(&orientation_exif(1)), None);
        // Little-endian, IFD0 with two entries, Orientation second.
        let mut le = b"II*\0\x08\0\0\0\x02\0".to_vec();
        le.extend_from_slice(&[0x0F, 0x01, 2, 0, 4, 0, 0, 0, 26, 0, 0, 0]);
        le.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        le.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(orientation(&le), Some(6));
        for bad in [
            &b""[..],
            b"II*\0",
            b"II*\0\xff\xff\xff\xff",
            b"MM\0*\0\0\0\x08\xff\xff",
            b"XX\0*\0\0\0\x08\0\0",
        ] {
            assert_eq!(orientation(bad), None);
        }
    }

    #[test]
    fn end_of_image_walks_markers() {
        // Stuffed FF 00, a restart, a DHT segment containing FF D9 in its
        // payload, a second scan, then EOI and trailing data.
        let e = [
            1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xC4, 0, 4, 0xFF, 0xD9, 5, 0xFF, 0xD9, 9, 9,
        ];
        assert_eq!(end_of_image(&e), Some(17));
        assert_eq!(end_of_image(&[1, 2, 3]), None);
        assert_eq!(end_of_image(&[0xFF, 0xC4, 0xFF]), None);
    }

    #[test]
    fn webp_loses_exif_and_xmp_but_not_orientation() {
        use img_parts::riff::{RiffChunk, RiffContent};
        use img_parts::webp::{CHUNK_EXIF, CHUNK_VP8L, CHUNK_VP8X, CHUNK_XMP};
        // A 1×1 lossless bitstream header and a few data bytes.
        let vp8l = RiffChunk::new(
            CHUNK_VP8L,
            RiffContent::Data(Bytes::from_static(&[0x2f, 0, 0, 0, 0, 0x88, 0x88, 0x08])),
        );
        let riff = RiffChunk::new(
            *b"RIFF",
            RiffContent::List {
                kind: Some(*b"WEBP"),
                subchunks: vec![vp8l],
            },
        );
        let mut w = WebP::new(riff).unwrap();
        let mut exif = orientation_exif(8).to_vec();
        exif.extend_from_slice(b"GPS 30.75N by AnquanPhone");
        w.set_exif(Some(Bytes::from(exif)));
        w.chunks_mut().push(RiffChunk::new(
            CHUNK_XMP,
            RiffContent::Data(Bytes::from_static(b"<x:xmpmeta>GPS</x:xmpmeta>")),
        ));
        let before = w.encoder().bytes();
        assert!(before.windows(8).any(|x| x == b"AnquanPh"));
        let after = strip("image/webp", &before).unwrap();
        assert!(after.starts_with(b"RIFF") && &after[8..12] == b"WEBP");
        assert!(!after.windows(3).any(|x| x == b"GPS"));
        let w = WebP::from_bytes(Bytes::from(after)).unwrap();
        let ids: Vec<[u8; 4]> = w.chunks().iter().map(RiffChunk::id).collect();
        assert_eq!(ids, [CHUNK_VP8X, CHUNK_VP8L, CHUNK_EXIF]);
        assert_eq!(w.exif(), Some(orientation_exif(8)));
        let flags = w
            .chunk_by_id(CHUNK_VP8X)
            .and_then(|c| c.content().data())
            .map(|d| d[0]);
        // EXIF flag set, XMP flag cleared.
        assert_eq!(flags, Some(0b0000_1000));
        assert_eq!(w.dimensions(), Some((1, 1)));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for (media, data) in [
            ("image/jpeg", &b"\xFF\xD8\xFF"[..]),
            ("image/jpeg", b"\xFF\xD8\xFF\xE1\xFF\xFFExif"),
            ("image/jpeg", b"\xFF\xD8\xFF\xD9"),
            ("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            ("image/png", b"\x89PNG\r\n\x1a\n"),
            ("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "),
            ("image/webp", b"RIFF\xff\xff\xff\xffWEBP"),
        ] {
            assert!(
                matches!(strip(media, data), Err(StripError::Malformed { .. })),
                "{media} {data:?}"
            );
        }
        assert!(matches!(
            strip("image/gif", b"GIF89a"),
            Err(StripError::Unsupported(_))
        ));
    }
}
