#!/usr/bin/python3
"""rerank.py: what the full-precision re-rank of vitrine's quantised exact scans buys and costs.

Generates seeded clustered unit vectors (random unit centres, gaussian noise of norm ~--sigma,
renormalised) and queries near catalog rows (a random row plus noise of norm ~--qnoise,
renormalised), builds flat-f32, flat-f16 and flat-i8 indexes with `vitrine index build`, and
queries each one at a time on one thread with `vitrine index query`: the quantised indexes with
their default re-rank and with `--rerank 0` (the quantised scan's own order, as before the
re-rank existed). Prints recall@10 against the f32 scan (and the f32 scan's recall against a
numpy float64 brute force), the median queries/s and p50 latency of --runs interleaved runs, and
the re-rank's cost (q/s without / q/s with). On a shared machine the wall-clock q/s of one run swing
by 2x; the CPU time the query command used per query (its load, timed by the command, subtracted)
is steadier, and the cost ratios are given from both. With --baseline OLD (a vitrine built before the
re-rank, e.g. from an older commit), flat-i8 and flat-f16 are also built and queried with OLD, to
compare with the scans as they were. Run with Debian's python3 (numpy):

    /usr/bin/python3 bench/index/rerank.py --vitrine build/vitrine [--baseline OLD/vitrine] [--runs 5]
"""
import argparse, os, re, resource, subprocess, sys, statistics
import numpy as np


