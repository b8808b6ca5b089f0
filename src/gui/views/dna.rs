//! The DNA view: what a block-wise distillation search found and how it got there, drawn
//! from a [`DnaHistory`] alone.
//!
//! - header: the teacher, the budget, the chosen architecture (Σ score, params, MFLOPs,
//!   retrained and random-baseline accuracy) and the top-k alternatives;
//! - stage progress: per block, the distillation loss per epoch and paths rated / total;
//! - per block: the rating table (sortable, thousands of rows drawn lazily), a score
//!   histogram and a cost-vs-score scatter with the Pareto front and the chosen path.
//!
//! Scores are mean|S − T| / std(T) (lower is better). "FLOPs" are multiply-accumulates,
//! as everywhere in wgnas.

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, Legend, Line, MarkerShape, Plot, PlotPoints, Points, VLine};

use super::empty_message;
use crate::dna::files::Rating;
use crate::dna::knapsack::{pareto_front, Budget, Candidate};
use crate::gui::dna_history::{DnaHistory, DnaStage};

/// Bins of the score histogram.
pub const HISTOGRAM_BINS: usize = 30;
/// Height of one rating-table row.
const ROW_HEIGHT: f32 = 18.0;
/// Widths of the table's columns: rank, path, score, params, MFLOPs, front.
const COL_WIDTHS: [f32; 6] = [44.0, 190.0, 80.0, 80.0, 72.0, 44.0];
/// Colour of the chosen path (row, line and marker).
const CHOSEN: Color32 = Color32::from_rgb(230, 120, 20);
/// Colour of the Pareto front.
const FRONT: Color32 = Color32::from_rgb(40, 150, 90);

/// A column the rating table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    /// File order (the path's index in the block's canonical order).
    #[default]
    Index,
    /// The path string.
    Path,
    /// The score (lower is better).
    Score,
    /// Parameters.
    Params,
    /// Multiply-accumulates.
    Flops,
}

impl SortColumn {
    /// The header text.
    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Index => "#",
            SortColumn::Path => "path",
            SortColumn::Score => "score",
            SortColumn::Params => "params",
            SortColumn::Flops => "MFLOPs",
        }
    }
}

/// The cost on the scatter's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostAxis {
    /// Parameters.
    #[default]
    Params,
    /// Multiply-accumulates (in millions).
    Flops,
}

/// What the view derives from one block's ratings, kept until they or the sort change.
#[derive(Debug, Clone, Default)]
struct BlockCache {
    /// (block, column, ascending, history generation) it was made for.
    key: Option<(usize, SortColumn, bool, u64)>,
    /// Row indices in display order.
    order: Vec<usize>,
    /// Rows on the run's Pareto front.
    on_front: Vec<bool>,
    /// The chosen path's row.
    chosen: Option<usize>,
    /// The 2-D fronts (score vs params, score vs flops) as row indices, sorted by cost.
    front_params: Vec<usize>,
    front_flops: Vec<usize>,
}

/// State of the DNA view.
#[derive(Debug, Clone)]
pub struct DnaView {
    /// The selected block (0-based).
    pub block: usize,
    /// The rating table's sort column.
    pub sort: SortColumn,
    /// Whether the table is sorted ascending.
    pub ascending: bool,
    /// The scatter's cost axis.
    pub cost: CostAxis,
    cache: BlockCache,
}

impl Default for DnaView {
    fn default() -> Self {
        DnaView {
            block: 0,
            sort: SortColumn::Index,
            ascending: true,
            cost: CostAxis::Params,
            cache: Default::default(),
        }
    }
}

/// `n` parameters as `1.23 M`, `45.6 k` or `789`.
pub fn format_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1} k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Multiply-accumulates in millions, with enough digits for tiny networks.
pub fn format_mflops(flops: u64) -> String {
    let m = flops as f64 / 1e6;
    if m >= 100.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.3}")
    }
}

