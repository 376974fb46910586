//! `csra-host paper-tables`: the paper's ablations in miniature on voc2007-mini and coco-mini.
//!
//! Every row is a `csra-host train` run and one or more `csra-host eval` reports, made by this
//! same binary as child processes; a run or report that is already there is kept, so an
//! interrupted call resumes where it stopped. The page (`docs/results.md`) and its plots are
//! rewritten from the reports after every run, listing rows not run yet as such.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};
use clap::Args;
use csra_host::data_source::{DataSource, Role};
use csra_host::plot::{write_sweep_chart, Series};

/// `csra-host paper-tables` flags.
#[derive(Debug, Args)]
pub struct PaperTablesArgs {
    /// The shared data folder, holding coco-mini/, voc2007-mini/ and weights/.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Where the runs go. Finished runs and reports are kept, so calling again resumes.
    #[arg(long, default_value = "runs/paper")]
    runs: PathBuf,
    /// The page to write; its PNG plots go beside it.
    #[arg(long, default_value = "docs/results.md")]
    out: PathBuf,
    /// Seeds of the main rows: CSRA H=1 and the GAP baseline on both datasets.
    #[arg(long, default_value_t = 2)]
    seeds: u64,
    /// Seeds of the ablation rows (coco-mini: trained max head, heads, normalisation, λ).
    #[arg(long, default_value_t = 2)]
    ablation_seeds: u64,
    /// Also train and score the VOC main rows (same seeds) with this plain-PyTorch reference
    /// script (`scripts/pytorch_reference.py`): about 10 minutes a run on an idle 2-core CPU.
    #[arg(long, value_name = "SCRIPT")]
    pytorch_reference: Option<PathBuf>,
    /// The Python that runs --pytorch-reference (it needs torch, torchvision, scikit-learn).
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Only rewrite the page from the reports there are; train and evaluate nothing.
    #[arg(long)]
    page_only: bool,
}

/// Epochs of every run: the official recipe's step schedule shortened as the PyTorch
/// reference run of `../shared/data/README.md` does.
const EPOCHS: usize = 12;
/// λ values of the training-free max head on trained baselines (Table 1).
const MAX_LAMBDAS: [f32; 4] = [0.1, 0.2, 0.5, 1.0];
/// λ values of the CSRA H=1 sweep (the λ figure).
const CSRA_LAMBDAS: [f32; 5] = [0.05, 0.1, 0.2, 0.5, 1.0];
/// Head counts of Table 7 (the paper's temperature lists).
const HEAD_COUNTS: [usize; 5] = [1, 2, 4, 6, 8];
/// Head counts of Table 8, as in the paper.
const NORMALISATION_HEADS: [usize; 2] = [2, 4];
/// λ of the ablations: 0.5 collapsed with H=4 on this backbone (data README), 0.1 trains.
const ABLATION_LAMBDA: f32 = 0.1;

/// The two datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// voc2007-mini: trainval → test, the 20 VOC classes.
    Voc,
    /// coco-mini: train2017 → val2017, the 80 COCO classes.
    Coco,
}

impl Set {
    fn key(self) -> &'static str {
        match self {
            Set::Voc => "voc",
            Set::Coco => "coco",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Set::Voc => "voc2007-mini (885 trainval → 600 test)",
            Set::Coco => "coco-mini (208 train2017 → 125 val2017)",
        }
    }

    fn folder(self, data: &Path) -> PathBuf {
        data.join(match self {
            Set::Voc => "voc2007-mini",
            Set::Coco => "coco-mini",
        })
    }
}

/// The head a run trains.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trained {
    /// GAP + FC.
    Baseline,
    /// The max head (`mean + λ·max` with an FC classifier), trained end to end.
    Max(f32),
    /// CSRA with `heads` attention heads, λ, and whether class rows are normalised.
    Csra {
        heads: usize,
        lambda: f32,
        normalize: bool,
    },
}

impl Trained {
    fn csra(heads: usize, lambda: f32) -> Self {
        Self::Csra {
            heads,
            lambda,
            normalize: true,
        }
    }

    fn key(self) -> String {
        match self {
            Trained::Baseline => "baseline".into(),
            Trained::Max(lambda) => format!("max-l{lambda}"),
            Trained::Csra {
                heads,
                lambda,
                normalize,
            } => format!(
                "csra-h{heads}-l{lambda}{}",
                if normalize { "" } else { "-nonorm" }
            ),
        }
    }

