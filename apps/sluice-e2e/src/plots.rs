//! SVG bar charts of the results, drawn with `plotters`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x7f, 0x7f, 0x7f),
];

type Err = Box<dyn std::error::Error>;

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bars grouped by `groups` (name, one value per series), on a log or linear y axis.
/// `marks`: horizontal marks drawn over a group (group index, value, label).
#[allow(clippy::too_many_arguments)]
pub fn grouped(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    log: bool,
    marks: &[(usize, f64, String)],
) -> Result<(), String> {
    draw(path, title, y_desc, series, groups, log, marks).map_err(|e| format!("{}: {e}", path.display()))
}

#[allow(clippy::too_many_arguments)]
fn draw(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    log: bool,
    marks: &[(usize, f64, String)],
) -> Result<(), Err> {
    let root = SVGBackend::new(path, (900, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let vals: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.1.iter().flatten().copied())
        .chain(marks.iter().map(|m| m.1))
        .filter(|v| *v > 0.0)
        .collect();
    let hi = vals.iter().copied().fold(1e-9, f64::max);
    let lo = vals.iter().copied().fold(f64::MAX, f64::min).min(hi);
    let n = groups.len().max(1) as f64;
    let (plot, legend) = root.split_horizontally(760);
    if log {
        let y0 = 10f64.powf((lo / 2.0).log10().floor());
        let y1 = 10f64.powf((hi * 2.0).log10().ceil());
        let mut c = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n, (y0..y1).log_scale())?;
        c.configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(y_desc)
            .y_label_formatter(&|v| short(*v))
            .draw()?;
        bars(&mut c, series, groups, y0, marks)?;
        labels(&plot, &c, groups, y0)?;
    } else {
        let y1 = hi * 1.2;
        let mut c = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n, 0f64..y1)?;
        c.configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(y_desc)
            .y_label_formatter(&|v| short(*v))
            .draw()?;
        bars(&mut c, series, groups, 0.0, marks)?;
        labels(&plot, &c, groups, 0.0)?;
    }
    for (i, name) in series.iter().enumerate() {
        let y = 60 + 26 * i as i32;
        legend.draw(&Rectangle::new([(4, y), (20, y + 14)], COLORS[i % 4].filled()))?;
        legend.draw(&Text::new(name.to_string(), (26, y), ("sans-serif", 14)))?;
    }
    if !marks.is_empty() {
        let y = 60 + 26 * series.len() as i32;
        legend.draw(&Rectangle::new([(4, y + 6), (20, y + 8)], BLACK.filled()))?;
        legend.draw(&Text::new("target", (26, y), ("sans-serif", 14)))?;
    }
    root.present()?;
    Ok(())
}

fn bars<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    c: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    base: f64,
    marks: &[(usize, f64, String)],
) -> Result<(), Err>
where
    DB::ErrorType: 'static,
{
    let k = series.len().max(1) as f64;
    let w = 0.8 / k;
    for (i, (_, vs)) in groups.iter().enumerate() {
        for (j, v) in vs.iter().enumerate() {
            let Some(v) = v.filter(|v| *v > 0.0) else { continue };
            let x0 = i as f64 + 0.1 + j as f64 * w;
            c.draw_series(std::iter::once(Rectangle::new(
                [(x0, base.max(f64::MIN_POSITIVE)), (x0 + w * 0.92, v)],
                COLORS[j % 4].filled(),
            )))?;
            c.draw_series(std::iter::once(Text::new(
                short(v),
                (x0, v),
                TextStyle::from(("sans-serif", 12).into_font()).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                )),
            )))?;
        }
    }
    for (g, v, label) in marks {
        let x0 = *g as f64 + 0.05;
        c.draw_series(LineSeries::new([(x0, *v), (x0 + 0.9, *v)], BLACK.stroke_width(2)))?;
        c.draw_series(std::iter::once(Text::new(
            label.clone(),
            (x0 + 0.6, *v),
            ("sans-serif", 12),
        )))?;
    }
    Ok(())
}

fn labels<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    area: &DrawingArea<DB, Shift>,
    c: &ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    groups: &[(String, Vec<Option<f64>>)],
    base: f64,
) -> Result<(), Err>
where
    DB::ErrorType: 'static,
{
    for (i, (name, _)) in groups.iter().enumerate() {
        let (x, y) = c.backend_coord(&(i as f64 + 0.5, base.max(f64::MIN_POSITIVE)));
        let style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ));
        area.draw(&Text::new(name.clone(), (x, y + 8), style))?;
    }
    Ok(())
}
