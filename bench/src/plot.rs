//! The charts: ratios to BuildKit per scenario (the first benchmark), and time against
//! size for rbuild and BuildKit (the scaling run).

use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn font() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let font = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or("no DejaVuSans.ttf (apt install fonts-dejavu-core)")?;
        let font: &'static [u8] = Box::leak(font.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "font".to_string())
    })
    .clone()
}

/// Grouped bars: each builder's median as a ratio to BuildKit's (log scale), per scenario.
pub(crate) fn ratios(
    path: &Path,
    med: &BTreeMap<String, BTreeMap<String, f64>>,
    goals: &[(&str, f64)],
) -> Result<(), String> {
    use plotters::prelude::*;
    font()?;
    let bk = med.get("buildkit").ok_or("no BuildKit results")?;
    let builders: Vec<&str> = ["rbuild", "docker", "buildah"].into_iter().filter(|b| med.contains_key(*b)).collect();
    let scen: Vec<&str> = goals.iter().map(|g| g.0).filter(|k| bk.contains_key(*k)).collect();
    let root = BitMapBackend::new(path, (1400, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = scen.len() as f64;
    let mut c = ChartBuilder::on(&root)
        .caption("time relative to BuildKit (lower is faster; log scale)", ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(90)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n - 0.5, (0.01f64..100f64).log_scale())
        .map_err(|e| e.to_string())?;
    let scen2 = scen.clone();
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(scen.len())
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < scen2.len() {
                scen2[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("ratio to BuildKit")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    let colors = [RGBColor(0xd9, 0x48, 0x01), RGBColor(0x31, 0x82, 0xbd), RGBColor(0x74, 0xc4, 0x76)];
    let w = 0.8 / builders.len() as f64;
    for (bi, b) in builders.iter().enumerate() {
        let m = &med[*b];
        let color = colors[bi % colors.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = scen
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let r = m.get(*k)? / bk.get(*k)?;
                let x0 = i as f64 - 0.4 + bi as f64 * w;
                Some(Rectangle::new([(x0, 0.01), (x0 + w * 0.9, r.max(0.011))], color.filled()))
            })
            .collect();
        c.draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(*b)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    c.draw_series(std::iter::once(PathElement::new(vec![(-0.5, 1.0), (n - 0.5, 1.0)], BLACK.stroke_width(1))))
        .map_err(|e| e.to_string())?
        .label("BuildKit = 1");
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

const RBUILD: RGBColor = RGBColor(0xd9, 0x48, 0x01);
const BUILDKIT: RGBColor = RGBColor(0x31, 0x82, 0xbd);

/// One panel: time (log) against size (log), one line per (builder, scenario).
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    xlabel: &str,
    xs: &[usize],
    series: &[(&str, String, RGBColor, usize)],
    med: &BTreeMap<String, BTreeMap<String, f64>>,
    key: &dyn Fn(&str, usize) -> String,
) -> Result<(), String> {
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|(b, s, _, _)| xs.iter().filter_map(|x| med.get(*b)?.get(&key(s, *x)).copied()))
        .collect();
    let (lo, hi) = vals.iter().fold((f64::INFINITY, 0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    if vals.is_empty() {
        return Ok(());
    }
    let (x0, x1) = (*xs.iter().min().unwrap_or(&1) as f64 * 0.8, *xs.iter().max().unwrap_or(&1) as f64 * 1.25);
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d((x0..x1).log_scale(), (lo * 0.5..hi * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    let fmt = |x: &f64| if *x >= 1000.0 { format!("{:.0}k", x / 1000.0) } else { format!("{x:.0}") };
    c.configure_mesh()
        .x_desc(xlabel)
        .x_label_formatter(&fmt)
        .y_desc("seconds (log)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (b, s, color, shade) in series {
        let pts: Vec<(f64, f64)> =
            xs.iter().filter_map(|x| Some((*x as f64, *med.get(*b)?.get(&key(s, *x))?))).collect();
        // The first scenario of a builder darkest and thickest, the later ones lighter.
        let col = color.mix(1.0 - 0.3 * *shade as f64);
        let style = col.stroke_width(3 - (*shade as u32).min(2));
        let label = format!("{} {s}", if *b == "rbuild" { "rbuild" } else { "BuildKit" });
        c.draw_series(LineSeries::new(pts.clone(), style))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        match shade {
            0 => c.draw_series(pts.iter().map(|p| Circle::new(*p, 5, col.filled()))).map(|_| ()),
            1 => c.draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 6, col.filled()))).map(|_| ()),
            _ => c.draw_series(pts.iter().map(|p| Cross::new(*p, 5, col.stroke_width(2)))).map(|_| ()),
        }
        .map_err(|e| e.to_string())?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Time against context size (no-op, touch, edit1) and against RUN steps (cold, no-op).
pub(crate) fn scaling(
    path: &Path,
    sizes: &[usize],
    steps: &[usize],
    med: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<(), String> {
    font()?;
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(800);
    let mut ctx = Vec::new();
    for (shade, s) in ["noop", "touch", "edit1"].into_iter().enumerate() {
        ctx.push(("rbuild", s.to_string(), RBUILD, shade));
        ctx.push(("buildkit", s.to_string(), BUILDKIT, shade));
    }
    panel(&left, "build context: files", "files in the context (log)", sizes, &ctx, med, &|s, n| {
        format!("ctx{n}.{s}")
    })?;
    let mut st = Vec::new();
    for (shade, s) in ["cold", "noop"].into_iter().enumerate() {
        st.push(("rbuild", s.to_string(), RBUILD, shade));
        st.push(("buildkit", s.to_string(), BUILDKIT, shade));
    }
    panel(&right, "RUN steps", "RUN steps (log)", steps, &st, med, &|s, n| format!("steps{n}.{s}"))?;
    root.present().map_err(|e| e.to_string())
}