    fn flags(self) -> Vec<String> {
        match self {
            Trained::Baseline => vec!["--head".into(), "baseline".into()],
            Trained::Max(lambda) => {
                vec![
                    "--head".into(),
                    "max".into(),
                    "--lambda".into(),
                    lambda.to_string(),
                ]
            }
            Trained::Csra {
                heads,
                lambda,
                normalize,
            } => {
                let mut flags = vec![
                    "--head".into(),
                    "csra".into(),
                    "--heads".into(),
                    heads.to_string(),
                    "--lambda".into(),
                    lambda.to_string(),
                ];
                if !normalize {
                    flags.push("--no-normalize".into());
                }
                flags
            }
        }
    }
}

/// One training run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunSpec {
    set: Set,
    head: Trained,
    seed: u64,
}

impl RunSpec {
    fn name(&self) -> String {
        format!("{}-{}-s{}", self.set.key(), self.head.key(), self.seed)
    }
}

/// One report: a run scored with its own head, or a baseline with the training-free max head.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EvalSpec {
    run: RunSpec,
    /// λ of the training-free max head, or `None` for the run's own head.
    max_lambda: Option<f32>,
}

impl EvalSpec {
    fn file(&self) -> String {
        match self.max_lambda {
            None => "eval.json".into(),
            Some(lambda) => format!("eval-max-l{lambda}.json"),
        }
    }
}

/// Every run, in the order they are made: the main rows first, so a short budget gives the
/// VOC comparison with PyTorch before the ablations.
fn plan(seeds: u64, ablation_seeds: u64) -> Vec<RunSpec> {
    let mut runs = Vec::new();
    for set in [Set::Voc, Set::Coco] {
        for seed in 0..seeds {
            for head in [Trained::csra(1, 0.1), Trained::Baseline] {
                runs.push(RunSpec { set, head, seed });
            }
        }
    }
    for seed in 0..ablation_seeds {
        let mut heads = vec![Trained::Max(0.2)];
        heads.extend(
            HEAD_COUNTS[1..]
                .iter()
                .map(|&h| Trained::csra(h, ABLATION_LAMBDA)),
        );
        heads.extend(NORMALISATION_HEADS.iter().map(|&h| Trained::Csra {
            heads: h,
            lambda: ABLATION_LAMBDA,
            normalize: false,
        }));
        heads.extend(
            CSRA_LAMBDAS
                .iter()
                .filter(|&&l| l != 0.1)
                .map(|&l| Trained::csra(1, l)),
        );
        runs.extend(heads.into_iter().map(|head| RunSpec {
            set: Set::Coco,
            head,
            seed,
        }));
    }
    runs
}

/// The VOC main rows' heads (CSRA H=1 λ=0.1, GAP baseline) as
/// `scripts/pytorch_reference.py --head` names them.
const REFERENCE_HEADS: [&str; 2] = ["csra", "baseline"];

/// The report file of one plain-PyTorch reference run.
fn reference_file(args: &PaperTablesArgs, head: &str, seed: u64) -> PathBuf {
    args.runs.join(format!("pytorch-voc-{head}-s{seed}.json"))
}

/// The reports of a run.
fn evals(run: RunSpec) -> Vec<EvalSpec> {
    let mut evals = vec![EvalSpec {
        run,
        max_lambda: None,
    }];
    if run.head == Trained::Baseline {
        evals.extend(MAX_LAMBDAS.iter().map(|&l| EvalSpec {
            run,
            max_lambda: Some(l),
        }));
    }
    evals
}

/// Runs `csra-host paper-tables`.
pub fn run(args: PaperTablesArgs) -> anyhow::Result<ExitCode> {
    let runs = plan(args.seeds, args.ablation_seeds);
    if !args.page_only {
        check_data(&args.data)?;
        std::fs::create_dir_all(&args.runs)
            .with_context(|| format!("cannot create {}", args.runs.display()))?;
        for (i, run) in runs.iter().enumerate() {
            log::info!("paper-tables: run {}/{}: {}", i + 1, runs.len(), run.name());
            train(&args, *run)?;
            for eval in evals(*run) {
                evaluate(&args, eval)?;
            }
            write_page(&args, &runs)?;
        }
        if let Some(script) = &args.pytorch_reference {
            for seed in 0..args.seeds {
                for head in REFERENCE_HEADS {
                    pytorch_reference(&args, script, head, seed)?;
                    write_page(&args, &runs)?;
                }
            }
        }
    }
    write_page(&args, &runs)?;
    outln!("{}", args.out.display())?;
    Ok(ExitCode::SUCCESS)
}

