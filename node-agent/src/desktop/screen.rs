//! `screen.snapshot` with xcap: X11 through XCB, Wayland through the desktop portal. The image is
//! sent as PNG (lossless: text on screen stays readable for the model).

use crate::capabilities::{Backend, CapabilityError, ScreenCapture};
use base64::Engine as _;
use image::ImageEncoder as _;
use openclaw_protocol::node::Image;
use std::sync::Arc;

struct Xcap;

impl ScreenCapture for Xcap {
    fn snapshot(&self, display: Option<u32>) -> Result<Image, CapabilityError> {
        let monitors = xcap::Monitor::all().map_err(|e| failed("list the displays", e))?;
        let monitor = match display {
            Some(index) => monitors.get(index as usize).ok_or_else(|| {
                CapabilityError::InvalidParams(format!(
                    "there is no display {index}: this node has {} (0 to {})",
                    monitors.len(),
                    monitors.len().saturating_sub(1)
                ))
            })?,
            None => monitors
                .iter()
                .find(|m| m.is_primary().unwrap_or(false))
                .or_else(|| monitors.first())
                .ok_or_else(|| CapabilityError::Unavailable {
                    capability: "screen.snapshot".into(),
                    reason: "the display server reports no monitors".into(),
                })?,
        };
        // An X server with no other client resets when the last connection closes (xcap opens
        // one per step), and a connection made during the reset is refused: retry once.
        let frame = monitor
            .capture_image()
            .or_else(|_| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                monitor.capture_image()
            })
            .map_err(|e| failed("capture the screen", e))?;
        let (width, height) = frame.dimensions();
        // Screens are opaque: dropping alpha makes the PNG a quarter smaller.
        let rgb = image::DynamicImage::ImageRgba8(frame).into_rgb8();
        let png = encode_png(&rgb, width, height)?;
        Ok(Image {
            format: "png".into(),
            width,
            height,
            data: base64::engine::general_purpose::STANDARD.encode(png),
        })
    }
}

pub(crate) fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, CapabilityError> {
    let mut png = Vec::with_capacity(rgb.len() / 4);
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        // Fast compression: a 1920x1080 screen encodes in tens of ms instead of hundreds.
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
    .map_err(|e| CapabilityError::Failed(format!("could not encode the PNG: {e}")))?;
    Ok(png)
}

fn failed(what: &str, e: xcap::XCapError) -> CapabilityError {
    CapabilityError::Failed(format!("could not {what}: {e}"))
}

/// Ready when a display server answers and has at least one monitor.
pub fn probe() -> Backend<dyn ScreenCapture> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !has_display {
        return Backend::Missing(
            "no display (neither DISPLAY nor WAYLAND_DISPLAY is set): run the node inside a desktop session".into(),
        );
    }
    match xcap::Monitor::all() {
        Ok(monitors) if !monitors.is_empty() => Backend::Ready(Arc::new(Xcap)),
        Ok(_) => Backend::Missing("the display server reports no monitors".into()),
        Err(e) => Backend::Missing(format!("the display server cannot be captured: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_encoding_keeps_the_size_and_pixels() {
        let (w, h) = (7u32, 3u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 251) as u8).collect();
        let png = encode_png(&rgb, w, h).unwrap();
        let back = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .into_rgb8();
        assert_eq!(back.dimensions(), (w, h));
        assert_eq!(back.into_raw(), rgb);
    }
}
