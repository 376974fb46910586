//! Emits a CSRA head onto a `[N, d, h, w]` feature tensor as one fused graph:
//!
//! ```text
//! base   = Gemm(Flatten(GlobalAveragePool(x)), Σ_h W_h, Σ_h b_h)            [N, C]
//! scores = MatMul(W_stacked [H·C, d], Reshape(x, [N, d, h·w])) (+ b)        [N, H·C, h·w]
//! softmax heads (first block):  ReduceSum(Softmax(T·s) · s)   over locations and heads
//! max heads (second block):     ReduceMax(s) over locations, ReduceSum over heads
//! logits = base + λ · (softmax part + max part);  probs = Sigmoid(logits)
//! ```
//!
//! The `Baseline` variant stops after `base`. All ops exist with these exact signatures in
//! opsets 13 to 17, which ONNX Runtime, TensorRT 8.5+ and tract read.

use crate::pb::tensor_proto::DataType;
use csra_core::manifest::OutputNames;

use super::fold::{fold, AttentionHeads};
use super::{FeatureShape, HeadWeights};
use crate::builder::{GraphBuilder, Value};
use crate::error::OnnxError;
use crate::op::Op;
use crate::shape::{i64_from, Dim};

/// The graph outputs a head emission declared.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadOutputs {
    /// `[N, C]` logits.
    pub logits: Value,
    /// `[N, C]` sigmoid probabilities.
    pub probs: Value,
    /// `[N, C, h, w]` attention of the spec's last head, when asked for.
    pub attention: Option<Value>,
}

/// What the attention branch produced.
struct AttentionParts {
    /// `[N, C]` attention logits summed over heads, before λ.
    logits: Value,
    /// Where the spec's last head's attention map comes from.
    last_head: LastHeadSource,
}

/// The group tensor holding the spec's last head, which is the last head of its group.
enum LastHeadSource {
    /// `[N, Hs·C, h·w]` softmax attention of the softmax heads.
    Softmax { attention: Value, heads: usize },
    /// `[N, Hm·C, h·w]` class scores of the max heads.
    Max { scores: Value, heads: usize },
}

/// The score tensor, split into its softmax and max blocks where it has both.
enum ScoreGroups {
    Softmax(Value),
    Max(Value),
    Both(Value, Value),
}

/// Appends the head described by `head` to `features` and declares its outputs under
/// `names`: `logits` and `probs` `[N, C]`, and, when `names.attention` is set, the last head's
/// attention `[N, C, h, w]`.
///
/// The attention map is the head's `s_j` of Eq. 2, exactly as
/// [`csra_core::head::HeadTrace::attention`] reports it: `softmax(T·score)` for finite T, a
/// one-hot at the first highest-scoring location for T = ∞, and the uniform `1/(h·w)` of
/// average pooling for the baseline.
///
/// On error the builder may hold part of the head; discard it.
pub fn emit_head(
    builder: &mut GraphBuilder,
    features: &Value,
    shape: &FeatureShape,
    head: &HeadWeights,
    names: &OutputNames,
) -> Result<HeadOutputs, OnnxError> {
    if head.dim() != shape.channels {
        return Err(OnnxError::FeatureWidth {
            feature: features.name().to_owned(),
            weight_dim: head.dim(),
            feature_dim: shape.channels,
        });
    }
    let folded = fold(head);
    let c = head.num_classes();
    let base_weight = builder.initializer_f32(
        "head.base_weight",
        &[c, shape.channels],
        &folded.base_weight,
    )?;
    let base_bias = match &folded.base_bias {
        Some(bias) => Some(builder.initializer_f32("head.base_bias", &[c], bias)?),
        None => None,
    };
    let pooled = builder.node("head.pooled", Op::new("GlobalAveragePool"), &[features]);
    let pooled = builder.node(
        "head.pooled_flat",
        Op::new("Flatten").int("axis", 1),
        &[&pooled],
    );
    let mut gemm_inputs = vec![&pooled, &base_weight];
    gemm_inputs.extend(base_bias.as_ref());
    let gemm = Op::new("Gemm").int("transB", 1);
    let (logits, last_head) = match &folded.attention {
        None => (builder.node_named(&names.logits, gemm, &gemm_inputs)?, None),
        Some(heads) => {
            let base = builder.node("head.base_logits", gemm, &gemm_inputs);
            let parts = emit_attention(builder, features, shape, c, heads)?;
            let lambda = builder.scalar("head.lambda", head.spec().lambda());
            let weighted = builder.node(
                "head.attention_logits_weighted",
                Op::new("Mul"),
                &[&parts.logits, &lambda],
            );
            let logits = builder.node_named(&names.logits, Op::new("Add"), &[&base, &weighted])?;
            (logits, Some(parts.last_head))
        }
    };
    let probs = builder.node_named(&names.probs, Op::new("Sigmoid"), &[&logits])?;
    let class_shape = [shape.batch.clone(), Dim::Fixed(c)];
    builder.output(&logits, DataType::Float, &class_shape);
    builder.output(&probs, DataType::Float, &class_shape);
    let attention = match &names.attention {
        Some(name) => {
            let map = match last_head {
                Some(source) => emit_attention_map(builder, shape, c, source, name)?,
                None => emit_uniform_map(builder, features, shape, c, name)?,
            };
            let map_shape = [
                shape.batch.clone(),
                Dim::Fixed(c),
                Dim::Fixed(shape.height),
                Dim::Fixed(shape.width),
            ];
            builder.output(&map, DataType::Float, &map_shape);
            Some(map)
        }
        None => None,
    };
    Ok(HeadOutputs {
        logits,
        probs,
        attention,
    })
}

