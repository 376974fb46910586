#!/usr/bin/env python3
"""Plain-PyTorch reference trainer: the throughput and accuracy baseline for `csra-host train`.

Same model and recipe as the default coco-mini run: torchvision MobileNetV2 from the ImageNet
weights in ../shared/data/weights (BatchNorm frozen in eval mode, input x/127.5-1), a CSRA head
with H=1, T=1, lambda=0.1, BCE on logits, SGD (momentum 0.9, weight decay 1e-4, lr 0.1 head /
0.01 backbone), linear warm-up over 2 epochs then x0.1 every 4 epochs, batch 16 at 224x224,
RandomResizedCrop(scale 0.7-1.0) and horizontal flip, decoded in DataLoader workers.

    .venv/bin/python scripts/pytorch_reference.py --epochs 1 --json
    .venv/bin/python scripts/pytorch_reference.py --epochs 1 --channels-last --json
    .venv/bin/python scripts/pytorch_reference.py --dataset voc --head baseline --epochs 12 --eval --json

Reports images/s end to end (wall time of the epochs, data waits included) and compute only
(forward, backward and optimizer step, summed per step). With --eval it also scores the final
model on the held-out split (coco-mini val2017, voc2007-mini test) after a squash resize: mAP as
scikit-learn's average_precision_score per class, ignored (VOC difficult-only) labels dropped,
classes without a positive skipped; with --head baseline also the training-free max head
(mean + lambda * max of the FC's per-location scores, --max-lambda). --head baseline is
torchvision's GAP + Linear(1280, C) with its bias and no dropout. Needs torch, torchvision and
scikit-learn.
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
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        index = {c["id"]: i for i, c in enumerate(categories)}
        self.classes = [c["name"] for c in categories]
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
        return self.transform(image), target, torch.ones(self.num_classes)


class VocMultiLabel(torch.utils.data.Dataset):
    """VOC images from the ImageSets/Main label files: 1 positive, -1 negative, 0 ignored."""

    def __init__(self, root, split, transform):
        main = root / "ImageSets" / "Main"
        self.classes = sorted(f.name[: -len(f"_{split}.txt")] for f in main.glob(f"*_{split}.txt"))
        self.ids = (main / f"{split}.txt").read_text().split()
        self.num_classes = len(self.classes)
        row = {image_id: i for i, image_id in enumerate(self.ids)}
        # 1 / 0 targets, and a mask that is 0 where the label is ignored.
        self.targets = torch.zeros(len(self.ids), self.num_classes)
        self.masks = torch.ones(len(self.ids), self.num_classes)
        for c, name in enumerate(self.classes):
            for line in (main / f"{name}_{split}.txt").read_text().splitlines():
                image_id, label = line.split()
                self.targets[row[image_id], c] = float(label == "1")
                self.masks[row[image_id], c] = float(label != "0")
        self.root, self.transform = root, transform

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        image = Image.open(self.root / "JPEGImages" / f"{self.ids[i]}.jpg").convert("RGB")
        return self.transform(image), self.targets[i], self.masks[i]


class CsraMobileNetV2(nn.Module):
    """MobileNetV2 features plus the official CSRA head (one head, temperature T)."""

    def __init__(self, weights, num_classes, lam=0.1, temperature=1.0):
        super().__init__()
        self.backbone = mobilenet_features(weights)
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


class BaselineMobileNetV2(CsraMobileNetV2):
    """MobileNetV2 features, global average pooling and one linear layer with a bias.

    A subclass for the frozen-BatchNorm `train()` only; its own head replaces CSRA's.
    """

    def __init__(self, weights, num_classes):
        nn.Module.__init__(self)
        self.backbone = mobilenet_features(weights)
        self.head = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x).mean(dim=(2, 3)))

    def max_head(self, x, lam):
        """The training-free max head: mean + lam * max over locations of the FC's scores."""
        score = torch.einsum("bdhw,cd->bchw", self.backbone(x), self.head.weight).flatten(2)
        return score.mean(dim=2) + lam * score.amax(dim=2) + self.head.bias


def mobilenet_features(weights):
    """torchvision MobileNetV2's feature extractor with the shared ImageNet weights."""
    mobilenet = torchvision.models.mobilenet_v2(num_classes=1000)
    mobilenet.load_state_dict(torch.load(weights, map_location="cpu"))
    return mobilenet.features