fn check_data(data: &Path) -> anyhow::Result<()> {
    for needed in [
        "coco-mini",
        "voc2007-mini",
        "weights/mobilenet_v2_imagenet.safetensors",
    ] {
        if !data.join(needed).exists() {
            bail!(
                "{}: missing {needed}; pass the shared data folder with --data",
                data.display()
            );
        }
    }
    Ok(())
}

/// This binary, for the child `train` and `eval` runs.
fn host() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the csra-host executable")?;
    let mut command = Command::new(exe);
    command.arg("-q").stdout(Stdio::null());
    Ok(command)
}

fn run_child(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); fix the cause and run paper-tables again to resume");
    }
    Ok(())
}

/// A JSON file's value; `None` when it is missing or unreadable (a run or report not made yet).
fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Epochs done by the run in `dir`, from its latest checkpoint.
fn epochs_done(dir: &Path) -> Option<usize> {
    let meta = read_json(&dir.join("latest.json"))?;
    usize::try_from(meta["progress"]["epochs_done"].as_u64()?).ok()
}

fn train(args: &PaperTablesArgs, run: RunSpec) -> anyhow::Result<()> {
    let dir = args.runs.join(run.name());
    let mut command = host()?;
    match epochs_done(&dir) {
        Some(done) if done >= EPOCHS => return Ok(()),
        Some(_) => {
            command.arg("train").arg("--resume").arg(&dir);
        }
        None => {
            let weights = args.data.join("weights/mobilenet_v2_imagenet.safetensors");
            command
                .arg("train")
                .arg("--data")
                .arg(run.set.folder(&args.data))
                .args(["--arch", "mobilenet_v2", "--pretrained"])
                .arg(weights)
                .args(["--normalize", "tf", "--freeze-bn", "--image-size", "224"])
                .args(["--batch-size", "16", "--step-size", "4", "--no-val"])
                .args([
                    "--epochs",
                    &EPOCHS.to_string(),
                    "--seed",
                    &run.seed.to_string(),
                ])
                .args(run.head.flags())
                .arg("--out")
                .arg(&dir);
        }
    }
    run_child(command, &format!("training {}", run.name()))
}

fn evaluate(args: &PaperTablesArgs, eval: EvalSpec) -> anyhow::Result<()> {
    let dir = args.runs.join(eval.run.name());
    let report = dir.join(eval.file());
    if report.exists() {
        return Ok(());
    }
    let mut command = host()?;
    command
        .arg("eval")
        .arg(&dir)
        .arg("--data")
        .arg(eval.run.set.folder(&args.data))
        .arg("--report")
        .arg(&report);
    if let Some(lambda) = eval.max_lambda {
        command.args(["--head", "max", "--lambda", &lambda.to_string()]);
    }
    run_child(
        command,
        &format!("evaluating {} ({})", eval.run.name(), eval.file()),
    )
}

/// Trains and scores one VOC main row with the plain-PyTorch reference script, unless its
/// report is there. The report is the script's JSON line, written atomically.
fn pytorch_reference(
    args: &PaperTablesArgs,
    script: &Path,
    head: &str,
    seed: u64,
) -> anyhow::Result<()> {
    let report = reference_file(args, head, seed);
    if report.exists() {
        return Ok(());
    }
    log::info!("paper-tables: PyTorch reference, voc {head}, seed {seed}");
    let what = format!(
        "the PyTorch reference ({} --head {head} --seed {seed})",
        script.display()
    );
    let output = Command::new(&args.python)
        .arg(script)
        .arg("--data")
        .arg(&args.data)
        .args([
            "--dataset",
            "voc",
            "--head",
            head,
            "--seed",
            &seed.to_string(),
        ])
        .args(["--epochs", &EPOCHS.to_string(), "--eval", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {what} with {}", args.python.display()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}); check that {} has torch, torchvision and scikit-learn, then run \
             paper-tables again to resume",
            output.status,
            args.python.display()
        );
    }
    csra_core::fsutil::write_atomic(&report, &output.stdout)
        .with_context(|| format!("cannot write {}", report.display()))
}

