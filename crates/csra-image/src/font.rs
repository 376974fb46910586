//! The one font for captions: DejaVu Sans, embedded by the `dejavu` crate, so text renders the
//! same on every machine without fontconfig, freetype or system fonts.

use ab_glyph::FontRef;

/// The embedded font, or `None` if its bytes do not parse (a broken `dejavu` crate).
pub fn sans() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(dejavu::sans::regular()).ok()
}

/// The family name under which [`register_with_plotters`] registers the font.
#[cfg(feature = "plot")]
pub const PLOT_FAMILY: &str = "csra-dejavu-sans";

/// Registers the font with plotters under [`PLOT_FAMILY`] once per process; false if that
/// failed.
#[cfg(feature = "plot")]
pub fn register_with_plotters() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            PLOT_FAMILY,
            plotters::style::FontStyle::Normal,
            dejavu::sans::regular(),
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::Font;

    #[test]
    fn the_embedded_font_parses_and_has_latin_glyphs() {
        let font = sans().unwrap();
        assert_ne!(font.glyph_id('A').0, 0);
        assert_ne!(font.glyph_id('7').0, 0);
    }

    #[cfg(feature = "plot")]
    #[test]
    fn the_embedded_font_registers_with_plotters() {
        assert!(register_with_plotters());
    }
}
