#!/usr/bin/python3
# torch_bench.py: times PyTorch (Debian python3-torch, CPU, eager, no_grad) on a torchvision CNN; prints images/s.
# Usage: /usr/bin/python3 torch_bench.py MODEL BATCH THREADS SECONDS
import sys, time
import torch, torchvision

def main():
    name, batch, threads, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        m(x); m(x)
        times, t0 = [], time.perf_counter()
        while True:
            t1 = time.perf_counter()
            m(x)
            times.append(time.perf_counter() - t1)
            el = time.perf_counter() - t0
            if el >= seconds and len(times) >= 3:
                break
    times.sort()
    med = times[len(times) // 2]
    # headline: median batch time (robust on a shared machine), as vitrine bench prints it
    print("torch batch %d threads %d: %.1f images/s (median %.2f ms/batch; mean %.1f images/s; best %.2f ms; %d runs)" %
          (batch, threads, batch / med, med * 1e3, len(times) * batch / el, times[0] * 1e3, len(times)))

if __name__ == "__main__":
    main()
