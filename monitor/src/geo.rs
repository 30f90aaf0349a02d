//! The datums of venue coordinates. The registry stores WGS-84 (what a
//! GPS and OpenStreetMap use); Chinese map tiles are drawn in GCJ-02
//! (AMap/高德, Tencent/腾讯) or BD-09 (Baidu/百度), offset from WGS-84 by
//! up to several hundred metres inside China. A WGS-84 marker on GCJ-02
//! tiles lands beside the venue, often in the next street; so markers are
//! converted into the tiles' datum (`web.map_datum`), and coordinates
//! copied from such a map are converted back when written
//! (`[[seed.venues]] datum`).
//!
//! The conversions are `coordtransform`'s (identity outside China, as the
//! offset is defined). Its inverses (GCJ-02 or BD-09 → WGS-84) are
//! one-step approximations (errors of a metre or two); [`to_wgs84`]
//! refines them by fixed-point iteration on the forward transform to well
//! under a millimetre.

use serde::{Deserialize, Serialize};

/// A geodetic datum of latitude/longitude pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    /// WGS-84 (GPS, OpenStreetMap): what the registry stores.
    #[default]
    Wgs84,
    /// GCJ-02 (国测局坐标, AMap/高德, Tencent/腾讯 maps).
    Gcj02,
    /// BD-09 (百度坐标, Baidu maps).
    Bd09,
}

impl Datum {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wgs84 => "wgs84",
            Self::Gcj02 => "gcj02",
            Self::Bd09 => "bd09",
        }
    }
}

/// `(lat, lon)` in WGS-84 → the same point in `to`.
pub fn from_wgs84(to: Datum, lat: f64, lon: f64) -> (f64, f64) {
    let (lon, lat) = match to {
        Datum::Wgs84 => (lon, lat),
        Datum::Gcj02 => coordtransform::wgs84_to_gcj02(lon, lat),
        Datum::Bd09 => coordtransform::wgs84_to_bd09(lon, lat),
    };
    (lat, lon)
}

/// `(lat, lon)` in `from` → the same point in WGS-84.
pub fn to_wgs84(from: Datum, lat: f64, lon: f64) -> (f64, f64) {
    let (mut wlon, mut wlat) = match from {
        Datum::Wgs84 => return (lat, lon),
        Datum::Gcj02 => coordtransform::gcj02_to_wgs84(lon, lat),
        Datum::Bd09 => coordtransform::bd09_to_wgs84(lon, lat),
    };
    // The one-step inverses are approximate: move the guess by what the
    // exact forward transform misses, until it stops moving.
    for _ in 0..8 {
        let (flat, flon) = from_wgs84(from, wlat, wlon);
        let (dlat, dlon) = (lat - flat, lon - flon);
        wlat += dlat;
        wlon += dlon;
        if dlon.abs() < 1e-10 && dlat.abs() < 1e-10 {
            break;
        }
    }
    (wlat, wlon)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference point of the coordtransform family of libraries (the
    /// same vectors in their JavaScript, Python and Java tests).
    const BEIJING: (f64, f64) = (39.915, 116.404);

    fn close(a: (f64, f64), b: (f64, f64), eps: f64) -> bool {
        (a.0 - b.0).abs() < eps && (a.1 - b.1).abs() < eps
    }

    #[test]
    fn forward_matches_the_reference_vectors() {
        let g = from_wgs84(Datum::Gcj02, BEIJING.0, BEIJING.1);
        assert!(
            close(g, (39.91640428150164, 116.41024449916938), 1e-12),
            "{g:?}"
        );
        let b = from_wgs84(Datum::Bd09, BEIJING.0, BEIJING.1);
        assert!(
            close(b, (39.922699552216216, 116.41662724378733), 1e-9),
            "{b:?}"
        );
        assert_eq!(from_wgs84(Datum::Wgs84, 1.0, 2.0), (1.0, 2.0));
    }

    #[test]
    fn back_to_wgs84_within_a_millimetre() {
        // 1e-8 degrees is about a millimetre.
        for (lat, lon) in [
            BEIJING,
            (31.2397, 121.4998),
            (22.5431, 114.0579),
            (43.8171, 87.6168),
        ] {
            for d in [Datum::Gcj02, Datum::Bd09] {
                let (x, y) = from_wgs84(d, lat, lon);
                let back = to_wgs84(d, x, y);
                assert!(
                    close(back, (lat, lon), 1e-8),
                    "{d:?} {lat},{lon} → {back:?}"
                );
                assert!(
                    !close((x, y), (lat, lon), 1e-4),
                    "{d:?}: offset inside China"
                );
            }
        }
    }

    #[test]
    fn no_offset_outside_china() {
        let london = (51.5007, -0.1246);
        assert_eq!(from_wgs84(Datum::Gcj02, london.0, london.1), london);
        assert_eq!(to_wgs84(Datum::Gcj02, london.0, london.1), london);
    }
}
