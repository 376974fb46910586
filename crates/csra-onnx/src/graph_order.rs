//! Graph-wide passes: topological sorting with definition checks, and dead-node pruning.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::pb::{GraphProto, NodeProto};

use crate::error::OnnxError;

/// Every tensor a node reads, including those its subgraphs (`If`, `Loop` bodies) capture from
/// the enclosing scope: those must be computed before the node runs too.
fn reads(node: &NodeProto) -> Vec<&str> {
    let mut names: Vec<&str> = node
        .input
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect();
    for attribute in &node.attribute {
        for graph in attribute.g.iter().chain(&attribute.graphs) {
            names.extend(graph.node.iter().flat_map(reads));
        }
    }
    names
}

/// Orders the nodes so that each comes after the producers of what it reads, keeping the
/// given order where it is already valid, and checks that every read tensor and every graph
/// output is defined.
pub(crate) fn sort_and_check(graph: &mut GraphProto) -> Result<(), OnnxError> {
    let outer: HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(graph.initializer.iter().map(|i| i.name.as_str()))
        .collect();
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, node)| node.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut pending = vec![0usize; graph.node.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (i, node) in graph.node.iter().enumerate() {
        let is_subgraph_local = |name: &str| node_defines_in_subgraph(node, name);
        let mut seen = HashSet::new();
        for name in reads(node) {
            if outer.contains(name) || !seen.insert(name) {
                continue;
            }
            match producer.get(name) {
                Some(&p) => {
                    pending[i] += 1;
                    dependents[p].push(i);
                }
                None if is_subgraph_local(name) => {}
                None => {
                    return Err(OnnxError::UndefinedTensor {
                        node: node_label(node),
                        tensor: name.to_owned(),
                    })
                }
            }
        }
    }
    if let Some(output) = graph
        .output
        .iter()
        .find(|o| !outer.contains(o.name.as_str()) && !producer.contains_key(o.name.as_str()))
    {
        return Err(OnnxError::UndefinedOutput(output.name.clone()));
    }
    let mut ready: BinaryHeap<Reverse<usize>> = pending
        .iter()
        .enumerate()
        .filter(|(_, &n)| n == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if let Some(stuck) = pending.iter().position(|&n| n > 0) {
        return Err(OnnxError::Cycle(node_label(&graph.node[stuck])));
    }
    let mut nodes: Vec<Option<NodeProto>> = std::mem::take(&mut graph.node)
        .into_iter()
        .map(Some)
        .collect();
    graph.node = order.iter().filter_map(|&i| nodes[i].take()).collect();
    Ok(())
}

/// Whether `name` is defined inside one of the node's subgraphs (as an input, initializer or
/// node output there), so it is not a capture from the enclosing graph.
fn node_defines_in_subgraph(node: &NodeProto, name: &str) -> bool {
    node.attribute.iter().any(|attribute| {
        attribute.g.iter().chain(&attribute.graphs).any(|graph| {
            graph.input.iter().any(|i| i.name == name)
                || graph.initializer.iter().any(|i| i.name == name)
                || graph.node.iter().any(|n| {
                    n.output.iter().any(|o| o == name) || node_defines_in_subgraph(n, name)
                })
        })
    })
}

fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} → {}", node.op_type, node.output.join(", "))
    } else {
        node.name.clone()
    }
}

/// Removes the nodes no graph output depends on, then the initializers and value
/// declarations nothing reads any more. Graph inputs stay, being the model's interface, unless
/// they only declared a dropped initializer.
#[cfg(feature = "graft")]
pub(crate) fn prune(graph: &mut GraphProto) {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, node)| node.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut live_nodes = vec![false; graph.node.len()];
    let mut live_tensors: HashSet<String> = HashSet::new();
    let mut stack: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    while let Some(name) = stack.pop() {
        if !live_tensors.insert(name.to_owned()) {
            continue;
        }
        if let Some(&i) = producer.get(name) {
            if !live_nodes[i] {
                live_nodes[i] = true;
                stack.extend(reads(&graph.node[i]));
            }
        }
    }
    let mut live = live_nodes.into_iter();
    graph.node.retain(|_| live.next().unwrap_or(false));
    let dead_initializers: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|i| !live_tensors.contains(&i.name))
        .map(|i| i.name.clone())
        .collect();
    graph
        .initializer
        .retain(|i| !dead_initializers.contains(&i.name));
    // Before IR 4 initializers were also listed as inputs; such an input goes with its data.
    graph.input.retain(|i| !dead_initializers.contains(&i.name));
    graph.value_info.retain(|v| live_tensors.contains(&v.name));
}