/// The attention branch: every head's scores in one MatMul, then each group's reduction.
fn emit_attention(
    builder: &mut GraphBuilder,
    features: &Value,
    shape: &FeatureShape,
    c: usize,
    heads: &AttentionHeads,
) -> Result<AttentionParts, OnnxError> {
    let softmax_heads = heads.softmax_temperatures.len();
    let rows = (softmax_heads + heads.max_heads) * c;
    let weight =
        builder.initializer_f32("head.score_weight", &[rows, shape.channels], &heads.weight)?;
    let flat_shape = builder.ints(
        "head.features_flat_shape",
        &[0, i64_from(shape.channels), i64_from(shape.locations())],
    );
    let flat = builder.node(
        "head.features_flat",
        Op::new("Reshape"),
        &[features, &flat_shape],
    );
    let mut scores = builder.node("head.scores", Op::new("MatMul"), &[&weight, &flat]);
    if let Some(bias) = &heads.bias {
        let bias = builder.initializer_f32("head.score_bias", &[rows, 1], bias)?;
        scores = builder.node("head.scores_biased", Op::new("Add"), &[&scores, &bias]);
    }
    let groups = match (softmax_heads, heads.max_heads) {
        (_, 0) => ScoreGroups::Softmax(scores),
        (0, _) => ScoreGroups::Max(scores),
        (s, m) => {
            let sizes = builder.ints("head.group_sizes", &[i64_from(s * c), i64_from(m * c)]);
            let [soft, max] = builder.node_multi(
                Op::new("Split").int("axis", 1),
                &[&scores, &sizes],
                ["head.softmax_scores", "head.max_scores"],
            );
            ScoreGroups::Both(soft, max)
        }
    };
    let temperatures = &heads.softmax_temperatures;
    let max_source = |scores: Value| LastHeadSource::Max {
        scores,
        heads: heads.max_heads,
    };
    Ok(match groups {
        ScoreGroups::Softmax(scores) => {
            let (logits, attention) = emit_softmax_heads(builder, &scores, shape, c, temperatures)?;
            AttentionParts {
                logits,
                last_head: LastHeadSource::Softmax {
                    attention,
                    heads: softmax_heads,
                },
            }
        }
        ScoreGroups::Max(scores) => AttentionParts {
            logits: emit_max_heads(builder, &scores, c, heads.max_heads),
            last_head: max_source(scores),
        },
        ScoreGroups::Both(soft, max) => {
            let (soft_logits, attention) =
                emit_softmax_heads(builder, &soft, shape, c, temperatures)?;
            let max_logits = emit_max_heads(builder, &max, c, heads.max_heads);
            let logits = builder.node(
                "head.attention_logits",
                Op::new("Add"),
                &[&soft_logits, &max_logits],
            );
            let last_head = if heads.last_is_max {
                max_source(max)
            } else {
                LastHeadSource::Softmax {
                    attention,
                    heads: softmax_heads,
                }
            };
            AttentionParts { logits, last_head }
        }
    })
}

/// `Σ_h Σ_j softmax(T_h·s)_j · s_j` over the softmax block `[N, Hs·C, h·w]`; returns the
/// `[N, C]` sum and the `[N, Hs·C, h·w]` attention.
fn emit_softmax_heads(
    builder: &mut GraphBuilder,
    scores: &Value,
    shape: &FeatureShape,
    c: usize,
    temperatures: &[f32],
) -> Result<(Value, Value), OnnxError> {
    let heads = temperatures.len();
    let per_row: Vec<f32> = temperatures
        .iter()
        .flat_map(|&t| std::iter::repeat_n(t, c))
        .collect();
    let temperatures = builder.initializer_f32("head.temperatures", &[heads * c, 1], &per_row)?;
    let scaled = builder.node(
        "head.softmax_scaled",
        Op::new("Mul"),
        &[scores, &temperatures],
    );
    let attention = builder.node(
        "head.softmax_attention",
        Op::new("Softmax").int("axis", 2),
        &[&scaled],
    );
    let weighted = builder.node(
        "head.softmax_weighted",
        Op::new("Mul"),
        &[&attention, scores],
    );
    let logits = if heads == 1 {
        reduce_sum(builder, "head.softmax_logits", &weighted, &[2])
    } else {
        // One ReduceSum over locations and heads at once.
        let by_head = reshape(
            builder,
            "head.softmax_weighted_by_head",
            &weighted,
            &[0, i64_from(heads), i64_from(c), i64_from(shape.locations())],
        );
        reduce_sum(builder, "head.softmax_logits", &by_head, &[1, 3])
    };
    Ok((logits, attention))
}

