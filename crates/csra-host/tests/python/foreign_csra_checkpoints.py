#!/usr/bin/env python3
"""Writes CSRA checkpoints as other code bases save them, for tests/import_cli.rs.

    foreign_csra_checkpoints.py OUT_DIR [INPUT.f32 N SIZE]

The network is the official repository's ResNet_CSRA (a torchvision ResNet-18 whose `fc` is
removed, plus `classifier = MHA(...)`), with the head code of the official repository (the
same as mmpretrain's CSRAModule), random but fixed weights and BatchNorm statistics:

- OUT_DIR/official.pth: torch.save(model.state_dict()), 4 heads, 20 classes;
- OUT_DIR/official_ddp.pth: the same weights as DistributedDataParallel saves them ("module.");
- OUT_DIR/mmpretrain.pth: another model (2 heads, 20 VOC classes) under mmpretrain's names
  (backbone.<torchvision name>, head.csra_heads.N.head.weight), saved as mmengine does:
  {"meta": {..., "dataset_meta": {"classes": (...)}}, "state_dict": OrderedDict(...)};
- OUT_DIR/missing_head.pth: official.pth without head 2;
- OUT_DIR/torchvision.pth: a plain torchvision resnet18 state dict (no CSRA head).

With INPUT.f32 (N preprocessed images, float32 [N, 3, SIZE, SIZE], little-endian), also
OUT_DIR/expected.json: {"official": logits [N][20], "mmpretrain": logits [N][20]} of the
reference models in eval mode.
"""

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, ResNet

VOC = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
       "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
       "train", "tvmonitor")


class CSRA(nn.Module):
    """The official head (pipeline/csra.py), verbatim in its arithmetic."""

    def __init__(self, input_dim, num_classes, T, lam):
        super().__init__()
        self.T = T
        self.lam = lam
        self.head = nn.Conv2d(input_dim, num_classes, 1, bias=False)
        self.softmax = nn.Softmax(dim=2)

    def forward(self, x):
        score = self.head(x) / torch.norm(self.head.weight, dim=1, keepdim=True).transpose(0, 1)
        score = score.flatten(2)
        base_logit = torch.mean(score, dim=2)
        if self.T == 99:
            att_logit = torch.max(score, dim=2)[0]
        else:
            score_soft = self.softmax(score * self.T)
            att_logit = torch.sum(score * score_soft, dim=2)
        return base_logit + self.lam * att_logit


class MHA(nn.Module):
    temp_settings = {1: [1], 2: [1, 99], 4: [1, 2, 4, 99], 6: [1, 2, 3, 4, 5, 99],
                     8: [1, 2, 3, 4, 5, 6, 7, 99]}

    def __init__(self, num_heads, lam, input_dim, num_classes):
        super().__init__()
        self.temp_list = self.temp_settings[num_heads]
        self.multi_head = nn.ModuleList([
            CSRA(input_dim, num_classes, self.temp_list[i], lam) for i in range(num_heads)
        ])

    def forward(self, x):
        logit = 0.
        for head in self.multi_head:
            logit += head(x)
        return logit


class ResNet_CSRA(ResNet):
    """The official pipeline/resnet_csra.py, on ResNet-18 and without downloading weights."""

    def __init__(self, num_heads, lam, num_classes, input_dim=512):
        super().__init__(BasicBlock, (2, 2, 2, 2))
        self.fc = nn.Sequential()
        self.classifier = MHA(num_heads, lam, input_dim, num_classes)

    def backbone(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.classifier(self.backbone(x))


def randomised(model, seed):
    """BatchNorm with non-trivial affine parameters and statistics, so a misplaced tensor
    changes the output."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return model.eval()


def mmpretrain_names(state_dict):
    """mmpretrain's ImageClassifier names: ResNet under `backbone.`, CSRAClsHead's modules in
    `head.csra_heads`."""
    renamed = OrderedDict()
    for name, tensor in state_dict.items():
        if name.startswith("classifier.multi_head."):
            renamed["head.csra_heads." + name[len("classifier.multi_head."):]] = tensor
        else:
            renamed["backbone." + name] = tensor
    return renamed


def main():
    out = Path(sys.argv[1])
    torch.manual_seed(0)
    official = randomised(ResNet_CSRA(num_heads=4, lam=0.3, num_classes=20), 1)
    torch.manual_seed(1)
    mm = randomised(ResNet_CSRA(num_heads=2, lam=0.1, num_classes=20), 2)

    state = official.state_dict()
    torch.save(state, out / "official.pth")
    torch.save(OrderedDict(("module." + k, v) for k, v in state.items()), out / "official_ddp.pth")
    meta = {"mmengine_version": "0.10.4", "dataset_meta": {"classes": VOC}, "epoch": 20,
            "iter": 1000, "seed": 0, "experiment_name": "resnet18-csra_1xb16_voc07-448px"}
    torch.save({"meta": meta, "state_dict": mmpretrain_names(mm.state_dict())},
               out / "mmpretrain.pth")
    torch.save(OrderedDict((k, v) for k, v in state.items() if "multi_head.2." not in k),
               out / "missing_head.pth")
    torch.save(torchvision.models.resnet18().state_dict(), out / "torchvision.pth")

    if len(sys.argv) > 2:
        n, size = int(sys.argv[3]), int(sys.argv[4])
        pixels = np.fromfile(sys.argv[2], dtype="<f4").reshape(n, 3, size, size)
        images = torch.from_numpy(pixels.copy())
        with torch.no_grad():
            expected = {"official": official(images).tolist(), "mmpretrain": mm(images).tolist()}
        (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main()
