#!/usr/bin/env python3
"""Writes torchvision reference backbones for tests/torchvision_parity.rs.

    torchvision_features.py OUT_DIR ARCH...

For each ARCH (resnet18, resnet34, resnet50, resnet101, mobilenet_v2), a model built by
torchvision with a fixed seed, whose BatchNorm layers get random but non-trivial affine
parameters and running statistics, and:

- OUT_DIR/ARCH.pth: its state dict (torch.save), before anything below changes it;
- OUT_DIR/ARCH_expected.pth: "input", a fixed random batch [2, 3, 64, 64]; "eval", the final
  feature map in eval mode (ResNet: everything before avgpool; MobileNetV2: `features`);
  "train", the feature map of one train-mode pass on the same input; and "after.<name>" for
  every BatchNorm buffer after that pass (running_mean, running_var, num_batches_tracked).
"""

import sys
from pathlib import Path

import torch
import torchvision


def feature_extractor(arch, model):
    if arch == "mobilenet_v2":
        return model.features
    return torch.nn.Sequential(
        model.conv1, model.bn1, model.relu, model.maxpool,
        model.layer1, model.layer2, model.layer3, model.layer4,
    )


def randomise_batch_norm(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(int(torch.randint(0, 1000, (1,), generator=generator)))


def main():
    out = Path(sys.argv[1])
    for index, arch in enumerate(sys.argv[2:]):
        torch.manual_seed(index)
        generator = torch.Generator().manual_seed(100 + index)
        model = getattr(torchvision.models, arch)()
        randomise_batch_norm(model, generator)
        features = feature_extractor(arch, model)
        torch.save(model.state_dict(), out / f"{arch}.pth")

        expected = {"input": torch.randn(2, 3, 64, 64, generator=generator)}
        model.eval()
        with torch.no_grad():
            expected["eval"] = features(expected["input"])
            model.train()
            expected["train"] = features(expected["input"])
        for name, value in model.state_dict().items():
            if name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
                expected[f"after.{name}"] = value
        torch.save(expected, out / f"{arch}_expected.pth")


if __name__ == "__main__":
    main()