/// One mAP (`map` or `max_head_map`, as fractions) of the PyTorch reference's VOC row `head`,
/// over the seeds it was run with (it is slower than ours, so it may have fewer).
fn reference_row(args: &PaperTablesArgs, head: &str, key: &str) -> Row {
    let maps: Vec<f64> = (0..args.seeds)
        .filter_map(|seed| {
            Some(read_json(&reference_file(args, head, seed))?[key].as_f64()? / 100.0)
        })
        .collect();
    Row {
        planned: maps.len().max(1),
        maps,
    }
}

/// A report's mAP and seconds, if it exists.
fn report(args: &PaperTablesArgs, eval: EvalSpec) -> Option<(f64, f64)> {
    let path = args.runs.join(eval.run.name()).join(eval.file());
    let report = read_json(&path)?;
    Some((
        report["metrics"]["map"].as_f64()?,
        report["seconds"].as_f64().unwrap_or(0.0),
    ))
}

/// A report's per-class AP by class name (`None` for a class without positives).
fn per_class(args: &PaperTablesArgs, eval: EvalSpec) -> Option<Vec<(String, Option<f64>)>> {
    let path = args.runs.join(eval.run.name()).join(eval.file());
    let report = read_json(&path)?;
    report["per_class"]
        .as_array()?
        .iter()
        .map(|c| Some((c["class"].as_str()?.to_string(), c["ap"].as_f64())))
        .collect()
}

/// Training seconds of a finished run (the sum of its epochs' wall times).
fn train_seconds(args: &PaperTablesArgs, run: RunSpec) -> Option<f64> {
    let dir = args.runs.join(run.name());
    let meta = read_json(&dir.join("latest.json"))?;
    let history = meta["history"].as_array()?;
    Some(history.iter().filter_map(|e| e["seconds"].as_f64()).sum())
}

/// The mAPs over the seeds of one row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    maps: Vec<f64>,
    planned: usize,
}

impl Row {
    fn mean(&self) -> Option<f64> {
        (!self.maps.is_empty()).then(|| self.maps.iter().sum::<f64>() / self.maps.len() as f64)
    }

    /// Highest minus lowest seed, in mAP points; `None` below two seeds.
    fn spread(&self) -> Option<f64> {
        if self.maps.len() < 2 {
            return None;
        }
        let (lo, hi) = self
            .maps
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
                (lo.min(m), hi.max(m))
            });
        Some(100.0 * (hi - lo))
    }

    /// `44.0 (43.96, 43.99)`, `44.0 (1 seed)`, or `not run yet`.
    fn cell(&self) -> String {
        let Some(mean) = self.mean() else {
            return "not run yet".into();
        };
        let seeds = if self.maps.len() == 1 && self.planned == 1 {
            "1 seed".to_string()
        } else {
            self.maps
                .iter()
                .map(|m| format!("{:.2}", 100.0 * m))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let partial = if self.maps.len() < self.planned {
            format!("; {} of {} seeds", self.maps.len(), self.planned)
        } else {
            String::new()
        };
        format!("{:.1} ({seeds}{partial})", 100.0 * mean)
    }
}

/// The row of `head` on `set`, over the seeds the plan has for it.
fn row(args: &PaperTablesArgs, runs: &[RunSpec], set: Set, head: Trained, max: Option<f32>) -> Row {
    let planned: Vec<RunSpec> = runs
        .iter()
        .copied()
        .filter(|r| r.set == set && r.head == head)
        .collect();
    let maps = planned
        .iter()
        .filter_map(|&run| {
            report(
                args,
                EvalSpec {
                    run,
                    max_lambda: max,
                },
            )
        })
        .map(|(map, _)| map)
        .collect();
    Row {
        maps,
        planned: planned.len(),
    }
}

fn write_page(args: &PaperTablesArgs, runs: &[RunSpec]) -> anyhow::Result<()> {
    let dir = args.out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let page = page(args, runs, dir)?;
    csra_core::fsutil::write_atomic(&args.out, page.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))
}

