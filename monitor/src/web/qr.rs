//! The venue QR code (a static URL; the page behind it is dynamic), as SVG
//! and as PNG (8-bit greyscale, drawn from the module matrix and encoded
//! with the `png` crate, so no image-processing stack is linked).

use qrcode::{Color, EcLevel, QrCode};

use crate::error::{Error, Result};

fn code(url: &str) -> Result<QrCode> {
    // Level M: survives some dirt and glare on a printed poster.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| Error::Invalid(format!("cannot encode {url:?} as a QR code: {e}")))
}

/// The QR code of `url` as an SVG document.
pub fn svg(url: &str) -> Result<String> {
    Ok(code(url)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The QR code of `url` as PNG: `scale` pixels per module and the
/// standard 4-module quiet zone.
pub fn png(url: &str, scale: usize) -> Result<Vec<u8>> {
    let c = code(url)?;
    let n = c.width();
    let colors = c.to_colors();
    let quiet = 4;
    let side = (n + 2 * quiet) * scale;
    let mut px = vec![255u8; side * side];
    for (i, col) in colors.iter().enumerate() {
        if *col == Color::Dark {
            let (mx, my) = (i % n + quiet, i / n + quiet);
            for y in my * scale..(my + 1) * scale {
                let row = y * side;
                px[row + mx * scale..row + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(|_| Error::Invalid("QR code too large".into()))?;
    {
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::Unavailable(format!("png: {e}")))?;
        w.write_image_data(&px)
            .map_err(|e| Error::Unavailable(format!("png: {e}")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn svg_and_png_are_made() {
        let s = svg("https://example.invalid/public/venues/s1").unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"), "{s}");
        let p = png("https://example.invalid/public/venues/s1", 4).unwrap();
        assert_eq!(&p[1..4], b"PNG");
    }
}
