//! Images before they are shared and after they arrive: EXIF metadata (camera location
//! above all) stripped before upload, with the EXIF orientation applied to the pixels so
//! the picture still stands the right way up; and thumbnails, oriented the same way.
//!
//! Only JPEG, PNG and WebP are touched (the formats Starling decodes); an image that
//! carries no EXIF goes up byte for byte as it is.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder as _, ImageFormat, ImageReader};

/// A thumbnail's longest side, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The longest side of the preview that travels inside a plaintext file message (XEP-0264):
/// a blurred stand-in, a few hundred bytes.
pub const PREVIEW_SIDE: u32 = 24;
/// JPEG quality when an image is re-encoded without its metadata.
const JPEG_QUALITY: u8 = 90;

/// What an image becomes before upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The metadata was removed (the image was re-encoded).
    pub stripped: bool,
    /// A tiny PNG of it (longest side [`PREVIEW_SIDE`]), to send along.
    pub preview: Option<Vec<u8>>,
}

fn format_of(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => Some(f),
        _ => None,
    }
}

/// Decodes an image with its EXIF orientation applied; also returns whether it had EXIF.
fn decode_oriented(bytes: &[u8], format: ImageFormat) -> Option<(DynamicImage, bool)> {
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .ok()?;
    let exif = decoder.exif_metadata().ok().flatten().is_some();
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).ok()?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Some((img, exif))
}

/// The image as it should be uploaded: without EXIF (so without the camera's location),
/// turned the way the EXIF said. `None` when it is not an image Starling handles or does
/// not decode (it is then sent as any file).
pub fn prepare(bytes: &[u8]) -> Option<Prepared> {
    let format = format_of(bytes)?;
    let (img, exif) = decode_oriented(bytes, format)?;
    let preview = png_of(&img.thumbnail(
        PREVIEW_SIDE.min(img.width()),
        PREVIEW_SIDE.min(img.height()),
    ));
    if !exif {
        return Some(Prepared {
            bytes: bytes.to_vec(),
            width: img.width(),
            height: img.height(),
            stripped: false,
            preview,
        });
    }
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let encoder =
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            img.to_rgb8().write_with_encoder(encoder).ok()?;
        }
        // PNG and WebP (lossless here) keep their pixels exactly.
        _ => img.write_to(&mut out, ImageFormat::Png).ok()?,
    }
    Some(Prepared {
        bytes: out.into_inner(),
        width: img.width(),
        height: img.height(),
        stripped: true,
        preview,
    })
}

fn png_of(img: &DynamicImage) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

/// A PNG thumbnail (longest side [`THUMBNAIL_SIDE`]), oriented, with its size.
pub fn thumbnail(bytes: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let format = format_of(bytes)?;
    let (img, _) = decode_oriented(bytes, format)?;
    // Smaller pictures stay as they are (never blown up).
    let thumb = if img.width() > THUMBNAIL_SIDE || img.height() > THUMBNAIL_SIDE {
        img.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        img
    };
    Some((png_of(&thumb)?, thumb.width(), thumb.height()))
}

/// Whether JPEG bytes still carry an EXIF segment (APP1 "Exif").
pub fn jpeg_has_exif(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"Exif\0\0")
}

/// Test material for Starling's own tests (not for front ends).
#[doc(hidden)]
pub mod sample {
    use super::*;

    /// A `w`×`h` JPEG with an EXIF segment: orientation 6 (rotate 90° clockwise to show)
    /// and a GPS IFD with a latitude, as a phone writes them.
    pub fn jpeg_with_location(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut jpeg = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .unwrap_or_default();
        let jpeg = jpeg.into_inner();
        // TIFF, little endian: IFD0 with Orientation = 6 and a GPS IFD pointer; the GPS IFD
        // with GPSLatitudeRef = 'N' and GPSLatitude = 48/1, 51/1, 30/1.
        let mut tiff: Vec<u8> = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes());
        // IFD0 at 8: 2 entries.
        tiff.extend(2u16.to_le_bytes());
        tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation SHORT 6
        tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0]); // GPS IFD pointer LONG
        tiff.extend(38u32.to_le_bytes()); // → offset 38
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        // GPS IFD at 38: 2 entries.
        tiff.extend(2u16.to_le_bytes());
        tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]); // LatitudeRef ASCII "N"
        tiff.extend([0x02, 0x00, 5, 0, 3, 0, 0, 0]); // Latitude RATIONAL×3
        tiff.extend(68u32.to_le_bytes()); // → offset 68
        tiff.extend(0u32.to_le_bytes());
        for v in [48u32, 51, 30] {
            tiff.extend(v.to_le_bytes());
            tiff.extend(1u32.to_le_bytes());
        }
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let len = u16::try_from(app1.len() + 2).unwrap_or(u16::MAX);
        if jpeg.len() < 2 {
            return jpeg;
        }
        let (soi, rest) = jpeg.split_at(2);
        let mut out = soi.to_vec();
        out.extend([0xff, 0xe1]);
        out.extend(len.to_be_bytes());
        out.extend(app1);
        out.extend(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::sample::jpeg_with_location as jpeg_with_gps;
    use super::*;

    #[test]
    fn location_is_stripped_and_orientation_kept() {
        let original = jpeg_with_gps(64, 32);
        assert!(jpeg_has_exif(&original));
        let p = prepare(&original).expect("an image");
        assert!(p.stripped);
        assert!(
            !jpeg_has_exif(&p.bytes),
            "EXIF (and the GPS position) removed"
        );
        // Orientation 6: the 64×32 picture stands as 32×64, red on top.
        assert_eq!((p.width, p.height), (32, 64));
        let back = image::load_from_memory(&p.bytes)
            .expect("decodes")
            .to_rgb8();
        assert_eq!((back.width(), back.height()), (32, 64));
        let top = back.get_pixel(16, 4);
        assert!(top[0] > 200 && top[2] < 60, "red on top: {top:?}");
    }

    #[test]
    fn images_without_exif_are_untouched_and_others_ignored() {
        let mut png = Cursor::new(Vec::new());
        DynamicImage::new_rgb8(10, 5)
            .write_to(&mut png, ImageFormat::Png)
            .expect("encodes");
        let png = png.into_inner();
        let p = prepare(&png).expect("an image");
        assert!(!p.stripped);
        assert_eq!(p.bytes, png);
        assert_eq!(prepare(b"%PDF-1.7 not an image"), None);
        assert_eq!(
            prepare(&[0xff, 0xd8, 0xff, 0x00, 0x01]),
            None,
            "broken JPEG"
        );
    }

    #[test]
    fn thumbnails_are_small_and_oriented() {
        let (png, w, h) = thumbnail(&jpeg_with_gps(800, 400)).expect("thumbnail");
        assert_eq!((w, h), (160, 320));
        assert_eq!(image::guess_format(&png).ok(), Some(ImageFormat::Png));
        // Small pictures are not blown up.
        let (_, w, h) = thumbnail(&jpeg_with_gps(40, 30)).expect("thumbnail");
        assert_eq!((w, h), (30, 40));
    }
}
