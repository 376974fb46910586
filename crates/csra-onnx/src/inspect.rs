//! What an ONNX file holds: its interface, opsets, op histogram and size.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::pb::tensor_proto::DataType;
use crate::pb::{GraphProto, ModelProto};

use crate::error::OnnxError;
use crate::model_io::read_model;
use crate::shape::{ShapeDisplay, TensorType};
use crate::tensor_data::element_count;

/// A summary of an ONNX model file, printable with `Display`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_size: u64,
    /// The ONNX IR version.
    pub ir_version: i64,
    /// Imported opsets as (domain, version); the default domain is reported as `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// The producer name and version, e.g. `csra-onnx 0.1.0`.
    pub producer: String,
    /// The runtime inputs (initializers that old files also list as inputs are left out).
    pub inputs: Vec<TensorInfo>,
    /// The outputs.
    pub outputs: Vec<TensorInfo>,
    /// How many top-level nodes use each op type (`domain.Op` outside the default domain).
    pub op_histogram: BTreeMap<String, usize>,
    /// The number of top-level nodes.
    pub node_count: usize,
    /// Floating-point values stored in initializers: the model's parameters.
    pub parameter_count: u64,
    /// The number of initializers of any type.
    pub initializer_count: usize,
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor name.
    pub name: String,
    /// Its declared type and shape, when the file declares one.
    pub tensor_type: Option<TensorType>,
}

/// Reads `path` and summarises it.
pub fn inspect(path: &Path) -> Result<ModelInfo, OnnxError> {
    let model = read_model(path)?;
    let file_size = std::fs::metadata(path)
        .map_err(|source| OnnxError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    let graph = model
        .graph
        .as_ref()
        .ok_or(OnnxError::NoGraph)
        .map_err(|e| e.in_model(path))?;
    Ok(ModelInfo {
        path: path.to_owned(),
        file_size,
        ir_version: model.ir_version,
        opsets: opsets(&model),
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_owned(),
        inputs: runtime_inputs(graph),
        outputs: graph.output.iter().map(tensor_info).collect(),
        op_histogram: op_histogram(graph),
        node_count: graph.node.len(),
        parameter_count: graph
            .initializer
            .iter()
            .filter(|t| is_floating(t.data_type))
            .map(element_count)
            .fold(0, u64::saturating_add),
        initializer_count: graph.initializer.len(),
    })
}

/// How many nodes of the graph (not its subgraphs) use each op type.
pub fn op_histogram(graph: &GraphProto) -> BTreeMap<String, usize> {
    let mut histogram = BTreeMap::new();
    for node in &graph.node {
        let key = if node.domain.is_empty() || node.domain == "ai.onnx" {
            node.op_type.clone()
        } else {
            format!("{}.{}", node.domain, node.op_type)
        };
        *histogram.entry(key).or_insert(0) += 1;
    }
    histogram
}

fn opsets(model: &ModelProto) -> Vec<(String, i64)> {
    model
        .opset_import
        .iter()
        .map(|o| {
            let domain = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            (domain.to_owned(), o.version)
        })
        .collect()
}

fn runtime_inputs(graph: &GraphProto) -> Vec<TensorInfo> {
    let initializers: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(tensor_info)
        .collect()
}

fn tensor_info(info: &crate::pb::ValueInfoProto) -> TensorInfo {
    TensorInfo {
        name: info.name.clone(),
        tensor_type: TensorType::of(info),
    }
}

fn is_floating(data_type: i32) -> bool {
    matches!(
        DataType::try_from(data_type),
        Ok(DataType::Float | DataType::Float16 | DataType::Double | DataType::Bfloat16)
    )
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tensor_type {
            None => write!(f, "{} (no declared type)", self.name),
            Some(t) => {
                write!(f, "{} {}", self.name, t.elem_type.as_str_name())?;
                match &t.shape {
                    Some(shape) => write!(f, " {}", ShapeDisplay(shape)),
                    None => f.write_str(" (no declared shape)"),
                }
            }
        }
    }
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{d} {v}"))
            .collect();
        writeln!(f, "{}", self.path.display())?;
        writeln!(
            f,
            "  size        {} bytes ({:.1} MiB)",
            self.file_size,
            self.file_size as f64 / (1024.0 * 1024.0)
        )?;
        writeln!(f, "  IR version  {}", self.ir_version)?;
        writeln!(f, "  opsets      {}", opsets.join(", "))?;
        writeln!(f, "  producer    {}", self.producer)?;
        for input in &self.inputs {
            writeln!(f, "  input       {input}")?;
        }
        for output in &self.outputs {
            writeln!(f, "  output      {output}")?;
        }
        writeln!(
            f,
            "  parameters  {} in {} initializers",
            self.parameter_count, self.initializer_count
        )?;
        let mut ops: Vec<(&String, &usize)> = self.op_histogram.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let ops: Vec<String> = ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
        write!(f, "  nodes       {} ({})", self.node_count, ops.join(", "))
    }
}
