#!/usr/bin/env python3
"""Plain-PyTorch reference trainer: the throughput baseline for `csra-host train`.

Same model and recipe as the default coco-mini run: torchvision MobileNetV2 from the ImageNet
weights in ../shared/data/weights (BatchNorm frozen in eval mode, input x/127.5-1), a CSRA head
with H=1, T=1, lambda=0.1, BCE on logits, SGD (momentum 0.9, weight decay 1e-4, lr 0.1 head /
0.01 backbone), linear warm-up over 2 epochs then x0.1 every 4 epochs, batch 16 at 224x224,
RandomResizedCrop(scale 0.7-1.0) and horizontal flip, decoded in DataLoader workers.

    .venv/bin/python scripts/pytorch_reference.py --epochs 1 --json
    .venv/bin/python scripts/pytorch_reference.py --epochs 1 --channels-last --json

Reports images/s end to end (wall time of the epochs, data waits included) and compute only
(forward, backward and optimizer step, summed per step). Needs torch and torchvision.
"""

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms

DEFAULT_DATA = Path(os.environ.get("CSRA_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


class CocoMultiLabel(torch.utils.data.Dataset):
    """COCO images with a multi-hot target: positive for every category with an instance."""

    def __init__(self, root, split, transform):
        coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
        self.num_classes = len(index)
        self.files = {im["id"]: root / split / im["file_name"] for im in coco["images"]}
        self.ids = sorted(self.files)
        self.labels = {i: set() for i in self.ids}
        for ann in coco["annotations"]:
            self.labels[ann["image_id"]].add(index[ann["category_id"]])
        self.transform = transform

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        image_id = self.ids[i]
        image = Image.open(self.files[image_id]).convert("RGB")
        target = torch.zeros(self.num_classes)
        target[list(self.labels[image_id])] = 1.0
        return self.transform(image), target


class CsraMobileNetV2(nn.Module):
    """MobileNetV2 features plus the official CSRA head (one head, temperature T)."""

    def __init__(self, weights, num_classes, lam=0.1, temperature=1.0):
        super().__init__()
        mobilenet = torchvision.models.mobilenet_v2(num_classes=1000)
        mobilenet.load_state_dict(torch.load(weights, map_location="cpu"))
        self.backbone = mobilenet.features
        self.head = nn.Conv2d(1280, num_classes, 1, bias=False)
        self.lam, self.temperature = lam, temperature

    def forward(self, x):
        # Per-class weight normalisation, then mean (base) plus softmax-weighted (attention) pooling.
        norm = torch.norm(self.head.weight, dim=1, keepdim=True).transpose(0, 1)
        score = (self.head(self.backbone(x)) / norm).flatten(2)
        base = score.mean(dim=2)
        att = (score * torch.softmax(score * self.temperature, dim=2)).sum(dim=2)
        return base + self.lam * att

    def train(self, mode=True):
        super().train(mode)
        # Frozen BatchNorm: running statistics stay, affine parameters still train.
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data directory")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--workers", type=int, default=2, help="DataLoader decoding workers")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.image_size, scale=(0.7, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),  # x/127.5 - 1, as the TF-origin weights expect
    ])
    dataset = CocoMultiLabel(args.data / "coco-mini", "train2017", transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        generator=torch.Generator().manual_seed(args.seed), persistent_workers=args.workers > 0)

    model = CsraMobileNetV2(args.data / "weights" / "mobilenet_v2_imagenet.pth", dataset.num_classes)
    model = model.to(device, memory_format=memory_format).train()
    optimizer = torch.optim.SGD(
        [{"params": model.backbone.parameters(), "lr": 0.01}, {"params": model.head.parameters(), "lr": 0.1}],
        momentum=0.9, weight_decay=1e-4)
    steps_per_epoch, warmup_epochs, step_size = len(loader), 2, 4

    def lr_factor(step):
        epoch = step // steps_per_epoch
        if epoch < warmup_epochs:
            return (step + 1) / (warmup_epochs * steps_per_epoch)
        return 0.1 ** (epoch // step_size)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    step, images, compute_s, losses = 0, 0, 0.0, []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        epoch_loss, epoch_batches = 0.0, 0
        for x, y in loader:
            if args.max_steps is not None and step >= args.max_steps:
                break
            t0 = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sync()
            compute_s += time.perf_counter() - t0
            epoch_loss += loss.item()
            epoch_batches += 1
            images += x.shape[0]
            step += 1
        if epoch_batches:
            losses.append(epoch_loss / epoch_batches)
            if not args.json:
                print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}")
        if args.max_steps is not None and step >= args.max_steps:
            break
    wall_s = time.perf_counter() - start

    result = {
        "device": str(device), "threads": args.threads, "workers": args.workers,
        "channels_last": args.channels_last, "batch_size": args.batch_size, "image_size": args.image_size,
        "epochs": args.epochs, "steps": step, "images": images, "wall_s": round(wall_s, 3),
        "compute_s": round(compute_s, 3), "images_per_s_end_to_end": round(images / wall_s, 2),
        "images_per_s_compute": round(images / compute_s, 2) if compute_s else None,
        "epoch_losses": [round(v, 5) for v in losses], "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{images} images in {wall_s:.1f} s: {result['images_per_s_end_to_end']} img/s end to end, "
              f"{result['images_per_s_compute']} img/s compute only")


if __name__ == "__main__":
    main()