def open_split(args, role, transform):
    """The training or held-out split of --dataset."""
    if args.dataset == "voc":
        return VocMultiLabel(args.data / "voc2007-mini", "trainval" if role == "train" else "test", transform)
    return CocoMultiLabel(args.data / "coco-mini", "train2017" if role == "train" else "val2017", transform)


def class_aps(scores, targets, masks):
    """Non-interpolated AP per class (None for a class without a positive), ignored labels dropped."""
    from sklearn.metrics import average_precision_score

    aps = []
    for c in range(targets.shape[1]):
        keep = masks[:, c] > 0
        positive = targets[keep, c].sum() > 0
        aps.append(average_precision_score(targets[keep, c].numpy(), scores[keep, c].numpy()) if positive else None)
    return aps


def mean_ap(aps):
    """Mean over the classes with a positive."""
    scored = [ap for ap in aps if ap is not None]
    return sum(scored) / len(scored)


@torch.no_grad()
def evaluate(model, args, normalize):
    """mAP of the model (and of the training-free max head on a baseline) on the held-out split."""
    transform = transforms.Compose([
        transforms.Resize((args.image_size, args.image_size)),  # the official squash resize
        transforms.ToTensor(),
        normalize,
    ])
    loader = torch.utils.data.DataLoader(
        open_split(args, "eval", transform), batch_size=32, num_workers=args.workers)
    model.eval()
    outputs, targets, masks = {"map": []}, [], []
    for x, y, m in loader:
        outputs["map"].append(model(x))
        if args.head == "baseline":
            outputs.setdefault("max_head_map", []).append(model.max_head(x, args.max_lambda))
        targets.append(y)
        masks.append(m)
    targets, masks = torch.cat(targets), torch.cat(masks)
    aps = {name: class_aps(torch.cat(v), targets, masks) for name, v in outputs.items()}
    result = {name: round(100 * mean_ap(v), 2) for name, v in aps.items()}
    # Per-class AP (0-1) of the trained head, under the split's class names.
    result["per_class"] = [{"class": c, "ap": ap} for c, ap in zip(loader.dataset.classes, aps["map"])]
    return result


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
    p.add_argument("--dataset", choices=["coco", "voc"], default="coco",
                   help="coco-mini train2017 (val2017) or voc2007-mini trainval (test)")
    p.add_argument("--head", choices=["csra", "baseline"], default="csra")
    p.add_argument("--max-lambda", type=float, default=0.2, help="lambda of the training-free max head")
    p.add_argument("--eval", action="store_true", help="score the final model on the held-out split")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

    normalize = transforms.Normalize([0.5] * 3, [0.5] * 3)  # x/127.5 - 1, as the TF-origin weights expect
    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.image_size, scale=(0.7, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ])
    dataset = open_split(args, "train", transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        generator=torch.Generator().manual_seed(args.seed), persistent_workers=args.workers > 0)

    weights = args.data / "weights" / "mobilenet_v2_imagenet.pth"
    if args.head == "baseline":
        model = BaselineMobileNetV2(weights, dataset.num_classes)
    else:
        model = CsraMobileNetV2(weights, dataset.num_classes)
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
        for x, y, m in loader:
            if args.max_steps is not None and step >= args.max_steps:
                break
            t0 = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y, m = y.to(device, non_blocking=True), m.to(device, non_blocking=True)
            # BCE averaged over the labels that are not ignored, as csra-host's trainer does.
            loss = F.binary_cross_entropy_with_logits(model(x), y, weight=m, reduction="sum") / m.sum().clamp_min(1)
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
        "dataset": args.dataset, "head": args.head, "seed": args.seed,
    }
    if args.eval:
        result.update(evaluate(model.to("cpu"), args, normalize))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{images} images in {wall_s:.1f} s: {result['images_per_s_end_to_end']} img/s end to end, "
              f"{result['images_per_s_compute']} img/s compute only")
        if args.eval:
            print(f"held-out mAP {result['map']}" + (f", max head {result['max_head_map']}" if "max_head_map" in result else ""))


if __name__ == "__main__":
    main()
