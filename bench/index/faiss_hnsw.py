#!/usr/bin/python3
"""faiss_hnsw.py: FAISS IndexHNSWFlat alone on bench.py's vectors, for sizes where building it inside
bench.py's single run would take too long to share the machine with the other engines.

Same seeded clustered unit vectors and queries as bench.py (same --n, --d, --clusters, --sigma,
--nq), same M, ef_construction and ef sweep, same recall (ground truth: exact FAISS IndexFlatIP),
same one-at-a-time measurement (one thread; the better of one call per query and one call for all
queries on one thread). Prints one row in bench.py's HNSW table format, to set beside the other
engines' rows of a bench.py run on the same arguments.

    /usr/bin/python3 bench/index/faiss_hnsw.py --n 1000000 --d 128 --threads 2
"""
import argparse, os, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import clustered, recall, one_at_a_time  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=50000)
    ap.add_argument('--d', type=int, default=512)
    ap.add_argument('--nq', type=int, default=1000)
    ap.add_argument('--clusters', type=int, default=0, help='default n/50 (as bench.py)')
    ap.add_argument('--sigma', type=float, default=1.0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--m', type=int, default=16)
    ap.add_argument('--efc', type=int, default=200)
    ap.add_argument('--efs', default='10,16,24,32,48,64,96,128,192,256,384')
    ap.add_argument('--reps', type=int, default=3)
    args = ap.parse_args()
    import faiss
    n, d, T = args.n, args.d, args.threads
    nclus = args.clusters or max(1, n // 50)
    allv = clustered(n + args.nq, d, nclus, args.sigma, 12345)
    x, q = allv[:n], np.ascontiguousarray(allv[n:])
    del allv
    faiss.omp_set_num_threads(T)
    fl = faiss.IndexFlatIP(d)
    fl.add(x)
    _, gt = fl.search(q, 10)
    del fl
    print('# %d x %d, %d queries; ground truth done; building FAISS IndexHNSWFlat (M %d, efc %d, %d threads)'
          % (n, d, args.nq, args.m, args.efc, T), flush=True)
    fh = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
    fh.hnsw.efConstruction = args.efc
    t0, c0 = time.perf_counter(), time.process_time()
    fh.add(x)
    tb, cpu = time.perf_counter() - t0, time.process_time() - c0
    path = '/tmp/faiss_hnsw_%d_%d.bin' % (n, d)
    faiss.write_index(fh, path)
    fsz = os.path.getsize(path) / n
    os.remove(path)
    print('  faiss IndexHNSWFlat built in %.1f s (CPU %.1f s), file %.0f bytes/item' % (tb, cpu, fsz), flush=True)
    faiss.omp_set_num_threads(1)
    curve = []
    for ef in map(int, args.efs.split(',')):
        fh.hnsw.efSearch = ef
        best = None
        for _ in range(args.reps):
            ids, qps1, p50, p99 = one_at_a_time(lambda v: fh.search(v, 10)[1], q)
            t0 = time.perf_counter()
            fh.search(q, 10)
            qps = max(qps1, args.nq / (time.perf_counter() - t0))
            if best is None or qps > best[2]:
                best = (ef, recall(ids, gt), qps, p50)
        curve.append(best)
        print('  faiss IndexHNSWFlat  ef %4d recall@10 %.4f  %8.0f q/s  p50 %.0f us' % best, flush=True)
    fh.hnsw.efSearch = 64
    faiss.omp_set_num_threads(T)
    t0 = time.perf_counter()
    idsb = fh.search(q, 10)[1]
    qb, rb = args.nq / (time.perf_counter() - t0), recall(idsb, gt)
    cells = []
    for t in (0.95, 0.99):
        ok = [p for p in curve if p[1] >= t]
        b = max(ok, key=lambda p: p[2]) if ok else None
        cells.append('%.0f (ef %d)' % (b[2], b[0]) if b else 'not reached')
    print('\n| engine | build wall s | build CPU s | bytes/item | q/s @ recall 0.95 (ef) | q/s @ recall 0.99 (ef) | max recall | batch q/s (ef 64, recall) |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    print('| faiss IndexHNSWFlat | %.1f | %.1f | file %.0f | %s | %s | %.4f | %.0f (%.4f) |'
          % (tb, cpu, fsz, cells[0], cells[1], max(p[1] for p in curve), qb, rb))


if __name__ == '__main__':
    main()