fn page(args: &PaperTablesArgs, runs: &[RunSpec], dir: &Path) -> anyhow::Result<String> {
    let mut p = String::new();
    let (seconds, done) = runs.iter().fold((0.0, 0), |(s, n), &run| {
        let evals: f64 = evals(run)
            .iter()
            .filter_map(|&e| report(args, e))
            .map(|r| r.1)
            .sum();
        match train_seconds(args, run) {
            Some(t) if epochs_done(&args.runs.join(run.name())) >= Some(EPOCHS) => {
                (s + t + evals, n + 1)
            }
            _ => (s, n),
        }
    });
    writeln!(p, "# The paper's tables in miniature\n")?;
    writeln!(
        p,
        "Written by `csra-host paper-tables` (`./scripts/paper-tables.sh`). **These are small \
         sets on a 2-core CPU, not the paper's full-dataset numbers**: MobileNetV2 (the shipped \
         ImageNet weights, BatchNorm frozen) at 224×224, {EPOCHS} epochs, batch 16, lr 0.01 \
         backbone / 0.1 head, 2 warm-up epochs, ×0.1 every 4 epochs, on voc2007-mini (885 \
         trainval → 600 test images) and coco-mini (208 train2017 → 125 val2017). The paper \
         trains ResNet-101 (and ViTs) at 448 on the full VOC 2007 and COCO. mAP is on the test \
         (VOC) or val2017 (coco-mini) split after the last epoch, in %; each cell gives the \
         mean and, in brackets, the seeds' values or `1 seed`. Seed noise is several points \
         on these sets (about ±4 on coco-mini).\n"
    )?;
    writeln!(
        p,
        "Runs finished: {done} of {}, which took {:.0} minutes of training and evaluation in \
         all.\n",
        runs.len(),
        seconds / 60.0
    )?;
    voc_comparison(args, runs, &mut p)?;
    voc_per_class(args, runs, &mut p)?;
    table1(args, runs, &mut p)?;
    table6(args, runs, &mut p)?;
    table7(args, runs, dir, &mut p)?;
    table8(args, runs, &mut p)?;
    lambda_figure(args, runs, dir, &mut p)?;
    Ok(p)
}

fn voc_comparison(args: &PaperTablesArgs, runs: &[RunSpec], p: &mut String) -> anyhow::Result<()> {
    writeln!(p, "## VOC 2007 in miniature, against plain PyTorch\n")?;
    writeln!(
        p,
        "The official recipe on voc2007-mini. Two plain-PyTorch columns: \
         `scripts/pytorch_reference.py` (torchvision MobileNetV2, the same recipe, \
         augmentation, masked BCE and squash-resized evaluation, scored by scikit-learn) run \
         here by `paper-tables --pytorch-reference` (each cell lists the seeds it ran; it is \
         slower than csra, so it may have fewer), and the reference numbers the issue quotes, \
         from a PyTorch run whose code is not in the repository (seeds 0 and 1).\n"
    )?;
    writeln!(
        p,
        "| model | csra, test mAP | PyTorch, run here | PyTorch, quoted in the issue |"
    )?;
    writeln!(p, "|---|---|---|---|")?;
    let rows = [
        (
            "CSRA H=1, λ=0.1",
            Trained::csra(1, 0.1),
            None,
            ("csra", "map"),
            "44.0 (43.96, 43.99)",
        ),
        (
            "GAP + FC baseline",
            Trained::Baseline,
            None,
            ("baseline", "map"),
            "45.9 (44.66, 47.21)",
        ),
        (
            "baseline + training-free max, λ=0.2",
            Trained::Baseline,
            Some(0.2),
            ("baseline", "max_head_map"),
            "46.9 (46.23, 47.65)",
        ),
    ];
    let mut spreads = Vec::new();
    for (name, head, max, (script_head, key), quoted) in rows {
        let ours = row(args, runs, Set::Voc, head, max);
        let here = reference_row(args, script_head, key);
        writeln!(
            p,
            "| {name} | {} | {} | {quoted} |",
            ours.cell(),
            here.cell()
        )?;
        if let (Some(a), Some(b)) = (ours.spread(), here.spread()) {
            spreads.push(format!("{name}: csra {a:.1}, PyTorch {b:.1}"));
        }
    }
    writeln!(p)?;
    if !spreads.is_empty() {
        // On 600 test images with classes of 1-13 positives, one seed moves a row by points:
        // a mean over two seeds is only as good as this spread.
        writeln!(
            p,
            "Spread over seeds (highest minus lowest, mAP points) — {}.\n",
            spreads.join("; ")
        )?;
    }
    Ok(())
}

