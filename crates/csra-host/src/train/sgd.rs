//! SGD with momentum and weight decay over named parameter groups, with savable state.
//!
//! tch's optimiser wraps libtorch's and cannot hand out its momentum buffers, so a resumed run
//! would restart momentum from zero. This one follows `torch.optim.SGD` (dampening 0, no
//! Nesterov) step for step and saves its buffers in the checkpoint.

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::TrainError;

/// The prefix of momentum buffers in a checkpoint's tensor file.
pub const MOMENTUM_PREFIX: &str = "sgd.momentum.";

/// Parameters whose variable names start with `prefix` train at `base_lr`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Variable-name prefix, e.g. `backbone` or `head`.
    pub prefix: String,
    /// The rate before the schedule's factor.
    pub base_lr: f64,
}

#[derive(Debug)]
struct Param {
    name: String,
    value: Tensor,
    momentum: Tensor,
}

#[derive(Debug)]
struct Group {
    spec: GroupSpec,
    params: Vec<Param>,
}

/// `torch.optim.SGD(momentum, weight_decay)` over the trainable variables of a [`VarStore`].
#[derive(Debug)]
pub struct Sgd {
    momentum: f64,
    weight_decay: f64,
    groups: Vec<Group>,
}

impl Sgd {
    /// Groups every trainable variable of `vs` by the first matching prefix.
    ///
    /// # Errors
    ///
    /// [`TrainError::Optimizer`] when a trainable variable matches no group (it would silently
    /// never train) or a group matches nothing.
    pub fn new(
        vs: &VarStore,
        groups: &[GroupSpec],
        momentum: f64,
        weight_decay: f64,
    ) -> Result<Self, TrainError> {
        let mut variables: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let mut built: Vec<Group> = groups
            .iter()
            .map(|spec| Group {
                spec: spec.clone(),
                params: Vec::new(),
            })
            .collect();
        for (name, value) in variables {
            let group = built
                .iter_mut()
                .find(|g| in_group(&name, &g.spec.prefix))
                .ok_or_else(|| {
                    TrainError::Optimizer(format!(
                        "trainable variable `{name}` belongs to no learning-rate group"
                    ))
                })?;
            let momentum = tch::no_grad(|| value.zeros_like());
            group.params.push(Param {
                name,
                value,
                momentum,
            });
        }
        if let Some(empty) = built.iter().find(|g| g.params.is_empty()) {
            return Err(TrainError::Optimizer(format!(
                "learning-rate group `{}` has no trainable variables",
                empty.spec.prefix
            )));
        }
        Ok(Self {
            momentum,
            weight_decay,
            groups: built,
        })
    }

    /// Each group's prefix and its rate at schedule factor `factor`.
    pub fn learning_rates(&self, factor: f64) -> Vec<(String, f64)> {
        self.groups
            .iter()
            .map(|g| (g.spec.prefix.clone(), g.spec.base_lr * factor))
            .collect()
    }

    /// Clears every gradient before the next backward pass.
    pub fn zero_grad(&mut self) {
        for p in self.groups.iter_mut().flat_map(|g| g.params.iter_mut()) {
            p.value.zero_grad();
        }
    }

    /// One update: `d = g + wd·p`, `buf = μ·buf + d`, `p -= lr·buf`, with `lr = base · factor`.
    pub fn step(&mut self, factor: f64) {
        let (momentum, weight_decay) = (self.momentum, self.weight_decay);
        tch::no_grad(|| {
            for group in &mut self.groups {
                let lr = group.spec.base_lr * factor;
                for p in &mut group.params {
                    let grad = p.value.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let d = grad + &p.value * weight_decay;
                    let _ = p.momentum.g_mul_scalar_(momentum).g_add_(&d);
                    let _ = p.value.g_add_(&(&p.momentum * -lr));
                }
            }
        });
    }

