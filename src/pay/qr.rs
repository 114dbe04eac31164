//! QR codes of orders: rendered once per order and format, then served from memory.
//! PNG for `<img>` and scanners, SVG for crisp print.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use qrcode::{EcLevel, QrCode};

/// Image formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Svg,
}

/// Rendered images by (order, format).
pub struct QrCache {
    cache: moka::sync::Cache<(String, Format), Bytes>,
}

impl std::fmt::Debug for QrCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QrCache")
    }
}

impl Default for QrCache {
    fn default() -> Self {
        QrCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(20_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }
}

impl QrCache {
    /// The image of `content` for order `order_no`, rendered on first request.
    pub fn get(&self, order_no: &str, format: Format, content: &str) -> Option<Bytes> {
        let key = (order_no.to_string(), format);
        if let Some(hit) = self.cache.get(&key) {
            return Some(hit);
        }
        let image = render(content, format)?;
        self.cache.insert(key, image.clone());
        Some(image)
    }
}

/// Renders `content` (medium error correction, quiet zone included); `None` if it cannot be
/// encoded (too long).
pub fn render(content: &str, format: Format) -> Option<Bytes> {
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).ok()?;
    match format {
        Format::Png => {
            let image = code.render::<image::Luma<u8>>().min_dimensions(256, 256).build();
            let mut png = Vec::with_capacity(4096);
            image
                .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                .ok()?;
            Some(Bytes::from(png))
        }
        Format::Svg => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .build();
            Some(Bytes::from(svg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_back_to_the_content() {
        let content = "weixin://wxpay/bizpayurl?pr=abc123XYZ";
        let png = render(content, Format::Png).expect("renders");
        let image = image::load_from_memory(&png).expect("a PNG").to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, decoded) = grids[0].decode().expect("decodes");
        assert_eq!(decoded, content);
    }

    #[test]
    fn the_svg_is_an_svg_and_images_are_cached() {
        let cache = QrCache::default();
        let svg = cache.get("o1", Format::Svg, "https://qr.alipay.com/x").unwrap();
        assert!(svg.starts_with(b"<?xml") || svg.starts_with(b"<svg"));
        let again = cache.get("o1", Format::Svg, "ignored: cached").unwrap();
        assert_eq!(svg, again);
    }
}
