//! PNG export of a heatmap: exact cells (optionally upscaled by an integer factor, nearest
//! neighbour), a colorbar with its range, and a title (8×8 bitmap font from `font8x8`).

use std::path::Path;

use font8x8::UnicodeFonts;
use image::{Rgba, RgbaImage};
use ndarray::ArrayView2;

use super::RenderError;
use super::colormap::ColorScale;
use super::heatmap::{PoolMode, pool, render};

/// Options of [`write_png`].
#[derive(Debug, Clone)]
pub struct PngOptions {
    /// Colour scale.
    pub scale: ColorScale,
    /// Integer nearest-neighbour upscaling of each cell (1 = one pixel per entry).
    pub upscale: usize,
    /// Largest side in cells before pooling (E15).
    pub max_side: usize,
    /// Pooling used above `max_side`.
    pub pool_mode: PoolMode,
    /// Title lines drawn above the heatmap.
    pub title: Vec<String>,
    /// Draw a colorbar on the right.
    pub colorbar: bool,
}

impl PngOptions {
    /// Exact cells, no upscaling, pooled above 4096 cells per side, colorbar on.
    pub fn new(scale: ColorScale) -> Self {
        Self {
            scale,
            upscale: 1,
            max_side: 4096,
            pool_mode: PoolMode::Max,
            title: Vec::new(),
            colorbar: true,
        }
    }
}

const MARGIN: u32 = 6;
const BAR_WIDTH: u32 = 16;
const TEXT: Rgba<u8> = Rgba([20, 20, 20, 255]);

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn text_width(s: &str) -> u32 {
    8 * s.chars().count() as u32
}

fn draw_text(img: &mut RgbaImage, x: u32, y: u32, s: &str) {
    for (n, c) in s.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let (px, py) = (x + 8 * n as u32 + col, y + row as u32);
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, TEXT);
                    }
                }
            }
        }
    }
}

fn format_tick(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-3 && x.abs() < 1e4 {
        format!("{x:.4}")
    } else {
        format!("{x:.2e}")
    }
}

/// Renders `matrix` to an RGBA image with title and colorbar (see [`write_png`]).
///
/// # Errors
/// [`RenderError::BadSize`] when the image would exceed 32768 pixels on a side.
pub fn render_image(
    matrix: ArrayView2<'_, f32>,
    opts: &PngOptions,
) -> Result<RgbaImage, RenderError> {
    let pooled = pool(matrix, opts.max_side, opts.pool_mode);
    let heat = render(pooled.data.view(), &opts.scale);
    let up = opts.upscale.max(1);
    let (hw, hh) = (heat.width * up, heat.height * up);
    if hw > 32768 || hh > 32768 {
        return Err(RenderError::BadSize {
            rows: matrix.nrows(),
            cols: matrix.ncols(),
            reason: format!("{hw}×{hh} pixels after upscaling by {up}; lower --upscale"),
        });
    }
    let mut title = opts.title.clone();
    if let Some(label) = pooled.label() {
        title.push(label);
    }
    let ticks: Vec<String> = [1.0, 0.5, 0.0]
        .iter()
        .map(|&t| format_tick(opts.scale.value_at(t)))
        .collect();
    let bar_area = if opts.colorbar {
        MARGIN + BAR_WIDTH + 4 + ticks.iter().map(|t| text_width(t)).max().unwrap_or(0)
    } else {
        0
    };
    let title_h = title.len() as u32 * 10;
    let width = (MARGIN + hw as u32 + bar_area + MARGIN)
        .max(title.iter().map(|t| text_width(t)).max().unwrap_or(0) + 2 * MARGIN);
    let height = MARGIN + title_h + (hh as u32).max(if opts.colorbar { 40 } else { 0 }) + MARGIN;
    let mut img = RgbaImage::from_pixel(width, height, Rgba([255, 255, 255, 255]));
    for (n, line) in title.iter().enumerate() {
        draw_text(&mut img, MARGIN, MARGIN + n as u32 * 10, line);
    }
    let (x0, y0) = (MARGIN, MARGIN + title_h);
    for y in 0..hh {
        for x in 0..hw {
            let i = ((y / up) * heat.width + x / up) * 4;
            let px = Rgba([heat.rgba[i], heat.rgba[i + 1], heat.rgba[i + 2], 255]);
            img.put_pixel(x0 + x as u32, y0 + y as u32, px);
        }
    }
    if opts.colorbar {
        let bx = x0 + hw as u32 + MARGIN;
        let bar_h = (hh as u32).max(40);
        for y in 0..bar_h {
            let t = 1.0 - f64::from(y) / f64::from((bar_h - 1).max(1));
            let [r, g, b] = opts.scale.colormap.rgb(t);
            for x in 0..BAR_WIDTH {
                img.put_pixel(bx + x, y0 + y, Rgba([r, g, b, 255]));
            }
        }
        let tx = bx + BAR_WIDTH + 4;
        draw_text(&mut img, tx, y0, &ticks[0]);
        draw_text(&mut img, tx, y0 + bar_h / 2 - 4, &ticks[1]);
        draw_text(&mut img, tx, y0 + bar_h - 8, &ticks[2]);
    }
    Ok(img)
}

/// Writes `matrix` as a PNG heatmap to `path`.
///
/// # Errors
/// [`RenderError::Write`] naming the file when encoding or writing fails;
/// [`RenderError::BadSize`] for images over 32768 pixels on a side.
pub fn write_png(
    path: &Path,
    matrix: ArrayView2<'_, f32>,
    opts: &PngOptions,
) -> Result<(), RenderError> {
    let img = render_image(matrix, opts)?;
    img.save(path).map_err(|source| RenderError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Colormap, ValueScale};

    #[test]
    fn png_has_one_pixel_per_cell_plus_decorations() {
        let a = ndarray::Array2::<f32>::eye(50);
        let scale = ColorScale::fit(Colormap::Viridis, ValueScale::Linear, a.iter().copied());
        let mut opts = PngOptions::new(scale);
        opts.title = vec!["eye".into()];
        let img = render_image(a.view(), &opts).unwrap();
        // The heatmap's top-left cell is the maximum (yellow in viridis).
        let p = img.get_pixel(MARGIN, MARGIN + 10);
        assert_eq!([p[0], p[1], p[2]], Colormap::Viridis.rgb(1.0));
        let p = img.get_pixel(MARGIN + 1, MARGIN + 10);
        assert_eq!([p[0], p[1], p[2]], Colormap::Viridis.rgb(0.0));
        assert!(img.width() >= 50 + MARGIN * 2);
    }

    #[test]
    fn writes_a_readable_file_and_names_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let a = ndarray::array![[0.0_f32, 1.0], [f32::NAN, 0.5]];
        let scale = ColorScale::fit(Colormap::Magma, ValueScale::Linear, a.iter().copied());
        let path = dir.path().join("m.png");
        write_png(&path, a.view(), &PngOptions::new(scale)).unwrap();
        let back = image::open(&path).unwrap();
        assert!(back.width() > 2);
        let bad = dir.path().join("no/such/dir/m.png");
        let err = write_png(&bad, a.view(), &PngOptions::new(scale)).unwrap_err();
        assert!(err.to_string().contains("m.png"));
    }
}