    /// Every parameter's gradient, for checks that look at all of them (AMP's overflow test).
    pub fn gradients(&self) -> Vec<Tensor> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter())
            .map(|p| p.value.grad())
            .filter(Tensor::defined)
            .collect()
    }

    /// The momentum buffers, named [`MOMENTUM_PREFIX`] + variable name, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter())
            .map(|p| {
                (
                    format!("{MOMENTUM_PREFIX}{}", p.name),
                    p.momentum.shallow_clone(),
                )
            })
            .collect()
    }

    /// Restores the momentum buffers saved by [`Sgd::state`].
    ///
    /// # Errors
    ///
    /// [`TrainError::Optimizer`] when a buffer is missing or has the wrong shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
        for p in self.groups.iter_mut().flat_map(|g| g.params.iter_mut()) {
            let key = format!("{MOMENTUM_PREFIX}{}", p.name);
            let saved = tensors.get(&key).ok_or_else(|| {
                TrainError::Optimizer(format!("the checkpoint has no momentum buffer `{key}`"))
            })?;
            if saved.size() != p.momentum.size() {
                return Err(TrainError::Optimizer(format!(
                    "momentum buffer `{key}` has shape {:?}, the model needs {:?}",
                    saved.size(),
                    p.momentum.size()
                )));
            }
            tch::no_grad(|| {
                p.momentum
                    .f_copy_(&saved.to_kind(Kind::Float))
                    .map_err(|e| TrainError::Optimizer(format!("restoring `{key}`: {e}")))
            })?;
        }
        Ok(())
    }
}

/// `head` matches `head.fc.weight` but not `heads.0`.
fn in_group(name: &str, prefix: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Init};
    use tch::Device;

    fn store() -> (VarStore, Tensor, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.sub("backbone").var("w", &[1], Init::Const(1.0));
        let b = root.sub("head").var("w", &[1], Init::Const(2.0));
        (vs, a, b)
    }

    fn groups() -> Vec<GroupSpec> {
        vec![
            GroupSpec {
                prefix: "backbone".into(),
                base_lr: 0.01,
            },
            GroupSpec {
                prefix: "head".into(),
                base_lr: 0.1,
            },
        ]
    }

    /// Two steps of torch.optim.SGD(lr, momentum=0.9, weight_decay=0.1) on loss = 3·w, by hand:
    /// d0 = 3 + 0.1·w0, buf = d0, w1 = w0 − lr·d0; d1 = 3 + 0.1·w1, buf = 0.9·d0 + d1.
    #[test]
    fn matches_torch_sgd_by_hand() {
        let (vs, a, b) = store();
        let mut sgd = Sgd::new(&vs, &groups(), 0.9, 0.1).unwrap();
        for _ in 0..2 {
            sgd.zero_grad();
            ((&a * 3.0).sum(Kind::Float) + (&b * 3.0).sum(Kind::Float)).backward();
            sgd.step(1.0);
        }
        for (w0, lr, t) in [(1.0, 0.01, &a), (2.0, 0.1, &b)] {
            let d0 = 3.0 + 0.1 * w0;
            let w1 = w0 - lr * d0;
            let d1 = 3.0 + 0.1 * w1;
            let w2 = w1 - lr * (0.9 * d0 + d1);
            assert!((t.double_value(&[0]) - w2).abs() < 1e-6, "lr {lr}");
        }
    }

    #[test]
    fn state_round_trips_and_rejects_wrong_shapes() {
        let (vs, a, _) = store();
        let mut sgd = Sgd::new(&vs, &groups(), 0.9, 0.0).unwrap();
        (&a * 5.0).sum(Kind::Float).backward();
        sgd.step(1.0);
        let saved: HashMap<String, Tensor> = sgd
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.copy()))
            .collect();
        let (vs2, _, _) = store();
        let mut fresh = Sgd::new(&vs2, &groups(), 0.9, 0.0).unwrap();
        fresh.load_state(&saved).unwrap();
        let restored = &fresh.state()[0].1;
        assert_eq!(restored.double_value(&[0]), 5.0);

        let mut wrong = saved;
        wrong.insert(
            format!("{MOMENTUM_PREFIX}backbone.w"),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        );
        let err = fresh.load_state(&wrong).unwrap_err().to_string();
        assert!(err.contains("backbone.w") && err.contains("shape"), "{err}");
    }

    #[test]
    fn a_variable_outside_every_group_is_an_error() {
        let vs = VarStore::new(Device::Cpu);
        let _ = vs.root().sub("neck").var("w", &[1], Init::Const(0.0));
        let _ = nn::linear(vs.root().sub("head"), 1, 1, Default::default());
        let err = Sgd::new(&vs, &groups(), 0.9, 0.0).unwrap_err().to_string();
        assert!(err.contains("neck.w"), "{err}");
    }
}
