//! The tray icon of each state, drawn at start (a filled disc on transparency, the state's
//! colour; the paused one hollow, the working one with a dot), so there are no image files to
//! ship or decode and a state can be told by colour and shape alike.

use crate::tray_state::IconState;

/// Side of the square icon, in pixels (menu bars scale it down).
pub const SIZE: u32 = 32;

/// The state's colour (RGB).
pub fn colour(state: IconState) -> [u8; 3] {
    match state {
        IconState::Healthy => [0x16, 0xa3, 0x4a],
        IconState::Degraded => [0xd9, 0x77, 0x06],
        IconState::Paused => [0x6b, 0x72, 0x80],
        IconState::Error => [0xdc, 0x26, 0x26],
        IconState::Working => [0x25, 0x63, 0xeb],
    }
}

/// RGBA pixels, row by row, `SIZE × SIZE`.
pub fn rgba(state: IconState) -> Vec<u8> {
    let [r, g, b] = colour(state);
    let centre = (SIZE as f32 - 1.0) / 2.0;
    let outer = SIZE as f32 / 2.0 - 1.0;
    let mut px = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let d = ((x as f32 - centre).powi(2) + (y as f32 - centre).powi(2)).sqrt();
            let filled = match state {
                // A ring: paused is "off", not a colour of its own only.
                IconState::Paused => d <= outer && d >= outer - 4.0,
                // A disc with a hole in the middle, like a spinner's hub.
                IconState::Working => d <= outer && d >= 4.0,
                _ => d <= outer,
            };
            // One pixel of soft edge so it is not jagged at menu-bar size.
            let alpha = if filled {
                let edge = outer - d;
                if edge < 1.0 {
                    (edge.max(0.0) * 255.0) as u8
                } else {
                    255
                }
            } else {
                0
            };
            px.extend_from_slice(&[r, g, b, alpha]);
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(px: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * SIZE + x) * 4) as usize;
        [px[i], px[i + 1], px[i + 2], px[i + 3]]
    }

    #[test]
    fn each_state_has_its_colour_and_shape() {
        let all = [
            IconState::Healthy,
            IconState::Degraded,
            IconState::Paused,
            IconState::Error,
            IconState::Working,
        ];
        for s in all {
            let px = rgba(s);
            assert_eq!(px.len(), (SIZE * SIZE * 4) as usize);
            assert_eq!(pixel(&px, 0, 0)[3], 0, "{s:?}: corners are transparent");
            let ring = pixel(&px, SIZE / 2, 2);
            assert_eq!(&ring[..3], &colour(s), "{s:?}");
            assert_eq!(ring[3], 255, "{s:?}: the rim is opaque");
        }
        let centre = |s| pixel(&rgba(s), SIZE / 2, SIZE / 2)[3];
        assert_eq!(centre(IconState::Healthy), 255);
        assert_eq!(centre(IconState::Paused), 0, "paused is hollow");
        assert_eq!(centre(IconState::Working), 0, "working has a hub");
        let colours: std::collections::HashSet<_> = all.iter().map(|s| colour(*s)).collect();
        assert_eq!(colours.len(), all.len(), "no two states share a colour");
    }
}