#[cfg(test)]
mod tests {
    use crate::pb::{TensorProto, ValueInfoProto};

    use super::*;

    fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            name: name.to_owned(),
            op_type: "Relu".to_owned(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            ..NodeProto::default()
        }
    }

    fn declared(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: name.to_owned(),
            ..ValueInfoProto::default()
        }
    }

    fn graph(nodes: Vec<NodeProto>, outputs: &[&str]) -> GraphProto {
        GraphProto {
            input: vec![declared("x")],
            initializer: vec![TensorProto {
                name: "w".to_owned(),
                ..TensorProto::default()
            }],
            node: nodes,
            output: outputs.iter().map(|o| declared(o)).collect(),
            ..GraphProto::default()
        }
    }

    fn names(graph: &GraphProto) -> Vec<&str> {
        graph.node.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn sorting_moves_consumers_after_producers_and_keeps_valid_order() {
        let mut g = graph(
            vec![
                node("c", &["b"], &["c"]),
                node("a", &["x", "w"], &["a"]),
                node("a2", &["x"], &["a2"]),
                node("b", &["a", "a2"], &["b"]),
            ],
            &["c"],
        );
        sort_and_check(&mut g).unwrap();
        assert_eq!(names(&g), ["a", "a2", "b", "c"]);
    }

    #[test]
    fn undefined_tensors_cycles_and_outputs_are_reported() {
        let mut g = graph(vec![node("a", &["nowhere"], &["a"])], &["a"]);
        let err = sort_and_check(&mut g).unwrap_err();
        assert!(
            matches!(err, OnnxError::UndefinedTensor { ref tensor, .. } if tensor == "nowhere")
        );

        let mut g = graph(
            vec![node("a", &["b"], &["a"]), node("b", &["a"], &["b"])],
            &["a"],
        );
        assert!(matches!(sort_and_check(&mut g), Err(OnnxError::Cycle(_))));

        let mut g = graph(vec![node("a", &["x"], &["a"])], &["missing"]);
        assert!(matches!(
            sort_and_check(&mut g),
            Err(OnnxError::UndefinedOutput(name)) if name == "missing"
        ));
    }

    #[test]
    fn subgraph_captures_count_as_dependencies() {
        let body = GraphProto {
            node: vec![node("inner", &["a"], &["inner"])],
            ..GraphProto::default()
        };
        let mut branch = node("if", &["x"], &["if"]);
        branch.attribute.push(crate::pb::AttributeProto {
            name: "then_branch".to_owned(),
            g: Some(body),
            ..Default::default()
        });
        let mut g = graph(vec![branch, node("a", &["x"], &["a"])], &["if"]);
        sort_and_check(&mut g).unwrap();
        assert_eq!(names(&g), ["a", "if"]);
    }

    #[test]
    #[cfg(feature = "graft")]
    fn pruning_drops_what_no_output_needs() {
        let mut g = graph(
            vec![
                node("a", &["x"], &["a"]),
                node("dead", &["a", "w"], &["dead"]),
                node("b", &["a"], &["b"]),
            ],
            &["b"],
        );
        g.value_info.push(declared("dead"));
        prune(&mut g);
        assert_eq!(names(&g), ["a", "b"]);
        assert!(g.initializer.is_empty(), "only the dead node read `w`");
        assert!(g.value_info.is_empty());
        assert_eq!(g.input.len(), 1, "graph inputs stay");
    }
}