/// The budget as text: `≤ 1.20 M params, ≤ 50.000 MFLOPs`, or `none`.
pub fn format_budget(b: &Budget) -> String {
    let mut parts = Vec::new();
    if let Some(p) = b.max_params {
        parts.push(format!("≤ {} params", format_count(p)));
    }
    if let Some(f) = b.max_flops {
        parts.push(format!("≤ {} MFLOPs", format_mflops(f)));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Row indices of `ratings` sorted by `col` (ties by index, so the order is stable).
pub fn sorted_rows(ratings: &[Rating], col: SortColumn, ascending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ratings.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&ratings[a], &ratings[b]);
        let ord = match col {
            SortColumn::Index => a.cmp(&b),
            SortColumn::Path => ra.path.cmp(&rb.path),
            SortColumn::Score => ra.score.total_cmp(&rb.score),
            SortColumn::Params => ra.params.cmp(&rb.params),
            SortColumn::Flops => ra.flops.cmp(&rb.flops),
        };
        let ord = if ascending { ord } else { ord.reverse() };
        ord.then(a.cmp(&b))
    });
    order
}

/// `bins` equal-width bins over the finite scores: (left edges' centres, counts, bin width).
pub fn histogram(scores: &[f64], bins: usize) -> Vec<(f64, usize, f64)> {
    let finite: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    let (Some(lo), Some(hi)) =
        (finite.iter().copied().min_by(f64::total_cmp), finite.iter().copied().max_by(f64::total_cmp))
    else {
        return Vec::new();
    };
    let bins = bins.max(1);
    // All scores equal: one bin of a nominal width around them.
    let width = if hi > lo { (hi - lo) / bins as f64 } else { lo.abs().max(1.0) * 0.01 };
    let mut counts = vec![0usize; bins];
    for s in finite {
        let i = (((s - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts.into_iter().enumerate().map(|(i, c)| (lo + (i as f64 + 0.5) * width, c, width)).collect()
}

/// The 2-D Pareto front of score vs one cost (params when `flops` is false) as row indices.
fn front_2d(ratings: &[Rating], flops: bool) -> Vec<usize> {
    // A limit nobody exceeds makes that cost the front's only cost dimension.
    let budget = if flops {
        Budget { max_params: None, max_flops: Some(u64::MAX) }
    } else {
        Budget { max_params: Some(u64::MAX), max_flops: None }
    };
    let cands: Vec<Candidate> = crate::dna::files::candidates(ratings);
    pareto_front(&cands, &budget).into_iter().map(|c| c.id).collect()
}

impl DnaView {
    /// Row indices of the selected block's table in display order (empty before it is rated).
    pub fn display_order(&mut self, run: &DnaHistory) -> &[usize] {
        self.update_cache(run);
        &self.cache.order
    }

    fn update_cache(&mut self, run: &DnaHistory) {
        let key = (self.block, self.sort, self.ascending, run.generation);
        if self.cache.key == Some(key) {
            return;
        }
        let Some(ratings) = run.block_ratings(self.block) else {
            self.cache = BlockCache { key: Some(key), ..Default::default() };
            return;
        };
        let mut on_front = vec![false; ratings.len()];
        for i in run.front_rows(self.block) {
            on_front[i] = true;
        }
        let chosen = run.chosen_path(self.block).and_then(|p| ratings.iter().position(|r| r.path == p));
        self.cache = BlockCache {
            key: Some(key),
            order: sorted_rows(ratings, self.sort, self.ascending),
            on_front,
            chosen,
            front_params: front_2d(ratings, false),
            front_flops: front_2d(ratings, true),
        };
    }

    /// Draws the view of `run`.
    pub fn ui(&mut self, ui: &mut Ui, run: &DnaHistory) {
        if run.blocks() == 0 {
            empty_message(ui, "This DNA run has no student blocks (student.layers is empty).");
            return;
        }
        self.block = self.block.min(run.blocks() - 1);
        self.update_cache(run);
        egui::ScrollArea::vertical().id_salt("dna_view").show(ui, |ui| {
            for (file, err) in &run.problems {
                ui.colored_label(ui.visuals().error_fg_color, format!("{file}: {err}"));
            }
            header(ui, run);
            ui.separator();
            progress(ui, run);
            ui.separator();
            self.block_ui(ui, run);
        });
    }

    /// The block selector and the selected block's table, histogram and scatter.
    fn block_ui(&mut self, ui: &mut Ui, run: &DnaHistory) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Block").strong());
            for b in 0..run.blocks() {
                ui.selectable_value(&mut self.block, b, format!("Block {}", b + 1));
            }
        });
        self.update_cache(run);
        let b = self.block;
        let Some(ratings) = run.block_ratings(b) else {
            let msg = match run.stage() {
                DnaStage::Rate(k) if k == b + 1 => format!("Block {} is being rated: its ratings are pending.", b + 1),
                _ => format!(
                    "Block {} has no ratings yet (pending: the run is {}); they appear once the block is rated.",
                    b + 1,
                    run.stage().describe()
                ),
            };
            empty_message(ui, &msg);
            return;
        };
        ui.columns(2, |cols| {
            self.table(&mut cols[0], run, ratings);
            self.plots(&mut cols[1], run, ratings);
        });
    }

    /// The rating table: sortable headers, lazily drawn rows.
    fn table(&mut self, ui: &mut Ui, run: &DnaHistory, ratings: &[Rating]) {
        ui.label(RichText::new(format!("Ratings of block {} ({} paths)", self.block + 1, ratings.len())).strong());
        ui.horizontal(|ui| {
            let cols = [SortColumn::Index, SortColumn::Path, SortColumn::Score, SortColumn::Params, SortColumn::Flops];
            for (col, w) in cols.into_iter().zip(COL_WIDTHS) {
                let arrow = match (self.sort == col, self.ascending) {
                    (true, true) => " ▲",
                    (true, false) => " ▼",
                    _ => "",
                };
                let text = RichText::new(format!("{}{arrow}", col.title())).strong();
                let hover = "Sort by this column (click again to reverse)";
                if ui.add_sized([w, ROW_HEIGHT], egui::Button::new(text).frame(false)).on_hover_text(hover).clicked() {
                    if self.sort == col {
                        self.ascending = !self.ascending;
                    } else {
                        (self.sort, self.ascending) = (col, true);
                    }
                }
            }
            ui.add_sized([COL_WIDTHS[5], ROW_HEIGHT], egui::Label::new(RichText::new("front").strong()))
                .on_hover_text("●: on the block's Pareto front (no other path is better in score and cost)");
        });
        // A header click changed the sort: re-sort before drawing the rows.
        self.update_cache(run);
        let cache = &self.cache;
        egui::ScrollArea::vertical().id_salt("dna_ratings").max_height(360.0).auto_shrink([false, true]).show_rows(
            ui,
            ROW_HEIGHT,
            cache.order.len(),
            |ui, range| {
                for (rank, &i) in cache.order[range.clone()].iter().enumerate() {
                    let r = &ratings[i];
                    let chosen = cache.chosen == Some(i);
                    let color = if chosen { Some(CHOSEN) } else { None };
                    let cell = |s: String| {
                        let t = RichText::new(s).monospace();
                        match color {
                            Some(c) => t.color(c).strong(),
                            None => t,
                        }
                    };
                    ui.horizontal(|ui| {
                        let texts = [
                            format!("{}", range.start + rank + 1),
                            r.path.clone(),
                            format!("{:.4}", r.score),
                            format_count(r.params),
                            format_mflops(r.flops),
                            if cache.on_front.get(i).copied().unwrap_or(false) { "●".into() } else { String::new() },
                        ];
                        for (t, w) in texts.into_iter().zip(COL_WIDTHS) {
                            ui.add_sized([w, ROW_HEIGHT], egui::Label::new(cell(t)).truncate());
                        }
                        if chosen {
                            ui.label(RichText::new("◀ chosen").color(CHOSEN));
                        }
                    });
                }
            },
        );
    }

    /// The score histogram and the cost-vs-score scatter of the selected block.
    fn plots(&mut self, ui: &mut Ui, run: &DnaHistory, ratings: &[Rating]) {
        let b = self.block;
        let chosen = self.cache.chosen.map(|i| &ratings[i]);
        ui.label(RichText::new("Score distribution (lower is better)").strong());
        let scores: Vec<f64> = ratings.iter().map(|r| r.score).collect();
        let bars: Vec<Bar> = histogram(&scores, HISTOGRAM_BINS)
            .into_iter()
            .map(|(x, n, w)| Bar::new(x, n as f64).width(w * 0.95))
            .collect();
        Plot::new(("dna_hist", b)).height(150.0).legend(Legend::default()).x_axis_label("score").show(ui, |p| {
            p.bar_chart(BarChart::new("paths", bars));
            if let Some(c) = chosen {
                p.vline(VLine::new("chosen path", c.score).color(CHOSEN).width(2.0));
            }
        });
        ui.horizontal(|ui| {
            ui.label(RichText::new("Cost vs score").strong());
            ui.selectable_value(&mut self.cost, CostAxis::Params, "x = params");
            ui.selectable_value(&mut self.cost, CostAxis::Flops, "x = MFLOPs");
        });
        let cost = |r: &Rating| match self.cost {
            CostAxis::Params => r.params as f64,
            CostAxis::Flops => r.flops as f64 / 1e6,
        };
        let all: Vec<[f64; 2]> = ratings.iter().map(|r| [cost(r), r.score]).collect();
        let front_rows = match self.cost {
            CostAxis::Params => &self.cache.front_params,
            CostAxis::Flops => &self.cache.front_flops,
        };
        let front: Vec<[f64; 2]> = front_rows.iter().map(|&i| [cost(&ratings[i]), ratings[i].score]).collect();
        let x_label = if self.cost == CostAxis::Params { "params" } else { "MFLOPs" };
        Plot::new(("dna_scatter", b))
            .height(220.0)
            .legend(Legend::default())
            .x_axis_label(x_label)
            .y_axis_label("score")
            .show(ui, |p| {
                p.points(Points::new("paths", PlotPoints::from(all)).radius(1.5));
                p.line(Line::new("Pareto front", PlotPoints::from(front)).color(FRONT).width(1.5));
                if let Some(c) = chosen {
                    let pt = vec![[cost(c), c.score]];
                    p.points(
                        Points::new("chosen path", pt)
                            .shape(MarkerShape::Diamond)
                            .radius(6.0)
                            .color(CHOSEN)
                            .filled(true),
                    );
                }
            });
        if chosen.is_none() && run.result.is_none() {
            ui.label(RichText::new("The chosen path is marked once the search has run (pending).").weak());
        }
    }
}

/// Teacher, budget, the chosen architecture and the alternatives.
fn header(ui: &mut Ui, run: &DnaHistory) {
    ui.horizontal(|ui| {
        ui.heading(format!("DNA run {}", run.name()));
        let stage = run.stage();
        let text =
            if stage == DnaStage::Finished { "finished".to_string() } else { format!("pending: {}", stage.describe()) };
        ui.label(RichText::new(text).italics());
    });
    egui::Grid::new("dna_header").num_columns(2).striped(true).show(ui, |ui| {
        // The arch on its own row: with the numbers beside it the row outgrows narrow windows.
        let teacher = run.result.as_ref().map(|r| &r.teacher);
        ui.label("Teacher");
        let arch = teacher.map_or(run.config.teacher.arch.as_str(), |t| t.arch.as_str());
        ui.add(egui::Label::new(RichText::new(arch).monospace()).selectable(true));
        ui.end_row();
        ui.label("");
        match teacher {
            Some(t) => ui.label(format!(
                "test acc {:.2} %, {} params, {} MFLOPs",
                t.test_acc,
                format_count(t.params),
                format_mflops(t.flops)
            )),
            None => {
                let (epochs, acc) = run.teacher_progress();
                let acc = acc
                    .map_or_else(|| "test acc pending".to_string(), |a| format!("test acc {a:.2} % (epoch {epochs})"));
                ui.label(format!("{acc}; params and MFLOPs pending"))
            }
        };
        ui.end_row();
        ui.label("Budget");
        ui.label(format_budget(&run.budget()));
        ui.end_row();
    });
    let Some(result) = &run.result else {
        empty_message(
            ui,
            &format!("No architecture chosen yet: the search is pending (the run is {}).", run.stage().describe()),
        );
        return;
    };
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.label(RichText::new("Chosen architecture").strong());
        ui.add(egui::Label::new(RichText::new(&result.best.arch).monospace().color(CHOSEN)).selectable(true));
        if ui.button("Copy").on_hover_text("Copy the architecture string").clicked() {
            ui.ctx().copy_text(result.best.arch.clone());
        }
    });
    ui.horizontal_wrapped(|ui| {
        let b = &result.best;
        ui.label(format!(
            "Σ score {:.4}, {} params, {} MFLOPs",
            b.score,
            format_count(b.params),
            format_mflops(b.flops)
        ));
        ui.separator();
        match &result.retrain {
            Some(r) => ui.label(format!("retrained: {:.2} % test acc", r.test_acc)),
            None => ui.label(RichText::new("not retrained").weak()),
        };
        if let Some(r) = &result.random {
            ui.separator();
            ui.label(format!("random baseline {}: {:.2} % test acc", r.choice.arch, r.test_acc))
                .on_hover_text(format!("Σ score {:.4}, {} params", r.choice.score, format_count(r.choice.params)));
        }
    });
    if result.alternatives.is_empty() {
        return;
    }
    egui::CollapsingHeader::new(format!("Top {} architectures", result.alternatives.len() + 1))
        .default_open(true)
        .show(ui, |ui| {
            egui::Grid::new("dna_topk").striped(true).num_columns(5).show(ui, |ui| {
                for h in ["rank", "architecture", "Σ score", "params", "MFLOPs"] {
                    ui.strong(h);
                }
                ui.end_row();
                for (i, c) in std::iter::once(&result.best).chain(&result.alternatives).enumerate() {
                    ui.label(format!("{}", i + 1));
                    ui.add(egui::Label::new(RichText::new(&c.arch).monospace()).selectable(true));
                    ui.label(format!("{:.4}", c.score));
                    ui.label(format_count(c.params));
                    ui.label(format_mflops(c.flops));
                    ui.end_row();
                }
            });
        });
}

