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
    TooLarge {
        width: u32,
        height: u32,
        frames: usize,
        max: u64,
    },
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
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
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

#[cfg(test)]
pub(crate) mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use image::{GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    /// Counts what this thread allocates while `TRACKING` is on (other threads are left alone).
    struct Counting;

    thread_local! {
        static TRACKING: Cell<bool> = const { Cell::new(false) };
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn track(delta: isize) {
        let _ = TRACKING.try_with(|on| {
            if on.get() {
                let live = LIVE.with(|l| {
                    l.set(l.get() + delta);
                    l.get()
                });
                PEAK.with(|p| p.set(p.get().max(live)));
            }
        });
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            track(layout.size() as isize);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            track(-(layout.size() as isize));
            // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            track(new_size as isize - layout.size() as isize);
            // SAFETY: as for `alloc` and `dealloc`.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// The most bytes live at once on this thread while `work` ran.
    fn peak_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
        LIVE.with(|l| l.set(0));
        PEAK.with(|p| p.set(0));
        TRACKING.with(|t| t.set(true));
        let out = work();
        TRACKING.with(|t| t.set(false));
        (out, PEAK.with(|p| p.get()).max(0) as usize)
    }

    /// A `side` × `side` black PNG of 1-bit pixels, written row by row (it compresses ~1000:1).
    pub(crate) fn png_bomb(side: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(Cursor::new(&mut out), side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        let mut header = encoder.write_header().unwrap();
        let mut writer = header.stream_writer().unwrap();
        let row = vec![0u8; side.div_ceil(8) as usize];
        for _ in 0..side {
            std::io::Write::write_all(&mut writer, &row).unwrap();
        }
        writer.finish().unwrap();
        drop(header);
        out
    }

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A JPEG whose EXIF says "rotate 90° clockwise" and carries a GPS block with `marker`.
    pub(crate) fn jpeg_with_gps(width: u32, height: u32, marker: &[u8; 14]) -> Vec<u8> {
        let photo = DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, _| Rgb([(x * 5) as u8, 90, 200])));
        let jpeg = encoded(&photo, ImageFormat::Jpeg);
        // TIFF (big-endian): IFD0 at 8 with Orientation = 6 and the GPS IFD pointer; the GPS
        // IFD at 38 with GPSLatitudeRef "N" and GPSProcessingMethod (22 bytes at 68).
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&[0, 2]);
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(&[0, 2]);
        tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&[0x00, 0x1b, 0, 7, 0, 0, 0, 22, 0, 0, 0, 68]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(b"ASCII\0\0\0");
        tiff.extend_from_slice(marker);
        let mut app1 = vec![0xff, 0xe1];
        let length = (2 + 6 + tiff.len()) as u16;
        app1.extend_from_slice(&length.to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header_without_allocating_its_pixels() {
        let bomb = png_bomb(20_000);
        assert!(bomb.len() < 100_000, "the bomb is small: {} bytes", bomb.len());
        let (outcome, peak) = peak_allocation(|| process(&bomb, 40_000_000));
        assert!(
            matches!(
                outcome,
                Err(DecodeError::TooLarge {
                    width: 20_000,
                    height: 20_000,
                    ..
                })
            ),
            "{outcome:?}"
        );
        // Its pixels would take 50 MB at one bit each, 400 MB at a byte.
        eprintln!(
            "a {} byte PNG of 20000 × 20000 refused; at most {peak} bytes live meanwhile",
            bomb.len()
        );
        assert!(peak < 1 << 20, "refusing it allocated {peak} bytes at once");
    }

    #[test]
    fn gps_exif_is_stripped_and_the_orientation_applied() {
        let marker = b"SECRET-GPS-123";
        let upload = jpeg_with_gps(40, 20, marker);
        assert!(upload.windows(4).any(|w| w == b"Exif"));
        let stored = process(&upload, 40_000_000).unwrap();
        assert_eq!(stored.content_type, "image/jpeg");
        assert!(!stored.bytes.windows(4).any(|w| w == b"Exif"), "EXIF kept");
        assert!(!stored.bytes.windows(marker.len()).any(|w| w == marker), "GPS kept");
        assert_eq!((stored.width, stored.height), (20, 40), "rotated upright");
        let back = image::load_from_memory(&stored.bytes).unwrap();
        assert_eq!(back.dimensions(), (20, 40));
    }

    #[test]
    fn the_format_comes_from_the_bytes_and_wide_images_get_a_360_px_thumbnail() {
        let png = encoded(
            &DynamicImage::ImageRgba8(RgbaImage::from_pixel(720, 100, Rgba([1, 2, 3, 128]))),
            ImageFormat::Png,
        );
        let stored = process(&png, 40_000_000).unwrap();
        assert_eq!(stored.content_type, "image/png");
        assert_eq!(image::guess_format(&stored.bytes).unwrap(), ImageFormat::Png);
        let (thumb, kind) = stored.thumb.expect("a thumbnail");
        assert_eq!(kind, "image/png", "transparency keeps PNG");
        assert_eq!(image::load_from_memory(&thumb).unwrap().dimensions(), (360, 50));

        let narrow = encoded(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 10, Rgb([9, 9, 9]))),
            ImageFormat::Png,
        );
        assert!(process(&narrow, 40_000_000).unwrap().thumb.is_none());
    }

    #[test]
    fn webp_is_kept_as_jpeg_and_text_is_not_an_image() {
        let webp = encoded(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 200, Rgb([200, 10, 10]))),
            ImageFormat::WebP,
        );
        let stored = process(&webp, 40_000_000).unwrap();
        assert_eq!(stored.content_type, "image/jpeg");
        let (thumb, kind) = stored.thumb.unwrap();
        assert_eq!(kind, "image/jpeg");
        assert_eq!(image::load_from_memory(&thumb).unwrap().dimensions(), (360, 180));
        assert_eq!(
            process(b"hello, world\n", 40_000_000).unwrap_err(),
            DecodeError::NotImage
        );
        let truncated = &webp[..webp.len() / 2];
        assert!(process(truncated, 40_000_000).is_err());
    }

    #[test]
    fn an_animated_gif_stays_animated_and_its_frames_count_toward_the_limit() {
        let frames: Vec<_> = (0..3u8)
            .map(|i| image::Frame::new(RgbaImage::from_pixel(20, 10, Rgba([i * 80, 0, 0, 255]))))
            .collect();
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
            encoder.encode_frames(frames).unwrap();
        }
        let stored = process(&gif, 40_000_000).unwrap();
        assert_eq!(stored.content_type, "image/gif");
        let decoder = GifDecoder::new(Cursor::new(&stored.bytes)).unwrap();
        assert_eq!(decoder.into_frames().count(), 3);
        let refused = process(&gif, 500).unwrap_err();
        assert!(
            matches!(refused, DecodeError::TooLarge { frames: 3, .. }),
            "{refused:?}"
        );
    }
}
