//! The font of plot labels: DejaVu Sans, embedded by the `dejavu` crate (as `csra_image::font`
//! embeds it for captions), so text renders the same on every machine without fontconfig,
//! freetype or system fonts.

use std::sync::OnceLock;

/// The family name under which the font is registered with plotters.
pub(crate) const FAMILY: &str = "csra-dejavu-sans";

/// Registers the font with plotters under [`FAMILY`] once per process; false if that failed.
pub(crate) fn register_with_plotters() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            FAMILY,
            plotters::style::FontStyle::Normal,
            dejavu::sans::regular(),
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_registers_with_plotters() {
        assert!(register_with_plotters());
    }
}
