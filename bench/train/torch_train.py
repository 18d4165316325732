#!/usr/bin/python3
# torch_train.py: the PyTorch peer of `vitrine train`: the same residual network, augmentation,
# optimiser, schedule, batch size, epochs and split (read from `vitrine train --split-out`), timed
# the same way (training loop only, images/s per epoch). Then retrieval precision@10 on held-out
# items (query: a held-out item; catalog: all items; hit: same articleType, and same articleType and
# baseColour), for the PyTorch model and, with --vitrine-model, for vitrine's exported ONNX model
# evaluated by the same code on the same preprocessed photos.
import argparse
import csv
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_torch_eval  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load_items(a):
    split = [l.rstrip('\n').split('\t') for l in open(a.split)]
    rows = {}
    with open(a.meta, newline='') as f:
        for r in csv.DictReader(f):
            rows[r['id']] = r
    heads = a.labels.split(',')
    ids = [s[0] for s in split]
    is_val = np.array([s[1] == 'val' for s in split])
    labels = np.full((len(ids), len(heads)), -1, dtype=np.int64)
    vocabs = []
    for h, col in enumerate(heads):
        vals = [rows.get(i, {}).get(col) or None for i in ids]
        counts = {}
        for v in vals:
            if v:
                counts[v] = counts.get(v, 0) + 1
        kept = sorted([v for v, c in counts.items() if c >= a.min_count], key=lambda v: (-counts[v], v))
        folded = len(kept) < len(counts)
        idx = {v: k for k, v in enumerate(kept)}
        for i, v in enumerate(vals):
            if v:
                labels[i, h] = idx.get(v, len(kept))
        vocabs.append(kept + (['other'] if folded else []))
    return ids, is_val, labels, heads, vocabs


def fit(img, size, mode, aspect):
    img = img.convert('RGB')
    if aspect > 0:
        img = img.resize((max(1, round(img.height * aspect)), img.height), Image.BILINEAR)
    if mode == 'letterbox':
        s = max(img.width, img.height)
        sq = Image.new('RGB', (s, s), (255, 255, 255))
        sq.paste(img, ((s - img.width) // 2, (s - img.height) // 2))
        img = sq
    return img.resize((size, size), Image.BILINEAR, reducing_gap=None)


def basic_block(cin, cout, stride):
    return Block(cin, cout, stride)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.b2.weight)
        self.sc = None
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (self.sc(x) if self.sc is not None else x))


class Net(nn.Module):
    """The vitrine residual family (src/nn/train_run.c build_model)."""

    def __init__(self, size, width, depth, embed, classes, dropout):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        if size >= 128:
            layers.append(nn.MaxPool2d(3, 2, 1))
        c = width
        for s in range(4):
            for b in range(depth):
                layers.append(basic_block(c, width << s, 2 if s > 0 and b == 0 else 1))
                c = width << s
        self.body = nn.Sequential(*layers)
        self.emb = nn.Linear(c, embed)
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleList([nn.Linear(embed, k) for k in classes])
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        e = self.emb(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))
        d = self.drop(e)
        return e, [h(d) for h in self.heads]


class Aug(torch.utils.data.Dataset):
    def __init__(self, cache, labels, size, augment):
        self.cache, self.labels, self.augment = cache, labels, augment
        self.tf = T.Compose([T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
                             T.RandomRotation(10, fill=255), T.RandomHorizontalFlip(),
                             T.ColorJitter(0.2, 0.2, 0.2)])

    def __len__(self):
        return len(self.cache)

    def __getitem__(self, i):
        x = self.cache[i]
        if self.augment:
            x = self.tf(x)
        return x, self.labels[i]


def normalise(xb):
    return (xb.float() / 255.0 - MEAN) / STD