/// Per-class AP of the VOC rows against each class's number of trainval images: where CSRA and
/// the baseline differ.
fn voc_per_class(args: &PaperTablesArgs, runs: &[RunSpec], p: &mut String) -> anyhow::Result<()> {
    let heads = [
        (Trained::csra(1, 0.1), None),
        (Trained::Baseline, None),
        (Trained::Baseline, Some(0.2)),
    ];
    // Mean AP per class over the seeds there are, for each of the three rows.
    let mut columns: Vec<std::collections::BTreeMap<String, (f64, usize)>> = Vec::new();
    for (head, max) in heads {
        let mut sums = std::collections::BTreeMap::new();
        for &run in runs.iter().filter(|r| r.set == Set::Voc && r.head == head) {
            for (class, ap) in per_class(
                args,
                EvalSpec {
                    run,
                    max_lambda: max,
                },
            )
            .unwrap_or_default()
            {
                if let Some(ap) = ap {
                    let entry = sums.entry(class).or_insert((0.0, 0));
                    entry.0 += ap;
                    entry.1 += 1;
                }
            }
        }
        columns.push(sums);
    }
    if columns.iter().any(std::collections::BTreeMap::is_empty) {
        return Ok(());
    }
    let trainval = DataSource::detect(&Set::Voc.folder(&args.data), None, Role::Train)?.read()?;
    let positives = trainval.positive_counts();
    writeln!(
        p,
        "Per class (mean AP over the seeds; classes by their number of trainval images):\n"
    )?;
    writeln!(
        p,
        "| class | trainval images | CSRA H=1 | baseline | baseline + max |"
    )?;
    writeln!(p, "|---|---|---|---|---|")?;
    let mut order: Vec<usize> = (0..trainval.classes.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(positives[c]));
    for c in order {
        let name = &trainval.classes.names()[c];
        write!(p, "| {name} | {} |", positives[c])?;
        for column in &columns {
            match column.get(name) {
                Some((sum, n)) => write!(p, " {:.1} |", 100.0 * sum / *n as f64)?,
                None => write!(p, " – |")?,
            }
        }
        writeln!(p)?;
    }
    writeln!(p)?;
    Ok(())
}

fn table1(args: &PaperTablesArgs, runs: &[RunSpec], p: &mut String) -> anyhow::Result<()> {
    writeln!(
        p,
        "## Table 1: the training-free max head on trained GAP baselines\n"
    )?;
    writeln!(
        p,
        "`logit = mean + λ·max` over the locations of the trained baseline's class scores, \
         with no retraining (the paper's \"4 lines of code\"; it fixes λ = 0.2 for \
         MobileNet).\n"
    )?;
    let mut header = "| dataset | baseline |".to_string();
    let mut rule = "|---|---|".to_string();
    for lambda in MAX_LAMBDAS {
        write!(header, " + max, λ={lambda} |")?;
        rule.push_str("---|");
    }
    writeln!(p, "{header}\n{rule}")?;
    for set in [Set::Voc, Set::Coco] {
        write!(
            p,
            "| {} | {} |",
            set.title(),
            row(args, runs, set, Trained::Baseline, None).cell()
        )?;
        for lambda in MAX_LAMBDAS {
            write!(
                p,
                " {} |",
                row(args, runs, set, Trained::Baseline, Some(lambda)).cell()
            )?;
        }
        writeln!(p)?;
    }
    writeln!(p)?;
    Ok(())
}

