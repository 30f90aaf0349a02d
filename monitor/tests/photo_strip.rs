//! Photo evidence is stored without its metadata: a real JPEG (decoded by
//! `jpeg-decoder` before and after) and a real PNG (decoded by `png`)
//! carrying an EXIF block with a GPS position and a device name, XMP, a
//! comment, text chunks and an appended second image are uploaded through
//! the API; what is stored and served has the right magic, decodes to the
//! same pixels, keeps only the EXIF Orientation and contains none of the
//! metadata bytes; the SHA-256 name is that of the stored bytes. Files
//! with the right magic but a broken container are refused with 422.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anquan_monitor::photo;
use common::scenarios::{PNG, metric, upload};
use common::{Harness, OP, sqlite_url};
use img_parts::jpeg::Jpeg;
use img_parts::png::{Png, PngChunk};
use img_parts::{Bytes, ImageEXIF};
use serde_json::json;
use sha2::Digest;

const MAKE: &[u8] = b"AnquanPhone\0";
/// 30° 45' 12.34" as three RATIONALs.
const LAT: [u32; 6] = [30, 1, 45, 1, 1234, 100];

/// A big-endian EXIF (TIFF) block as a phone writes it: IFD0 with Make,
/// Orientation = 6 (rotate 90°) and a GPS IFD with GPSLatitudeRef and
/// GPSLatitude.
fn phone_exif() -> Vec<u8> {
    let mut t = b"MM\0*\0\0\0\x08".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, ty: u16, n: u32, v: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&ty.to_be_bytes());
        t.extend_from_slice(&n.to_be_bytes());
        t.extend_from_slice(&v);
    };
    // IFD0 at 8: 3 entries → ends at 8 + 2 + 36 + 4 = 50; Make at 50, GPS
    // IFD at 62 (2 entries → ends at 92), latitude at 92.
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x010F, 2, MAKE.len() as u32, 50u32.to_be_bytes());
    entry(&mut t, 0x0112, 3, 1, [0, 6, 0, 0]);
    entry(&mut t, 0x8825, 4, 1, 62u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(MAKE);
    assert_eq!(t.len(), 62);
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, 92u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 92);
    for v in LAT {
        t.extend_from_slice(&v.to_be_bytes());
    }
    t
}

