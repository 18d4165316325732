#!/usr/bin/python3
# export_torchvision.py: exports torchvision CNNs (seeded random weights) to ONNX plus PyTorch reference outputs.
#
# Usage: /usr/bin/python3 export_torchvision.py OUT_DIR [--models a,b] [--opsets 13,17] [--batches 1,8]
# For every model M and opset O it writes OUT_DIR/M_opO.onnx (dynamic batch axis) and, for every
# batch B, OUT_DIR/M_bB.in.f32 (input, N,3,224,224 float32 LE) and OUT_DIR/M_bB.out.f32 (logits).
# The weights are PyTorch's default initialisation under torch.manual_seed(0), with BatchNorm
# running statistics and affine parameters randomised too so that folding them is really tested.
import argparse, os, sys
import numpy as np
import torch
import torchvision

ALL = ["resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
       "squeezenet1_1", "densenet121"]

def build(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                mod.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return m.eval()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", default=",".join(ALL))
    ap.add_argument("--opsets", default="13,17")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in a.models.split(","):
        m = build(name)
        for b in [int(x) for x in a.batches.split(",")]:
            g = torch.Generator().manual_seed(100 + b)
            x = torch.randn(b, 3, a.size, a.size, generator=g)
            with torch.no_grad():
                y = m(x)
            x.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}_b{b}.in.f32"))
            y.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}_b{b}.out.f32"))
        for op in [int(x) for x in a.opsets.split(",")]:
            path = os.path.join(a.out, f"{name}_op{op}.onnx")
            if os.path.exists(path):
                continue
            x = torch.randn(1, 3, a.size, a.size)
            torch.onnx.export(m, x, path + ".tmp", opset_version=op, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              do_constant_folding=True)
            os.replace(path + ".tmp", path)
        print(name, "ok", flush=True)

if __name__ == "__main__":
    main()
