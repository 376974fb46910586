#!/usr/bin/env python3
"""Plain-PyTorch reference for tests/tests/train_vs_pytorch.rs: continues a csra-host training
run from one of its checkpoints with torch.optim.SGD and the reference models of
scripts/pytorch_reference.py, on the same pictures, and writes the parameters it ends with.

    train_step_reference.py START.npz SAMPLES.json OUT.npz

START.npz holds the checkpoint's tensors under csra-host's names: the parameters, the frozen
BatchNorm statistics and the momentum buffers (`sgd.momentum.<name>`). SAMPLES.json gives the
model (`head`: baseline or csra, `lambda`), the recipe (learning rates, momentum, weight decay,
warm-up, step decay), the epochs to run (`first_epoch`..`end_epoch`, 0-based, one step each:
the samples are one batch) and the samples (`image`: a PNG at the input size, `targets`,
`mask`: 0 where the label is ignored). OUT.npz gets the parameters under csra-host's names;
stdout one JSON line with the loss of each step.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import pytorch_reference as ref  # noqa: E402  (the reference models, one definition)


def csra_name(name, head):
    """csra-host's checkpoint name for a parameter or buffer of the reference model."""
    if name.startswith("backbone."):
        return "backbone.features." + name[len("backbone."):]
    if head == "csra":
        return "head.multi_head.0.head.weight"
    return name.replace("head.", "head.fc.")


def lr_factor(epoch, recipe):
    """The official schedule with one step per epoch: linear warm-up, then step decay."""
    if epoch < recipe["warmup_epochs"]:
        return (epoch + 1) / recipe["warmup_epochs"]
    return recipe["gamma"] ** (epoch // recipe["step_size"])


def main():
    start_path, samples_path, out_path = sys.argv[1:4]
    spec = json.loads(Path(samples_path).read_text())
    start = {k: torch.from_numpy(v) for k, v in np.load(start_path).items()}
    head, recipe = spec["head"], spec["recipe"]
    torch.set_num_threads(2)

    weights = spec["weights"]
    classes = len(spec["samples"][0]["targets"])
    if head == "csra":
        model = ref.CsraMobileNetV2(weights, classes, lam=spec["lambda"])
    else:
        model = ref.BaselineMobileNetV2(weights, classes)
    state = {k: start[csra_name(k, head)] for k in model.state_dict() if "num_batches" not in k}
    model.load_state_dict(state, strict=False)
    model.train()  # BatchNorm stays frozen: the reference models keep it in eval mode

    optimizer = torch.optim.SGD(
        [{"params": model.backbone.parameters(), "lr": recipe["lr_backbone"]},
         {"params": model.head.parameters(), "lr": recipe["lr_head"]}],
        momentum=recipe["momentum"], weight_decay=recipe["weight_decay"])
    for name, p in model.named_parameters():
        optimizer.state[p]["momentum_buffer"] = start["sgd.momentum." + csra_name(name, head)].clone()

    # The network input as the official code makes it from a picture already at the input
    # size: RGB / 127.5 - 1, channels first.
    pictures = [np.asarray(Image.open(s["image"]).convert("RGB"), dtype=np.float32) for s in spec["samples"]]
    x = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2) / 127.5 - 1.0
    y = torch.tensor([s["targets"] for s in spec["samples"]], dtype=torch.float32)
    m = torch.tensor([s["mask"] for s in spec["samples"]], dtype=torch.float32)

    losses = []
    for epoch in range(spec["first_epoch"], spec["end_epoch"]):
        for group, base in zip(optimizer.param_groups, [recipe["lr_backbone"], recipe["lr_head"]]):
            group["lr"] = base * lr_factor(epoch, recipe)
        loss = F.binary_cross_entropy_with_logits(model(x), y, weight=m, reduction="sum") / m.sum().clamp_min(1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    out = {csra_name(k, head): v.detach().numpy() for k, v in model.state_dict().items() if "num_batches" not in k}
    np.savez(out_path, **out)
    print(json.dumps({"losses": losses}))


if __name__ == "__main__":
    main()