def p_at_10(emb, labels, is_val, ha, hc):
    emb = F.normalize(emb, dim=1)
    q = np.nonzero(is_val)[0]
    sims = emb[q] @ emb.T
    sims[torch.arange(len(q)), torch.from_numpy(q)] = -float('inf')
    top = sims.topk(10, dim=1).indices.numpy()
    la = labels[:, ha]
    ok = la[q] >= 0
    same = la[top] == la[q][:, None]
    p1 = same[ok].mean()
    p2 = float('nan')
    if hc is not None:
        lc = labels[:, hc]
        p2 = (same & (lc[top] == lc[q][:, None]) & (lc[q][:, None] >= 0))[ok].mean()
    return p1, p2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', required=True)
    ap.add_argument('--meta', required=True)
    ap.add_argument('--split', required=True)
    ap.add_argument('--labels', default='articleType,baseColour,gender')
    ap.add_argument('--min-count', type=int, default=10)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--fit', default='letterbox')
    ap.add_argument('--src-aspect', type=float, default=0)
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--depth', type=int, default=1)
    ap.add_argument('--embed', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--warmup', type=float, default=1)
    ap.add_argument('--label-smoothing', type=float, default=0.1)
    ap.add_argument('--dropout', type=float, default=0.1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--vitrine-model')
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    ids, is_val, labels, heads, vocabs = load_items(a)
    t0 = time.time()
    cache = torch.stack([torch.from_numpy(np.array(fit(Image.open(os.path.join(a.images, i + '.jpg')), a.size, a.fit,
                                                          a.src_aspect))).permute(2, 0, 1).contiguous() for i in ids])
    print(f'decoded {len(ids)} photos in {time.time() - t0:.1f} s', file=sys.stderr)
    tr = np.nonzero(~is_val)[0]
    net = Net(a.size, a.width, a.depth, a.embed, [len(v) for v in vocabs], a.dropout)
    decay = [p for n, p in net.named_parameters() if p.dim() > 1]
    nodecay = [p for n, p in net.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.wd}, {'params': nodecay, 'weight_decay': 0}], lr=a.lr)
    steps = len(tr) // a.batch
    total, warm = steps * a.epochs, int(a.warmup * steps + 0.5)

    def lr_at(s):
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    ds = Aug(cache[tr], torch.from_numpy(labels[tr]), a.size, True)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.workers,
                                     persistent_workers=a.workers > 0)
    lossf = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing, ignore_index=-1)
    rates = []
    for ep in range(a.epochs):
        net.train()
        t1 = time.time()
        n = 0
        for xb, yb in dl:
            e, outs = net(normalise(xb))
            loss = sum(lossf(o, yb[:, h]) for h, o in enumerate(outs))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n += xb.shape[0]
        dt = time.time() - t1
        rates.append(n / dt)
        print(f'torch epoch {ep + 1}/{a.epochs} loss {loss.item():.4f} {n / dt:.1f} img/s {dt:.1f} s', file=sys.stderr)
    net.eval()
    with torch.no_grad():
        embs, logits = [], [[] for _ in heads]
        for s in range(0, len(ids), 256):
            e, outs = net(normalise(cache[s:s + 256]))
            embs.append(e)
            for h, o in enumerate(outs):
                logits[h].append(o.argmax(1))
        emb = torch.cat(embs)
    ha = heads.index('articleType') if 'articleType' in heads else 0
    hc = heads.index('baseColour') if 'baseColour' in heads else None
    p1, p2 = p_at_10(emb, labels, is_val, ha, hc)
    accs = []
    for h in range(len(heads)):
        pred = torch.cat(logits[h]).numpy()
        m = is_val & (labels[:, h] >= 0)
        accs.append((pred[m] == labels[m, h]).mean())
    print(f'pytorch: train {np.mean(rates):.1f} img/s (mean over epochs), val acc ' +
          ' '.join(f'{h} {x:.3f}' for h, x in zip(heads, accs)) + f', P@10 {p1:.3f} / {p2:.3f}')
    if a.vitrine_model:
        with torch.no_grad():
            embs = [onnx_torch_eval.run(a.vitrine_model, normalise(cache[s:s + 256]))['embedding']
                    for s in range(0, len(ids), 256)]
        v1, v2 = p_at_10(torch.cat(embs), labels, is_val, ha, hc)
        print(f'vitrine: P@10 {v1:.3f} / {v2:.3f} (same evaluation code)')


if __name__ == '__main__':
    main()
