// SPDX-License-Identifier: MIT OR Apache-2.0
//! The throughput timeline as a self-contained SVG: per contender the per-second median
//! over its runs (thick) and every run (thin), the carrier cut shaded.

use std::fmt::Write as _;

use mptcp_lab::support::median;

use crate::model::{Contender, Results};

const W: f64 = 860.0;
const H: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Receiver-side ceiling over 2 × 20 Mbit/s tbf (Ethernet headers counted), see
/// testing/lab/README.md.
const CEILING: f64 = 37.7;

fn color(c: Contender) -> &'static str {
    match c {
        Contender::Nm => "#c0392b",
        Contender::Mptcpd => "#e67e22",
        Contender::Agent => "#1f6fb4",
    }
}

fn dash(c: Contender) -> &'static str {
    match c {
        Contender::Nm => "6 3",
        Contender::Mptcpd => "2 3",
        Contender::Agent => "none",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The plot, or `None` when no contender has a throughput run.
pub fn timeline(results: &Results) -> Option<String> {
    let runs: Vec<_> = results
        .contenders
        .iter()
        .filter(|c| !c.timelines.is_empty())
        .collect();
    if runs.is_empty() {
        return None;
    }
    let secs = runs
        .iter()
        .flat_map(|c| c.timelines.iter().map(|t| t.mbps.len()))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let ymax_data = runs
        .iter()
        .flat_map(|c| c.timelines.iter().flat_map(|t| t.mbps.iter().copied()))
        .fold(0.0f64, f64::max);
    let ymax = (ymax_data.max(CEILING) / 5.0).ceil() * 5.0 + 5.0;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |s: f64| LEFT + s / secs * pw;
    let y = |v: f64| TOP + ph - v / ymax * ph;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="22" font-size="14" font-weight="bold">MPTCP upload over 2 × {} (receiver side), carrier of {} cut</text>"#,
        LEFT,
        esc(&results.params.rate),
        esc(&results.params.flapped_uplink)
    );
    // The cut window (median over all runs).
    let mut starts: Vec<f64> = runs
        .iter()
        .flat_map(|c| c.timelines.iter().map(|t| t.cut_start_s))
        .collect();
    let mut ends: Vec<f64> = runs
        .iter()
        .flat_map(|c| c.timelines.iter().map(|t| t.cut_end_s))
        .collect();
    let (cs, ce) = (
        median(&mut starts).unwrap_or(0.0),
        median(&mut ends).unwrap_or(0.0),
    );
    let _ = writeln!(
        o,
        r##"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="#f2f2f2"/>"##,
        x(cs),
        x(ce) - x(cs)
    );
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">carrier cut</text>"##,
        (x(cs) + x(ce)) / 2.0,
        TOP + 14.0
    );
    // Grid and axes.
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{v:.0}</text>"##,
            y(v),
            LEFT + pw,
            LEFT - 6.0,
            y(v) + 4.0
        );
        v += 5.0;
    }
    let step = if secs > 40.0 { 10.0 } else { 5.0 };
    let mut s = 0.0;
    while s <= secs + 1e-9 {
        let _ = writeln!(
            o,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{s:.0}</text>"##,
            x(s),
            TOP + ph,
            TOP + ph + 16.0
        );
        s += step;
    }
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the transfer started</text>"#,
        LEFT + pw / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">Mbit/s (per second)</text>"#,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#888" stroke-dasharray="3 3"/><text x="{2:.1}" y="{3:.1}" fill="#666">2-path ceiling ≈ {CEILING}</text>"##,
        y(CEILING),
        LEFT + pw,
        LEFT + pw + 6.0,
        y(CEILING) + 4.0
    );
    // Runs (thin), then medians (thick), each second plotted at its middle.
    let pts = |v: &[f64]| -> String {
        v.iter()
            .enumerate()
            .map(|(i, m)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y(*m)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for c in &runs {
        for t in &c.timelines {
            let _ = writeln!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-opacity="0.3" stroke-width="1"/>"#,
                pts(&t.mbps),
                color(c.contender)
            );
        }
    }
    for (i, c) in runs.iter().enumerate() {
        let n = c.timelines.iter().map(|t| t.mbps.len()).max().unwrap_or(0);
        let med: Vec<f64> = (0..n)
            .map(|k| {
                let mut at_k: Vec<f64> = c
                    .timelines
                    .iter()
                    .filter_map(|t| t.mbps.get(k).copied())
                    .collect();
                median(&mut at_k).unwrap_or(0.0)
            })
            .collect();
        let _ = writeln!(
            o,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/>"#,
            pts(&med),
            color(c.contender),
            dash(c.contender)
        );
        let ly = TOP + ph * 0.4 + i as f64 * 40.0;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            o,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/>"#,
            lx + 28.0,
            color(c.contender),
            dash(c.contender)
        );
        let words: Vec<&str> = c.label.split(' ').collect();
        let (l1, l2) = words.split_at(words.len().min(2));
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" fill="#555" font-size="11">{}</text>"##,
            lx + 34.0,
            ly + 4.0,
            esc(&l1.join(" ")),
            lx + 34.0,
            ly + 18.0,
            esc(&format!(
                "{} (median of {})",
                l2.join(" "),
                c.timelines.len()
            ))
        );
    }
    o.push_str("</svg>\n");
    Some(o)
}