fn table6(args: &PaperTablesArgs, runs: &[RunSpec], p: &mut String) -> anyhow::Result<()> {
    writeln!(
        p,
        "## Table 6: average pooling, spatial pooling and CSRA (coco-mini)\n"
    )?;
    writeln!(
        p,
        "The paper's spatial-only row (attention without the average) is not a head csra \
         builds; the rows here compare average pooling with its two residual combinations, \
         each trained end to end: average + max pooling (the max head, T = ∞) and average + \
         softmax attention (CSRA, T = 1).\n"
    )?;
    writeln!(p, "| head | average | spatial | val2017 mAP |")?;
    writeln!(p, "|---|---|---|---|")?;
    let rows = [
        ("GAP + FC baseline", Trained::Baseline, "✓", ""),
        ("max head, λ=0.2 (trained)", Trained::Max(0.2), "✓", "max"),
        ("CSRA H=1, λ=0.1", Trained::csra(1, 0.1), "✓", "attention"),
    ];
    for (name, head, average, spatial) in rows {
        let cell = row(args, runs, Set::Coco, head, None).cell();
        writeln!(p, "| {name} | {average} | {spatial} | {cell} |")?;
    }
    writeln!(p)?;
    Ok(())
}

fn table7(
    args: &PaperTablesArgs,
    runs: &[RunSpec],
    dir: &Path,
    p: &mut String,
) -> anyhow::Result<()> {
    writeln!(
        p,
        "## Table 7: the number of attention heads (coco-mini, λ = {ABLATION_LAMBDA})\n"
    )?;
    writeln!(
        p,
        "λ = 0.5 collapsed with H = 4 on this backbone in the reference run; {ABLATION_LAMBDA} \
         trains. The temperatures are the paper's lists (H = 1: T = 1; H = 8: 1…7 and ∞).\n"
    )?;
    let mut header = "|".to_string();
    let mut rule = "|".to_string();
    let mut cells = "|".to_string();
    let mut points = Vec::new();
    for heads in HEAD_COUNTS {
        let r = row(
            args,
            runs,
            Set::Coco,
            Trained::csra(heads, ABLATION_LAMBDA),
            None,
        );
        write!(header, " H = {heads} |")?;
        rule.push_str("---|");
        write!(cells, " {} |", r.cell())?;
        if let Some(mean) = r.mean() {
            points.push((heads as f64, mean));
        }
    }
    writeln!(p, "{header}\n{rule}\n{cells}\n")?;
    let series = [Series {
        name: "CSRA, coco-mini val2017".into(),
        points,
    }];
    plot(
        p,
        dir,
        "heads.png",
        &series,
        "mAP against the number of heads H",
        "H",
    )
}

fn table8(args: &PaperTablesArgs, runs: &[RunSpec], p: &mut String) -> anyhow::Result<()> {
    writeln!(
        p,
        "## Table 8: the classifier normalisation (coco-mini, λ = {ABLATION_LAMBDA})\n"
    )?;
    writeln!(p, "| class rows | H = 2 | H = 4 |")?;
    writeln!(p, "|---|---|---|")?;
    for normalize in [true, false] {
        write!(
            p,
            "| {} |",
            if normalize {
                "normalised"
            } else {
                "not normalised"
            }
        )?;
        for heads in NORMALISATION_HEADS {
            let head = Trained::Csra {
                heads,
                lambda: ABLATION_LAMBDA,
                normalize,
            };
            write!(p, " {} |", row(args, runs, Set::Coco, head, None).cell())?;
        }
        writeln!(p)?;
    }
    writeln!(p)?;
    Ok(())
}

fn lambda_figure(
    args: &PaperTablesArgs,
    runs: &[RunSpec],
    dir: &Path,
    p: &mut String,
) -> anyhow::Result<()> {
    writeln!(p, "## The λ figure\n")?;
    writeln!(
        p,
        "CSRA H = 1 trained with each λ on coco-mini, and the training-free max head with each \
         λ on the trained baselines of both datasets.\n"
    )?;
    writeln!(p, "| λ | CSRA H=1, coco-mini |")?;
    writeln!(p, "|---|---|")?;
    let mut csra = Vec::new();
    for lambda in CSRA_LAMBDAS {
        let r = row(args, runs, Set::Coco, Trained::csra(1, lambda), None);
        writeln!(p, "| {lambda} | {} |", r.cell())?;
        if let Some(mean) = r.mean() {
            csra.push((f64::from(lambda), mean));
        }
    }
    writeln!(p)?;
    let mut series = vec![Series {
        name: "CSRA H=1 (trained), coco-mini".into(),
        points: csra,
    }];
    for set in [Set::Voc, Set::Coco] {
        let points = MAX_LAMBDAS
            .iter()
            .filter_map(|&l| {
                let mean = row(args, runs, set, Trained::Baseline, Some(l)).mean()?;
                Some((f64::from(l), mean))
            })
            .collect();
        series.push(Series {
            name: format!("baseline + max (training-free), {}", set.key()),
            points,
        });
    }
    plot(p, dir, "lambda.png", &series, "mAP against λ", "λ")
}

