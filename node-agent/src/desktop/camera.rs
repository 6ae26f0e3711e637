//! `camera.list` / `camera.snap` with nokhwa (V4L2 on Linux, AVFoundation on macOS, Media
//! Foundation on Windows). Photos are sent as JPEG.

use crate::capabilities::{Backend, Camera, CapabilityError};
use base64::Engine as _;
use image::ImageEncoder as _;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, RequestedFormat, RequestedFormatType};
use openclaw_protocol::node::{CameraInfo, Image};
use std::sync::Arc;

/// Frames dropped before the photo is taken: the first frames of a webcam are dark while its
/// exposure settles.
const WARM_UP_FRAMES: usize = 5;

struct Nokhwa;

fn cameras() -> Result<Vec<nokhwa::utils::CameraInfo>, CapabilityError> {
    nokhwa::query(ApiBackend::Auto)
        .map_err(|e| CapabilityError::Failed(format!("could not list the cameras: {e}")))
}

fn no_camera() -> CapabilityError {
    CapabilityError::Unavailable {
        capability: "camera".into(),
        reason: NO_CAMERA.into(),
    }
}

const NO_CAMERA: &str = "no camera found (no video capture device such as /dev/video0): connect a camera and restart the node";

impl Camera for Nokhwa {
    fn list(&self) -> Result<Vec<CameraInfo>, CapabilityError> {
        Ok(cameras()?
            .iter()
            .enumerate()
            .map(|(i, c)| CameraInfo {
                index: i as u32,
                name: c.human_name(),
            })
            .collect())
    }

    fn snap(&self, index: Option<u32>) -> Result<Image, CapabilityError> {
        let all = cameras()?;
        let wanted = index.unwrap_or(0) as usize;
        let info = match all.get(wanted) {
            Some(info) => info,
            None if all.is_empty() => return Err(no_camera()),
            None => {
                return Err(CapabilityError::InvalidParams(format!(
                    "there is no camera {wanted}: this node has {} (see camera.list)",
                    all.len()
                )));
            }
        };
        let format =
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestResolution);
        let failed = |what: &str, e: nokhwa::NokhwaError| {
            CapabilityError::Failed(format!("could not {what} `{}`: {e}", info.human_name()))
        };
        let mut camera = nokhwa::Camera::new(info.index().clone(), format)
            .map_err(|e| failed("open the camera", e))?;
        camera
            .open_stream()
            .map_err(|e| failed("start the camera", e))?;
        let mut frame = camera.frame().map_err(|e| failed("read from", e))?;
        for _ in 0..WARM_UP_FRAMES {
            frame = camera.frame().map_err(|e| failed("read from", e))?;
        }
        // Best effort: the stream also stops when the camera is dropped.
        let _ = camera.stop_stream();
        let rgb = frame
            .decode_image::<RgbFormat>()
            .map_err(|e| failed("decode a frame of", e))?;
        let (width, height) = rgb.dimensions();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .write_image(rgb.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .map_err(|e| CapabilityError::Failed(format!("could not encode the JPEG: {e}")))?;
        Ok(Image {
            format: "jpeg".into(),
            width,
            height,
            data: base64::engine::general_purpose::STANDARD.encode(jpeg),
        })
    }
}

/// Ready when at least one camera is present.
pub fn probe() -> Backend<dyn Camera> {
    match cameras() {
        Ok(list) if !list.is_empty() => Backend::Ready(Arc::new(Nokhwa)),
        Ok(_) => Backend::Missing(NO_CAMERA.into()),
        Err(e) => Backend::Missing(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine has no camera: the probe must say so, in words a user can act on.
    #[test]
    fn without_a_camera_the_probe_says_why() {
        if std::path::Path::new("/dev/video0").exists() {
            return; // a developer machine with a webcam: nothing to assert here
        }
        match probe() {
            Backend::Missing(reason) => assert!(reason.contains("no camera"), "{reason}"),
            Backend::Ready(_) => panic!("a camera was reported without /dev/video0"),
        }
    }
}
