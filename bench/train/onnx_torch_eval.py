#!/usr/bin/python3
# onnx_torch_eval.py: runs a vitrine-trained ONNX model with PyTorch functional ops (an independent
# interpreter for the operators the trainer exports) and compares its outputs with expected ones.
# Usage: onnx_torch_eval.py MODEL.onnx INPUT.f32 N,C,H,W [OUTPUT_NAME EXPECTED.f32]...
# Prints the max relative error per output; exit 0 when all are <= 1e-4, 1 otherwise.
import sys
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def run(model_path, x):
    m = onnx.load(model_path)
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x
    for n in m.graph.node:
        i = [env[k] for k in n.input]
        op = n.op_type
        if op == 'Conv':
            p = attr(n, 'pads', [0, 0, 0, 0])
            assert p[0] == p[2] and p[1] == p[3]
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=tuple(attr(n, 'strides', [1, 1])),
                         padding=(p[0], p[1]), groups=attr(n, 'group', 1))
        elif op == 'BatchNormalization':
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], False, 0.0, attr(n, 'epsilon', 1e-5))
        elif op == 'Relu':
            y = F.relu(i[0])
        elif op in ('MaxPool', 'AveragePool'):
            k, s, p = attr(n, 'kernel_shape'), attr(n, 'strides', [1, 1]), attr(n, 'pads', [0, 0, 0, 0])
            if op == 'MaxPool':
                y = F.max_pool2d(i[0], tuple(k), tuple(s), (p[0], p[1]))
            else:
                y = F.avg_pool2d(i[0], tuple(k), tuple(s), (p[0], p[1]), count_include_pad=bool(attr(n, 'count_include_pad', 0)))
        elif op == 'GlobalAveragePool':
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == 'Flatten':
            y = torch.flatten(i[0], attr(n, 'axis', 1))
        elif op == 'Add':
            y = i[0] + i[1]
        elif op == 'Gemm':
            assert attr(n, 'transB', 0) == 1
            y = F.linear(i[0], i[1], i[2])
        elif op == 'LpNormalization':
            y = i[0] / i[0].norm(p=2, dim=attr(n, 'axis', -1), keepdim=True)
        elif op == 'Softmax':
            y = torch.softmax(i[0], dim=attr(n, 'axis', -1))
        elif op == 'Mul':
            y = i[0] * i[1]
        elif op == 'Concat':
            y = torch.cat(i, dim=attr(n, 'axis'))
        else:
            raise SystemExit(f'unsupported operator {op}')
        env[n.output[0]] = y
    return env


def main():
    model, inp, shape = sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3].split(',')]
    torch.set_num_threads(1)
    x = torch.from_numpy(np.fromfile(inp, dtype=np.float32).reshape(shape))
    with torch.no_grad():
        env = run(model, x)
    ok = True
    for name, exp in zip(sys.argv[4::2], sys.argv[5::2]):
        y = env[name].numpy().astype(np.float64).ravel()
        e = np.fromfile(exp, dtype=np.float32).astype(np.float64)
        if y.size != e.size:
            print(f'{name}: size {y.size} != expected {e.size}')
            ok = False
            continue
        rel = np.abs(y - e).max() / max(np.abs(e).max(), 1e-12)
        print(f'{name}: max relative error {rel:.3e}')
        ok = ok and rel <= 1e-4
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