/// `Σ_h max_j s_j` over the max block `[N, Hm·C, h·w]`, as `[N, C]`.
fn emit_max_heads(builder: &mut GraphBuilder, scores: &Value, c: usize, heads: usize) -> Value {
    let pooled = builder.node(
        "head.max_logits",
        Op::new("ReduceMax").ints("axes", &[2]).int("keepdims", 0),
        &[scores],
    );
    if heads == 1 {
        return pooled;
    }
    let by_head = reshape(
        builder,
        "head.max_logits_by_head",
        &pooled,
        &[0, i64_from(heads), i64_from(c)],
    );
    reduce_sum(builder, "head.max_logits_sum", &by_head, &[1])
}

/// The attention map `[N, C, h, w]` of the spec's last head, named `name`.
fn emit_attention_map(
    builder: &mut GraphBuilder,
    shape: &FeatureShape,
    c: usize,
    source: LastHeadSource,
    name: &str,
) -> Result<Value, OnnxError> {
    let map = match source {
        LastHeadSource::Softmax { attention, heads } => {
            last_head_rows(builder, &attention, heads, c)
        }
        LastHeadSource::Max { scores, heads } => {
            let scores = last_head_rows(builder, &scores, heads, c);
            // ArgMax picks the first of equal maxima, as the reference's one-hot does.
            let best = builder.node(
                "head.attention_argmax",
                Op::new("ArgMax").int("axis", 2).int("keepdims", 1),
                &[&scores],
            );
            let locations: Vec<i64> = (0..i64_from(shape.locations())).collect();
            let locations = builder.ints("head.locations", &locations);
            let hit = builder.node("head.attention_hit", Op::new("Equal"), &[&best, &locations]);
            builder.node(
                "head.attention_one_hot",
                Op::new("Cast").int("to", DataType::Float as i64),
                &[&hit],
            )
        }
    };
    let map_shape = builder.ints(
        "head.attention_shape",
        &[
            0,
            i64_from(c),
            i64_from(shape.height),
            i64_from(shape.width),
        ],
    );
    builder.node_named(name, Op::new("Reshape"), &[&map, &map_shape])
}

/// The baseline's attention: average pooling weighs every location `1/(h·w)`.
fn emit_uniform_map(
    builder: &mut GraphBuilder,
    features: &Value,
    shape: &FeatureShape,
    c: usize,
    name: &str,
) -> Result<Value, OnnxError> {
    let weight = builder.initializer_f32(
        "head.uniform_attention",
        &[1, 1, 1, 1],
        &[(1.0 / shape.locations() as f64) as f32],
    )?;
    // The batch size comes from the features, so a dynamic batch works too.
    let feature_shape = builder.node("head.features_shape", Op::new("Shape"), &[features]);
    let zero = builder.ints("head.batch_start", &[0]);
    let one = builder.ints("head.batch_end", &[1]);
    let batch = builder.node(
        "head.batch_size",
        Op::new("Slice"),
        &[&feature_shape, &zero, &one],
    );
    let rest = builder.ints(
        "head.attention_dims",
        &[i64_from(c), i64_from(shape.height), i64_from(shape.width)],
    );
    let map_shape = builder.node(
        "head.attention_shape",
        Op::new("Concat").int("axis", 0),
        &[&batch, &rest],
    );
    builder.node_named(name, Op::new("Expand"), &[&weight, &map_shape])
}

/// The last head's `C` rows of a `[N, heads·C, h·w]` group tensor.
fn last_head_rows(builder: &mut GraphBuilder, group: &Value, heads: usize, c: usize) -> Value {
    if heads == 1 {
        return group.clone();
    }
    let start = builder.ints("head.last_head_start", &[i64_from((heads - 1) * c)]);
    let end = builder.ints("head.last_head_end", &[i64_from(heads * c)]);
    let axis = builder.ints("head.last_head_axis", &[1]);
    builder.node(
        "head.last_head",
        Op::new("Slice"),
        &[group, &start, &end, &axis],
    )
}

fn reshape(builder: &mut GraphBuilder, name: &str, x: &Value, shape: &[i64]) -> Value {
    let shape = builder.ints(&format!("{name}_shape"), shape);
    builder.node(name, Op::new("Reshape"), &[x, &shape])
}

fn reduce_sum(builder: &mut GraphBuilder, name: &str, x: &Value, axes: &[i64]) -> Value {
    let axes = builder.ints(&format!("{name}_axes"), axes);
    builder.node(name, Op::new("ReduceSum").int("keepdims", 0), &[x, &axes])
}
