//! The one font used for plot labels and captions: DejaVu Sans, embedded by the `dejavu` crate,
//! so text renders the same on every machine without fontconfig, freetype or system fonts.

use std::sync::OnceLock;

use ab_glyph::FontRef;

/// The family name under which the font is registered with plotters.
pub(crate) const FAMILY: &str = "csra-dejavu-sans";

/// The embedded font, or `None` if its bytes do not parse (a broken `dejavu` crate).
pub(crate) fn sans() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(dejavu::sans::regular()).ok()
}

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
    use ab_glyph::Font;

    #[test]
    fn the_embedded_font_parses_and_has_latin_glyphs() {
        let font = sans().unwrap();
        assert_ne!(font.glyph_id('A').0, 0);
        assert_ne!(font.glyph_id('7').0, 0);
        assert!(register_with_plotters());
    }
}