/// Writes a chart beside the page and links it, or notes that there is nothing to plot yet.
fn plot(
    p: &mut String,
    dir: &Path,
    file: &str,
    series: &[Series],
    title: &str,
    x_desc: &str,
) -> anyhow::Result<()> {
    if series.iter().all(|s| s.points.is_empty()) {
        writeln!(p, "(No finished run to plot yet.)\n")?;
        return Ok(());
    }
    write_sweep_chart(&dir.join(file), series, title, x_desc)?;
    writeln!(p, "![{title}]({file})\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_each_run_once_and_starts_with_the_voc_comparison() {
        let runs = plan(2, 1);
        assert_eq!(plan(2, 2).len(), 8 + 22);
        let mut names: Vec<String> = runs.iter().map(RunSpec::name).collect();
        assert_eq!(
            names[..4],
            [
                "voc-csra-h1-l0.1-s0",
                "voc-baseline-s0",
                "voc-csra-h1-l0.1-s1",
                "voc-baseline-s1"
            ]
        );
        assert!(names.contains(&"coco-csra-h4-l0.1-nonorm-s0".to_string()));
        assert!(names.contains(&"coco-csra-h1-l0.5-s0".to_string()));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "no run is planned twice");
        assert_eq!(count, 8 + 11);
    }

    #[test]
    fn a_row_cell_says_how_many_seeds_it_averages() {
        let row = |maps: Vec<f64>, planned| Row { maps, planned };
        assert_eq!(row(vec![], 2).cell(), "not run yet");
        assert_eq!(row(vec![0.4396, 0.4399], 2).cell(), "44.0 (43.96, 43.99)");
        assert_eq!(row(vec![0.25], 1).cell(), "25.0 (1 seed)");
        assert_eq!(row(vec![0.25], 2).cell(), "25.0 (25.00; 1 of 2 seeds)");
    }

    #[test]
    fn a_pytorch_reference_report_gives_its_row() {
        let runs = tempfile::tempdir().unwrap();
        let args = PaperTablesArgs {
            data: "data".into(),
            runs: runs.path().into(),
            out: "results.md".into(),
            seeds: 2,
            ablation_seeds: 1,
            pytorch_reference: None,
            python: "python3".into(),
            page_only: true,
        };
        // The line scripts/pytorch_reference.py --eval --json prints (mAP in %), trimmed.
        let line = r#"{"head": "baseline", "seed": 0, "map": 43.93, "max_head_map": 43.94}"#;
        std::fs::write(reference_file(&args, "baseline", 0), line).unwrap();
        let cell = |head, key| reference_row(&args, head, key).cell();
        assert_eq!(cell("baseline", "map"), "43.9 (1 seed)");
        assert_eq!(cell("baseline", "max_head_map"), "43.9 (1 seed)");
        let line = r#"{"head": "baseline", "seed": 1, "map": 47.78, "max_head_map": 48.78}"#;
        std::fs::write(reference_file(&args, "baseline", 1), line).unwrap();
        assert_eq!(cell("baseline", "map"), "45.9 (43.93, 47.78)");
        assert_eq!(cell("csra", "map"), "not run yet");
        let spread = |head, key| reference_row(&args, head, key).spread();
        // 47.78 − 43.93 and 48.78 − 43.94, in points; one run has no spread.
        assert!((spread("baseline", "map").unwrap() - 3.85).abs() < 1e-9);
        assert!((spread("baseline", "max_head_map").unwrap() - 4.84).abs() < 1e-9);
        assert_eq!(spread("csra", "map"), None);
    }

    #[test]
    fn trained_heads_pass_the_flags_train_reads() {
        let nonorm = Trained::Csra {
            heads: 2,
            lambda: 0.1,
            normalize: false,
        };
        assert_eq!(
            nonorm.flags().join(" "),
            "--head csra --heads 2 --lambda 0.1 --no-normalize"
        );
        assert_eq!(
            Trained::Max(0.2).flags().join(" "),
            "--head max --lambda 0.2"
        );
    }
}
