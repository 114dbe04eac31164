//! Turning uploaded bytes into what is stored: the format sniffed from the bytes (never the
//! declared type), the size judged from the header before any pixel is decoded, the pixels
//! decoded and re-encoded (so EXIF, GPS, comments and every other chunk are gone; the EXIF
//! orientation is applied first and the colour profile kept), and a thumbnail ≤ 360 px wide.
//! Pure and blocking: callers run it on the blocking pool.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{AnimationDecoder, ColorType, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};

/// Widest thumbnail, pixels (contract).
pub const THUMB_WIDTH: u32 = 360;
/// Most frames an animated GIF may have.
pub const MAX_FRAMES: usize = 500;
const JPEG_QUALITY: u8 = 85;
const THUMB_QUALITY: u8 = 80;

/// An image ready to store.
#[derive(Debug)]
pub struct Processed {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// The thumbnail and its type; `None` when the image is no wider than [`THUMB_WIDTH`].
    pub thumb: Option<(Vec<u8>, &'static str)>,
}

/// Why bytes were not made into an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the file is not a JPEG, PNG, WebP or GIF image")]
    NotImage,
    #[error("the image could not be read: {0}")]
    Corrupt(String),
    #[error("the image is {width} × {height} pixels ({frames} frame(s)), more than the {max} pixels allowed")]
    TooLarge { width: u32, height: u32, frames: usize, max: u64 },
}

/// Sniffs, checks, decodes and re-encodes `data`; images over `max_pixels` (width × height,
/// summed over a GIF's frames) are refused before their pixels are decoded.
pub fn process(data: &[u8], max_pixels: u64) -> Result<Processed, DecodeError> {
    let reader = ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|_| DecodeError::NotImage)?;
    let format = reader.format().ok_or(DecodeError::NotImage)?;
    match format {
        ImageFormat::Gif => gif(data, max_pixels),
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP => still(data, format, max_pixels),
        _ => Err(DecodeError::NotImage),
    }
}

fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // 16-bit RGBA is 8 bytes a pixel; a little more for the decoders' own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

fn check_size(width: u32, height: u32, frames: usize, max_pixels: u64) -> Result<(), DecodeError> {
    let pixels = u64::from(width) * u64::from(height) * frames.max(1) as u64;
    if pixels > max_pixels || width == 0 || height == 0 {
        return Err(DecodeError::TooLarge {
            width,
            height,
            frames,
            max: max_pixels,
        });
    }
    Ok(())
}

fn corrupt(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Unsupported(_) => DecodeError::NotImage,
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// JPEG, PNG and WebP: one frame. JPEG and opaque WebP are stored as JPEG, PNG and WebP with
/// transparency as PNG (`image` writes WebP only losslessly, which would multiply photos' size).
fn still(data: &[u8], format: ImageFormat, max_pixels: u64) -> Result<Processed, DecodeError> {
    // The header alone: nothing allocates pixels until the size is known to be fine.
    let (width, height) = ImageReader::with_format(Cursor::new(data), format)
        .into_dimensions()
        .map_err(corrupt)?;
    check_size(width, height, 1, max_pixels)?;
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits(max_pixels));
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let as_png = format == ImageFormat::Png || image.color().has_alpha();
    let (bytes, content_type) = if as_png {
        (encode_png(&image, icc)?, "image/png")
    } else {
        (encode_jpeg(&image, JPEG_QUALITY, icc)?, "image/jpeg")
    };
    let thumb = thumbnail(&image)?;
    Ok(Processed {
        bytes,
        content_type,
        width: image.width(),
        height: image.height(),
        thumb,
    })
}

/// GIF: every frame decoded (their pixels counted as they come) and written again.
fn gif(data: &[u8], max_pixels: u64) -> Result<Processed, DecodeError> {
    let decoder = GifDecoder::new(Cursor::new(data)).map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, 1, max_pixels)?;
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(corrupt)?;
        frames.push(frame);
        if frames.len() > MAX_FRAMES {
            return Err(DecodeError::TooLarge {
                width,
                height,
                frames: frames.len(),
                max: max_pixels,
            });
        }
        check_size(width, height, frames.len(), max_pixels)?;
    }
    let first = frames
        .first()
        .map(|f| DynamicImage::ImageRgba8(f.buffer().clone()))
        .ok_or_else(|| DecodeError::Corrupt("the GIF has no frame".into()))?;
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(corrupt)?;
        encoder.encode_frames(frames).map_err(corrupt)?;
    }
    let thumb = thumbnail(&first)?;
    Ok(Processed {
        bytes,
        content_type: "image/gif",
        width,
        height,
        thumb,
    })
}

/// A JPEG (opaque) or PNG (with transparency) at most [`THUMB_WIDTH`] wide; `None` when the
/// image is already that narrow (the image serves as its own thumbnail).
fn thumbnail(image: &DynamicImage) -> Result<Option<(Vec<u8>, &'static str)>, DecodeError> {
    if image.width() <= THUMB_WIDTH {
        return Ok(None);
    }
    let height = (u64::from(image.height()) * u64::from(THUMB_WIDTH) / u64::from(image.width())).max(1);
    let small = image.resize_exact(
        THUMB_WIDTH,
        u32::try_from(height).unwrap_or(u32::MAX),
        image::imageops::FilterType::Triangle,
    );
    if small.color().has_alpha() {
        Ok(Some((encode_png(&small, None)?, "image/png")))
    } else {
        Ok(Some((encode_jpeg(&small, THUMB_QUALITY, None)?, "image/jpeg")))
    }
}

fn encode_png(image: &DynamicImage, icc: Option<Vec<u8>>) -> Result<Vec<u8>, DecodeError> {
    let image = match image.color() {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => image.clone(),
        ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => image.clone(),
        c if c.has_alpha() => DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut out = Vec::new();
    let mut encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive);
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc);
    }
    image.write_with_encoder(encoder).map_err(corrupt)?;
    Ok(out)
}

fn encode_jpeg(image: &DynamicImage, quality: u8, icc: Option<Vec<u8>>) -> Result<Vec<u8>, DecodeError> {
    let image = match image.color() {
        ColorType::L8 | ColorType::Rgb8 => image.clone(),
        ColorType::L16 | ColorType::La8 | ColorType::La16 => DynamicImage::ImageLuma8(image.to_luma8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc);
    }
    image.write_with_encoder(encoder).map_err(corrupt)?;
    Ok(out)
}