def clustered(n, d, nclus, sigma, nq, qnoise, seed):
    r = np.random.default_rng(seed)
    c = r.standard_normal((nclus, d), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[r.integers(0, nclus, n)] + (sigma / np.sqrt(d)) * r.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[r.integers(0, n, nq)] + (qnoise / np.sqrt(d)) * r.standard_normal((nq, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(q, dtype=np.float32)


def recall(ids, gt, k=10):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(ids, gt)]))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit('%s failed: %s' % (' '.join(argv), p.stderr))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vitrine', required=True)
    ap.add_argument('--n', type=int, default=50000)
    ap.add_argument('--d', type=int, default=512)
    ap.add_argument('--clusters', type=int, default=500)
    ap.add_argument('--sigma', type=float, default=0.5)
    ap.add_argument('--nq', type=int, default=1000)
    ap.add_argument('--qnoise', type=float, default=0.1, help='norm of the noise added to a catalog row to make a query')
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--runs', type=int, default=3, help='interleaved runs of every query configuration (median kept)')
    ap.add_argument('--isa', default='', help='force the kernels (portable, avx2, avx512)')
    ap.add_argument('--baseline', default='', help='a vitrine binary from before the re-rank, to compare with')
    ap.add_argument('--seed', type=int, default=2024)
    ap.add_argument('--work', default='bench/out/index')
    args = ap.parse_args()
    vit = os.path.abspath(args.vitrine)
    os.makedirs(args.work, exist_ok=True)
    n, d, k = args.n, args.d, args.k
    x, q = clustered(n, d, args.clusters, args.sigma, args.nq, args.qnoise, args.seed)
    tag = '%d_%d' % (n, d)
    xp, qp, ip = (os.path.join(args.work, '%s_%s.%s' % (w, tag, e)) for w, e in (('rx', 'f32'), ('rq', 'f32'), ('rids', 'i32')))
    x.tofile(xp)
    q.tofile(qp)
    # float64 brute force, to show the f32 scan itself is exact
    s = q.astype(np.float64) @ x.astype(np.float64).T
    exact = np.argsort(-s, axis=1, kind='stable')[:, :k]
    del s
    cpu = ''
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name') and not cpu:
                cpu = line.split(':', 1)[1].strip()
            if line.startswith('flags'):
                fl = line.split(':', 1)[1].split()
                flags = ' '.join(sorted(set(w for w in fl if w.startswith('avx') or w in ('fma', 'f16c'))))
                break
    print('# %d x %d unit vectors around %d centres (noise %.2f), %d queries near rows (noise %.2f), k %d, seed %d'
          % (n, d, args.clusters, args.sigma, args.nq, args.qnoise, k, args.seed))
    print('# CPU: %s; flags: %s' % (cpu, flags), flush=True)
    paths, sizes = {}, {}
    builds = [(kind, vit) for kind in ('flat', 'flat-f16', 'flat-i8')]
    if args.baseline:
        base = os.path.abspath(args.baseline)
        builds += [('before:flat-f16', base), ('before:flat-i8', base)]
    for kind, binary in builds:
        p = os.path.join(args.work, 'r_%s_%s.vti' % (kind.replace(':', '_'), tag))
        o = run([binary, 'index', 'build', '--vectors', xp, '--dim', str(d), '--kind', kind.split(':')[-1], '-o', p])
        mem = int(re.search(r'memory (\d+) bytes', o).group(1))
        paths[kind], sizes[kind] = p, (os.path.getsize(p) / n, mem / n)
        print('  built %-8s file %.1f bytes/item, memory %.1f bytes/item' % (kind, sizes[kind][0], sizes[kind][1]), flush=True)
    configs = [('f32 scan', 'flat', None), ('f16 + re-rank', 'flat-f16', None), ('f16, no re-rank', 'flat-f16', 0),
               ('i8 + re-rank', 'flat-i8', None), ('i8, no re-rank', 'flat-i8', 0)]
    if args.baseline:
        configs += [('f16 before the re-rank', 'before:flat-f16', None), ('i8 before the re-rank', 'before:flat-i8', None)]
    qps = {c[0]: [] for c in configs}
    cpu = {c[0]: [] for c in configs}
    p50 = {c[0]: [] for c in configs}
    ids = {}
    isa = ''
    for rep in range(args.runs):
        for name, kind, rr in configs:
            argv = [base if kind.startswith('before:') else vit, 'index', 'query', paths[kind], '--queries', qp,
                    '-k', str(k), '--out', ip]
            if rr is not None: argv += ['--rerank', str(rr)]
            if args.isa: argv += ['--isa', args.isa]
            c0 = child_cpu()
            o = run(argv)
            tload = float(re.search(r'loaded in ([\d.]+) s', o).group(1))
            cpu[name].append((child_cpu() - c0 - tload) / args.nq * 1e6)
            qps[name].append(float(re.search(r'([\d.]+) queries/s', o).group(1)))
            p50[name].append(float(re.search(r'p50 ([\d.]+) us', o).group(1)))
            isa = re.search(r'\((\w+) kernels\)', o).group(1)
            got = np.fromfile(ip, dtype=np.int32).reshape(-1, k)
            if name in ids and not np.array_equal(ids[name], got):
                sys.exit('%s: answers differ between runs' % name)
            ids[name] = got
    gt = ids['f32 scan']
    med = {c[0]: statistics.median(qps[c[0]]) for c in configs}
    mcpu = {c[0]: statistics.median(cpu[c[0]]) for c in configs}
    print('\n%s kernels, one query at a time on one thread; median of %d interleaved runs\n' % (isa, args.runs))
    print('| configuration | recall@10 vs f32 scan | queries/s | p50 us | CPU us/query | runs (q/s) | runs (CPU us/query) |')
    print('|---|---:|---:|---:|---:|---|---|')
    for name, kind, rr in configs:
        print('| %s | %.4f | %.0f | %.0f | %.0f | %s | %s |' % (name, recall(ids[name], gt), med[name], statistics.median(p50[name]),
              mcpu[name], ', '.join('%.0f' % v for v in qps[name]), ', '.join('%.0f' % v for v in cpu[name])))
    print('\nf32 scan vs float64 brute force: recall@10 %.4f' % recall(gt, exact))
    for s in ('i8', 'f16'):
        a, b = med['%s + re-rank' % s], med['%s, no re-rank' % s]
        print('%s re-rank cost: %.3fx the CPU time of the scan without it (%.0f vs %.0f us/query); wall %.3fx (%.0f vs %.0f q/s)'
              % (s, mcpu['%s + re-rank' % s] / mcpu['%s, no re-rank' % s], mcpu['%s + re-rank' % s],
                 mcpu['%s, no re-rank' % s], b / a, a, b))
    if args.baseline:
        for s in ('i8', 'f16'):
            a, b = med['%s + re-rank' % s], med['%s before the re-rank' % s]
            print('%s with re-rank vs the %s scan before it (--baseline): %.3fx the CPU time (%.0f vs %.0f us/query); wall %.3fx '
                  '(%.0f vs %.0f q/s)' % (s, s, mcpu['%s + re-rank' % s] / mcpu['%s before the re-rank' % s],
                                          mcpu['%s + re-rank' % s], mcpu['%s before the re-rank' % s], b / a, a, b))
    print('i8 + re-rank vs f32 scan: %.2fx the queries/s' % (med['i8 + re-rank'] / med['f32 scan']))
    print('load average: %s' % open('/proc/loadavg').read().split()[:3])
    print('bytes per item (file / memory): ' + '; '.join('%s %.1f / %.1f' % (kk, v[0], v[1]) for kk, v in sizes.items()))
    for p in list(paths.values()) + [xp, qp, ip]:
        if os.path.exists(p): os.remove(p)


if __name__ == '__main__':
    main()