/// Per block: distillation epochs and loss, paths rated / total; a small loss plot.
fn progress(ui: &mut Ui, run: &DnaHistory) {
    ui.label(RichText::new("Stages").strong());
    ui.columns(2, |cols| {
        egui::Grid::new("dna_progress").striped(true).num_columns(3).show(&mut cols[0], |ui| {
            let (t_epochs, _) = run.teacher_progress();
            ui.label("Teacher");
            let planned = run.config.teacher.epochs;
            let teacher = if run.config.teacher.run.as_os_str().is_empty() {
                format!("trained {t_epochs} / {planned} epochs")
            } else {
                format!("loaded from {}", run.config.teacher.run.display())
            };
            ui.label(teacher);
            ui.label("");
            ui.end_row();
            for b in 0..run.blocks() {
                let losses = run.distill_losses(b);
                ui.label(format!("Student block {}", b + 1));
                let last = losses.last().map_or_else(String::new, |p| format!(", loss {:.4}", p[1]));
                let done = if run.distilled.get(b).copied().unwrap_or(false) { " ●" } else { "" };
                ui.label(format!("distilled {} / {} epochs{last}{done}", losses.len(), run.config.distill.epochs));
                let (rated, total) = (run.rated(b), run.paths_total(b));
                let frac = if total > 0 { rated as f32 / total as f32 } else { 0.0 };
                ui.add(
                    egui::ProgressBar::new(frac).desired_width(180.0).text(format!("rated {rated} / {total} paths")),
                );
                ui.end_row();
            }
            if run.config.retrain.epochs > 0 {
                let (n, acc) = run.retrain_progress();
                ui.label("Retrain");
                let acc = acc.map_or_else(String::new, |a| format!(", test acc {a:.2} %"));
                ui.label(format!("{n} / {} epochs{acc}", run.config.retrain.epochs));
                ui.label("");
                ui.end_row();
            }
        });
        let series: Vec<(String, Vec<[f64; 2]>)> =
            (0..run.blocks()).map(|b| (format!("block {}", b + 1), run.distill_losses(b))).collect();
        let ui = &mut cols[1];
        if series.iter().all(|(_, p)| p.is_empty()) {
            ui.label(RichText::new("Distillation loss: no epoch logged yet (pending).").weak());
            return;
        }
        ui.label("Distillation loss (MSE) per epoch");
        Plot::new("dna_distill").height(110.0).legend(Legend::default()).x_axis_label("epoch").show(ui, |p| {
            for (i, (name, pts)) in series.into_iter().enumerate() {
                p.line(Line::new(name, PlotPoints::from(pts)).color(super::op_color(i + 1)));
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str, score: f64, params: u64, flops: u64) -> Rating {
        Rating { path: path.into(), score, params, flops }
    }

    #[test]
    fn sorting_is_stable_and_reversible() {
        let rs = vec![r("b", 0.5, 10, 3), r("a", 0.2, 30, 1), r("c", 0.5, 20, 2)];
        assert_eq!(sorted_rows(&rs, SortColumn::Score, true), vec![1, 0, 2]);
        assert_eq!(sorted_rows(&rs, SortColumn::Score, false), vec![0, 2, 1]);
        assert_eq!(sorted_rows(&rs, SortColumn::Path, true), vec![1, 0, 2]);
        assert_eq!(sorted_rows(&rs, SortColumn::Params, false), vec![1, 2, 0]);
        assert_eq!(sorted_rows(&rs, SortColumn::Flops, true), vec![1, 2, 0]);
        assert_eq!(sorted_rows(&rs, SortColumn::Index, false), vec![2, 1, 0]);
    }

    #[test]
    fn histogram_counts_every_finite_score() {
        let scores = [0.0, 0.1, 0.5, 1.0, 1.0, f64::NAN];
        let h = histogram(&scores, 10);
        assert_eq!(h.len(), 10);
        assert_eq!(h.iter().map(|b| b.1).sum::<usize>(), 5);
        assert_eq!(h[9].1, 2, "the maximum goes into the last bin");
        assert!((h[0].0 - 0.05).abs() < 1e-12 && (h[0].2 - 0.1).abs() < 1e-12);
        assert_eq!(histogram(&[2.0, 2.0], 30).iter().map(|b| b.1).sum::<usize>(), 2);
        assert!(histogram(&[], 30).is_empty());
    }

    #[test]
    fn the_2d_front_is_the_lower_left_staircase() {
        let rs = vec![r("a", 0.9, 10, 50), r("b", 0.5, 20, 10), r("c", 0.6, 30, 5), r("d", 0.1, 40, 90)];
        assert_eq!(front_2d(&rs, false), vec![0, 1, 3]);
        assert_eq!(front_2d(&rs, true), vec![2, 1, 3]);
    }

    #[test]
    fn counts_and_budgets_read_well() {
        assert_eq!(format_count(789), "789");
        assert_eq!(format_count(45_600), "45.6 k");
        assert_eq!(format_count(1_234_567), "1.23 M");
        assert_eq!(format_mflops(52_000), "0.052");
        assert_eq!(format_budget(&Budget { max_params: None, max_flops: None }), "none");
        assert_eq!(
            format_budget(&Budget { max_params: Some(120_000), max_flops: Some(3_000_000) }),
            "≤ 120.0 k params, ≤ 3.000 MFLOPs"
        );
    }
}