fn lat_bytes() -> Vec<u8> {
    LAT.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn seg(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A real baseline JPEG, 8×8 grey (one DC-only block), with a phone's
/// metadata: JFIF, EXIF (GPS), XMP, a comment, an MPF segment and a second
/// image appended after the end of the first.
fn phone_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend(seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(phone_exif());
    j.extend(seg(0xE1, &exif));
    j.extend(seg(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>30,45.2057N</exif:GPSLatitude></x:xmpmeta>",
    ));
    j.extend(seg(0xE2, b"MPF\0MM\0*\0\0\0\x08\0\0"));
    j.extend(seg(0xFE, b"taken by AnquanPhone at the east gate"));
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    j.extend(seg(0xDB, &dqt));
    j.extend(seg(0xC0, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]));
    // DC and AC tables with one 1-bit code each (symbol 0: DC diff 0, EOB).
    for class in [0x00u8, 0x10] {
        let mut dht = vec![class, 1];
        dht.extend([0u8; 15]);
        dht.push(0);
        j.extend(seg(0xC4, &dht));
    }
    j.extend(seg(0xDA, &[1, 1, 0x00, 0, 63, 0]));
    // DC code "0", EOB "0", padded with ones.
    j.push(0x3F);
    j.extend([0xFF, 0xD9]);
    // The appended (MPF) image, with its own EXIF.
    j.extend([0xFF, 0xD8]);
    j.extend(seg(0xE1, &exif));
    j.extend([0xFF, 0xD9]);
    j
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The test PNG with an eXIf chunk (GPS) and text chunks.
fn phone_png() -> Vec<u8> {
    let mut p = Png::from_bytes(Bytes::from(unhex(PNG))).unwrap();
    p.set_exif(Some(Bytes::from(phone_exif())));
    let n = p.chunks().len();
    p.chunks_mut().insert(
        n - 1,
        PngChunk::new(
            *b"tEXt",
            Bytes::from_static(b"Location\x0030.7537N 120.7555E"),
        ),
    );
    p.chunks_mut().insert(
        n - 1,
        PngChunk::new(
            *b"iTXt",
            Bytes::from_static(b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>"),
        ),
    );
    p.encoder().bytes().to_vec()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn decode_jpeg(b: &[u8]) -> Vec<u8> {
    let mut d = jpeg_decoder::Decoder::new(b);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    assert_eq!((info.width, info.height), (8, 8));
    px
}

fn decode_png(b: &[u8]) -> Vec<u8> {
    let mut r = png::Decoder::new(std::io::Cursor::new(b.to_vec()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

async fn served(h: &Harness, id: &str) -> (String, Vec<u8>) {
    let r = h
        .http
        .get(format!("{}/api/v1/evidence/{id}", h.base))
        .bearer_auth(OP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn uploaded_photos_lose_their_metadata_but_not_their_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("evidence");
    let h = Harness::start_with(
        &sqlite_url(&dir),
        false,
        &format!(
            "[evidence]\ndir = \"{}\"\nmax_bytes = 65536\n",
            files.display()
        ),
    )
    .await;
    let (s, t) = h
        .post(
            "/api/v1/tasks",
            json!({"actor": "grid", "kind": "inspection", "title": "check", "venue_id": "s1",
                   "assignee_id": "grid", "due_ms": h.clock_now() + 86_400_000}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let path = format!("/api/v1/tasks/{}/evidence", t["id"].as_str().unwrap());

    // JPEG.
    let jpeg = phone_jpeg();
    let original_pixels = decode_jpeg(&jpeg);
    assert!(contains(&jpeg, MAKE) && contains(&jpeg, &lat_bytes()));
    let (s, p) = upload(&h, &path, "grid", "gate.jpg", "image/jpeg", &jpeg).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["media_type"], "image/jpeg");
    let (ct, got) = served(&h, p["id"].as_str().unwrap()).await;
    assert_eq!(ct, "image/jpeg");
    assert!(got.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert!(got.ends_with(&[0xFF, 0xD9]), "the appended image is gone");
    assert!(got.len() < jpeg.len());
    assert_eq!(p["bytes"], got.len());
    let sha = hex::encode(sha2::Sha256::digest(&got));
    assert_eq!(p["sha256"], sha.as_str());
    assert_eq!(std::fs::read(files.join(&sha)).unwrap(), got);
    for gone in [
        MAKE,
        &lat_bytes()[..],
        b"GPSLatitude",
        b"xap/1.0",
        b"east gate",
        b"MPF\0",
    ] {
        assert!(
            !contains(&got, gone),
            "{:?} is still there",
            String::from_utf8_lossy(gone)
        );
    }
    let j = Jpeg::from_bytes(Bytes::from(got.clone())).unwrap();
    assert_eq!(j.exif().unwrap(), photo::orientation_exif(6));
    assert_eq!(photo::orientation(&j.exif().unwrap()), Some(6));
    assert_eq!(decode_jpeg(&got), original_pixels, "pixels changed");

    // PNG.
    let png = phone_png();
    let original_pixels = decode_png(&png);
    assert!(contains(&png, MAKE) && contains(&png, b"Location"));
    let (s, p) = upload(&h, &path, "grid", "gate.png", "image/png", &png).await;
    assert_eq!(s, 201, "{p}");
    let (ct, got) = served(&h, p["id"].as_str().unwrap()).await;
    assert_eq!(ct, "image/png");
    assert!(got.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        p["sha256"],
        hex::encode(sha2::Sha256::digest(&got)).as_str()
    );
    for gone in [
        MAKE,
        &lat_bytes()[..],
        b"Location",
        b"tEXt",
        b"iTXt",
        b"xmpmeta",
    ] {
        assert!(
            !contains(&got, gone),
            "{:?} is still there",
            String::from_utf8_lossy(gone)
        );
    }
    let pp = Png::from_bytes(Bytes::from(got.clone())).unwrap();
    assert_eq!(pp.exif().unwrap(), photo::orientation_exif(6));
    assert_eq!(decode_png(&got), original_pixels, "pixels changed");

    // A photo without metadata is stored as it came.
    let plain = unhex(PNG);
    let (s, p) = upload(&h, &path, "grid", "plain.png", "image/png", &plain).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(served(&h, p["id"].as_str().unwrap()).await.1, plain);

    // Right magic, broken container: 422, counted, nothing stored.
    let mut cut = jpeg.clone();
    cut.truncate(40);
    let mut bad_png = plain.clone();
    bad_png.truncate(20);
    for (name, data) in [
        ("cut.jpg", cut),
        ("cut.png", bad_png),
        ("x.webp", b"RIFF\x04\0\0\0WEBPVP8 ".to_vec()),
    ] {
        let (s, p) = upload(&h, &path, "grid", name, "image/jpeg", &data).await;
        assert_eq!(s, 422, "{name}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("damaged"), "{p}");
    }
    assert_eq!(
        metric(
            &h,
            r#"anquan_monitor_evidence_rejected_total{reason="malformed"}"#
        )
        .await,
        Some(3.0)
    );
    let (_, l) = h.get(&path).await;
    assert_eq!(l.as_array().unwrap().len(), 3);
}
