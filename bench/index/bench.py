#!/usr/bin/python3
"""bench.py: vitrine's similarity index against scikit-learn, FAISS and hnswlib, same vectors, same run.

Generates seeded clustered unit vectors, writes them as raw float32 (what `vitrine index` reads),
runs the peers in this process and vitrine through its CLI on the same files, and prints one
markdown table with ratios. Run with Debian's python3 (/usr/bin/python3), which has numpy,
scikit-learn, faiss and hnswlib:

    /usr/bin/python3 bench/index/bench.py --vitrine build-index/vitrine --n 50000 --d 512
    /usr/bin/python3 bench/index/bench.py --vitrine build-index/vitrine --n 1000000 --d 128

One-at-a-time rows: one query per call on one thread, for every engine (how a server thread asks);
with --threads T > 1, also FAISS IndexFlatIP and vitrine flat int8 answering one query at a time on
T threads (FAISS's OpenMP threads; vitrine `index query --split T`).
Batch rows: all queries in one call on --threads threads, for every engine. Builds use --threads.
HNSW sweeps interleave the engines and keep the best of --reps runs, since the machine is shared.
"""
import argparse, os, re, resource, subprocess, sys, time
import numpy as np

def rss_bytes():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0

def clustered(n, d, nclus, sigma, seed):
    """n unit vectors: random unit centres plus gaussian noise of norm ~sigma, renormalised."""
    r = np.random.default_rng(seed)
    c = r.standard_normal((nclus, d), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = np.empty((n, d), dtype=np.float32)
    step = 100000
    for s in range(0, n, step):
        m = min(step, n - s)
        a = r.integers(0, nclus, m)
        x = c[a] + (sigma / np.sqrt(d)) * r.standard_normal((m, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + m] = x
    return out

def recall(ids, gt, k=10):
    ids = np.asarray(ids)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, gt[:, :k])]))

def one_at_a_time(fn, q):
    """Calls fn(q[i:i+1]) for every query; returns (ids, queries/s, p50 us, p99 us)."""
    lat = np.empty(len(q))
    ids = []
    t0 = time.perf_counter()
    for i in range(len(q)):
        t = time.perf_counter()
        ids.append(fn(q[i:i + 1])[0])
        lat[i] = time.perf_counter() - t
    dt = time.perf_counter() - t0
    return np.array(ids), len(q) / dt, np.percentile(lat, 50) * 1e6, np.percentile(lat, 99) * 1e6

def run_vitrine(args, argv):
    p = subprocess.run([args.vitrine] + argv, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit('vitrine %s failed: %s' % (' '.join(argv), p.stderr))
    return p.stdout

def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def vit_build(args, kind, store, out, extra=()):
    c0 = child_cpu()
    o = run_vitrine(args, ['index', 'build', '--vectors', args.xpath, '--dim', str(args.d), '--kind', kind,
                           '--store', store, '--metric', 'cosine', '--threads', str(args.threads),
                           '-o', out] + list(extra))
    m = re.search(r'in ([\d.]+) s with', o)
    mem = re.search(r'memory (\d+) bytes', o)
    args.last_build_cpu = child_cpu() - c0  # includes reading the vectors and writing the file
    return float(m.group(1)), int(mem.group(1)) / args.n, os.path.getsize(out) / args.n

def vit_query(args, path, ef=None, batch=False, nq=None, split=1):
    qpath = args.qpath if nq is None else args.qsub
    argv = ['index', 'query', path, '--queries', qpath, '-k', '10', '--out', args.ids]
    if ef: argv += ['--ef', str(ef)]
    argv += ['--batch', '--threads', str(args.threads)] if batch else ['--threads', '1', '--split', str(split)]
    o = run_vitrine(args, argv)
    qps = float(re.search(r'([\d.]+) queries/s', o).group(1))
    m = re.search(r'p50 ([\d.]+) us p99 ([\d.]+) us', o)
    ids = np.fromfile(args.ids, dtype=np.int32).reshape(-1, 10)
    return ids, qps, (float(m.group(1)) if m else None), (float(m.group(2)) if m else None)

def exact_report(args, rows, ratio, rec, tag, split_ratio=None):
    out = ['### %d x %d, %d queries, k = 10, %d threads for batches (exact search only)\n' % (args.n, args.d, args.nq, args.threads),
           '| engine | storage | one-at-a-time q/s | p50 us | p99 us | batch q/s | recall@10 | build s | bytes/item | notes |',
           '|---|---|---:|---:|---:|---:|---:|---:|---:|---|']
    for e, s, q1, p50, p99, qb, rc, tb, bpi, note in rows:
        out.append('| %s | %s | %.0f | %.0f | %.0f | %.0f | %.4f | %.2f | %.0f | %s |' % (e, s, q1, p50, p99, qb, rc, tb, bpi, note))
    out.append('\nvitrine exact int8 one-at-a-time vs FAISS IndexFlatIP: **%.1fx** (target 10x) at recall@10 %.4f (target 0.99)' % (ratio, rec))
    if split_ratio:
        out.append('\nvitrine with %d threads per query (`--split %d`) vs FAISS given %d OpenMP threads (it uses one for a '
                   'single query): **%.1fx**' % (args.threads, args.threads, args.threads, split_ratio))
    text = '\n'.join(out)
    print('\n' + text)
    with open(os.path.join(args.work, 'results_%s_exact.md' % tag), 'w') as f:
        f.write(text + '\n')
    for p in (args.xpath, args.qpath, args.ids):
        if os.path.exists(p): os.remove(p)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vitrine', required=True)
    ap.add_argument('--n', type=int, default=50000)
    ap.add_argument('--d', type=int, default=512)
    ap.add_argument('--nq', type=int, default=1000)
    ap.add_argument('--clusters', type=int, default=0, help='default n/50')
    ap.add_argument('--sigma', type=float, default=1.0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--m', type=int, default=16)
    ap.add_argument('--efc', type=int, default=200)
    ap.add_argument('--efs', default='10,16,24,32,48,64,96,128,192,256,384')
    ap.add_argument('--sk-queries', type=int, default=200, help='one-at-a-time queries for scikit-learn')
    ap.add_argument('--work', default='bench/out/index')
    ap.add_argument('--skip', default='', help='comma list: sklearn, faiss-hnsw, hnsw (exact search only)')
    ap.add_argument('--reps', type=int, default=3, help='repetitions of every HNSW measurement (best kept)')
    args = ap.parse_args()
    args.vitrine = os.path.abspath(args.vitrine)
    skip = set(filter(None, args.skip.split(',')))
    os.makedirs(args.work, exist_ok=True)
    n, d, T = args.n, args.d, args.threads
    nclus = args.clusters or max(1, n // 50)
    import faiss, hnswlib, sklearn
    from sklearn.neighbors import NearestNeighbors
    print('# %d x %d clustered unit vectors (%d clusters, sigma %.2f), %d queries, %d threads; '
          'faiss %s, hnswlib, scikit-learn %s, numpy %s' % (n, d, nclus, args.sigma, args.nq, T,
          faiss.__version__, sklearn.__version__, np.__version__), flush=True)
    allv = clustered(n + args.nq, d, nclus, args.sigma, 12345)
    x, q = allv[:n], np.ascontiguousarray(allv[n:])
    del allv
    tag = '%d_%d' % (n, d)
    args.xpath = os.path.join(args.work, 'x_%s.f32' % tag)
    args.qpath = os.path.join(args.work, 'q_%s.f32' % tag)
    args.qsub = os.path.join(args.work, 'qsub_%s.f32' % tag)
    args.ids = os.path.join(args.work, 'ids_%s.i32' % tag)
    x.tofile(args.xpath)
    q.tofile(args.qpath)
    class Rows(list):  # prints each exact-search row as soon as it is measured
        def append(self, r):
            super().append(r)
            print('  %-26s %-14s one-at-a-time %8.1f q/s (p50 %.0f us)  batch %8.1f q/s  recall@10 %.4f' %
                  (r[0], r[1], r[2], r[3], r[5], r[6]), flush=True)
    rows = Rows()  # (engine, storage, q/s, p50, p99, batch q/s, recall, build s, bytes/item, note)

    # ---- exact: FAISS IndexFlatIP (also the ground truth: exact float32 inner product)
    faiss.omp_set_num_threads(T)
    t0 = time.perf_counter()
    fl = faiss.IndexFlatIP(d)
    fl.add(x)
    tb = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, gt = fl.search(q, 10)
    qps_b = args.nq / (time.perf_counter() - t0)
    faiss.omp_set_num_threads(1)
    ids, qps1, p50, p99 = one_at_a_time(lambda v: fl.search(v, 10)[1], q)
    rows.append(('faiss IndexFlatIP', 'exact f32', qps1, p50, p99, qps_b, recall(ids, gt), tb, 4 * d, ''))
    faiss_flat_qps1 = qps1
    faiss_flat_qpsT = None
    if T > 1:  # one query at a time, T OpenMP threads for FAISS
        faiss.omp_set_num_threads(T)
        ids, qpsT, p50, p99 = one_at_a_time(lambda v: fl.search(v, 10)[1], q)
        faiss.omp_set_num_threads(1)
        rows.append(('faiss IndexFlatIP', 'exact f32', qpsT, p50, p99, qps_b, recall(ids, gt), tb, 4 * d,
                     'one query at a time on %d threads' % T))
        faiss_flat_qpsT = qpsT
    del fl

    # ---- scikit-learn NearestNeighbors(brute, cosine)
    if 'sklearn' not in skip:
        t0 = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=10, algorithm='brute', metric='cosine', n_jobs=1).fit(x)
        tb = time.perf_counter() - t0
        ns = min(args.sk_queries, args.nq)
        ids, qps1, p50, p99 = one_at_a_time(lambda v: nn.kneighbors(v, 10, return_distance=False), q[:ns])
        r1 = recall(ids, gt[:ns])
        nn.set_params(n_jobs=T)
        t0 = time.perf_counter()
        idsb = nn.kneighbors(q, 10, return_distance=False)
        qps_b = args.nq / (time.perf_counter() - t0)
        rows.append(('scikit-learn brute cosine', 'exact f64/f32', qps1, p50, p99, qps_b, recall(idsb, gt), tb, 4 * d,
                     'one-at-a-time over %d queries' % ns))
        del nn

    # ---- vitrine exact
    for kind, store in [('flat', 'f32'), ('flat', 'f16'), ('flat', 'i8')]:
        path = os.path.join(args.work, 'v_%s_%s.vti' % (store, tag))
        tb, mem, fsz = vit_build(args, kind, store, path)
        ids, qps1, p50, p99 = vit_query(args, path)
        idsb, qps_b, _, _ = vit_query(args, path, batch=True)
        rows.append(('vitrine flat', 'exact ' + store, qps1, p50, p99, qps_b, recall(ids, gt), tb, mem,
                     'batch recall %.4f; file %.0f B/item' % (recall(idsb, gt), fsz)))
        if store == 'i8':
            vit_i8_qps1, vit_i8_rec = qps1, recall(ids, gt)
            vit_i8_qpsT = None
            if T > 1:
                ids, qpsT, p50, p99 = vit_query(args, path, split=T)
                rows.append(('vitrine flat', 'exact i8', qpsT, p50, p99, qps_b, recall(ids, gt), tb, mem,
                             'one query at a time, its scan split across %d threads' % T))
                vit_i8_qpsT = qpsT
        os.remove(path)

    if 'hnsw' in skip:  # exact search only
        exact_report(args, rows, vit_i8_qps1 / faiss_flat_qps1, vit_i8_rec, tag,
                     vit_i8_qpsT / faiss_flat_qpsT if vit_i8_qpsT and faiss_flat_qpsT else None)
        return

    # ---- HNSW: build every engine, then sweep ef with the engines interleaved, best of --reps
    efs = list(map(int, args.efs.split(',')))
    engines = {}  # name -> function(ef) -> (ids, qps, p50, p99)
    builds = {}   # name -> (build s, bytes/item note, batch q/s, batch recall)

    hn = hnswlib.Index(space='ip', dim=d)
    t0, c0 = time.perf_counter(), time.process_time()
    hn.init_index(max_elements=n, M=args.m, ef_construction=args.efc, random_seed=42)
    hn.add_items(x, np.arange(n), num_threads=T)
    tb_h, cpu_h = time.perf_counter() - t0, time.process_time() - c0
    hpath = os.path.join(args.work, 'h_%s.bin' % tag)
    hn.save_index(hpath)
    fsz_h = os.path.getsize(hpath) / n
    os.remove(hpath)
    print('  hnswlib built in %.1f s' % tb_h, flush=True)
    def hn_query(ef):
        hn.set_ef(ef)
        ids, qps1, p50, p99 = one_at_a_time(lambda v: hn.knn_query(v, 10, num_threads=1)[0], q)
        t0 = time.perf_counter()
        hn.knn_query(q, 10, num_threads=1)  # one call, one thread: the C++ loop without Python per-call costs
        qpsc = args.nq / (time.perf_counter() - t0)
        return ids, max(qps1, qpsc), p50, p99
    engines['hnswlib'] = hn_query

    if 'faiss-hnsw' not in skip:
        faiss.omp_set_num_threads(T)
        fh = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
        fh.hnsw.efConstruction = args.efc
        t0, c0 = time.perf_counter(), time.process_time()
        fh.add(x)
        tb_f, cpu_f = time.perf_counter() - t0, time.process_time() - c0
        fpath = os.path.join(args.work, 'f_%s.bin' % tag)
        faiss.write_index(fh, fpath)
        fsz_f = os.path.getsize(fpath) / n
        os.remove(fpath)
        print('  faiss IndexHNSWFlat built in %.1f s' % tb_f, flush=True)
        def fh_query(ef):
            fh.hnsw.efSearch = ef
            faiss.omp_set_num_threads(1)
            ids, qps1, p50, p99 = one_at_a_time(lambda v: fh.search(v, 10)[1], q)
            t0 = time.perf_counter()
            fh.search(q, 10)
            qpsc = args.nq / (time.perf_counter() - t0)
            return ids, max(qps1, qpsc), p50, p99
        engines['faiss IndexHNSWFlat'] = fh_query

    vpaths = {}
    for store in ['f32', 'i8']:
        path = os.path.join(args.work, 'v_hnsw_%s_%s.vti' % (store, tag))
        tb, mem, fsz = vit_build(args, 'hnsw', store, path, ['--m', str(args.m), '--ef-construction', str(args.efc)])
        print('  vitrine hnsw %s built in %.1f s' % (store, tb), flush=True)
        vpaths[store] = (path, tb, mem, fsz, args.last_build_cpu)
        engines['vitrine hnsw ' + store] = (lambda p: (lambda ef: vit_query(args, p, ef=ef)))(path)

    curves = {name: {} for name in engines}
    for ef in efs:
        for rep in range(args.reps):
            for name, fn in engines.items():
                ids, qps1, p50, p99 = fn(ef)
                old = curves[name].get(ef)
                if old is None or qps1 > old[2]:
                    curves[name][ef] = (ef, recall(ids, gt), qps1, p50, p99)
        for name in engines:
            p = curves[name][ef]
            print('  %-20s ef %4d recall@10 %.4f  %8.0f q/s  p50 %.0f us' % (name, ef, p[1], p[2], p[3]), flush=True)
    curves = {name: [c[ef] for ef in efs] for name, c in curves.items()}

    # batch (all queries in one call, T threads, ef 64)
    hn.set_ef(64)
    t0 = time.perf_counter()
    idsb = hn.knn_query(q, 10, num_threads=T)[0]
    builds['hnswlib'] = (tb_h, cpu_h, 'file %.0f' % fsz_h, args.nq / (time.perf_counter() - t0), recall(idsb, gt))
    del hn
    if 'faiss-hnsw' not in skip:
        fh.hnsw.efSearch = 64
        faiss.omp_set_num_threads(T)
        t0 = time.perf_counter()
        idsb = fh.search(q, 10)[1]
        builds['faiss IndexHNSWFlat'] = (tb_f, cpu_f, 'file %.0f' % fsz_f, args.nq / (time.perf_counter() - t0), recall(idsb, gt))
        del fh
    vit_h = {}
    for store, (path, tb, mem, fsz, cpu) in vpaths.items():
        idsb, qps_b, _, _ = vit_query(args, path, ef=64, batch=True)
        builds['vitrine hnsw ' + store] = (tb, cpu, 'file %.0f, in memory %.0f' % (fsz, mem), qps_b, recall(idsb, gt))
        vit_h[store] = (tb, cpu)
        os.remove(path)

    # ---- report
    out = []
    out.append('### %d x %d, %d queries, k = 10, %d threads for builds and batches\n' % (n, d, args.nq, T))
    out.append('Exact search (one-at-a-time: one query per call, one thread unless the notes say otherwise):\n')
    out.append('| engine | storage | one-at-a-time q/s | p50 us | p99 us | batch q/s | recall@10 | build s | bytes/item | notes |')
    out.append('|---|---|---:|---:|---:|---:|---:|---:|---:|---|')
    for e, s, q1, p50, p99, qb, rc, tb, bpi, note in rows:
        out.append('| %s | %s | %.0f | %.0f | %.0f | %.0f | %.4f | %.2f | %.0f | %s |' % (e, s, q1, p50, p99, qb, rc, tb, bpi, note))
    out.append('\nvitrine exact int8 one-at-a-time vs FAISS IndexFlatIP: **%.1fx** (target 10x) at recall@10 %.4f (target 0.99)\n'
               % (vit_i8_qps1 / faiss_flat_qps1, vit_i8_rec))
    if vit_i8_qpsT and faiss_flat_qpsT:
        out.append('vitrine with %d threads per query (`--split %d`) vs FAISS given %d OpenMP threads (it uses one '
                   'for a single query): **%.1fx**\n' % (T, T, T, vit_i8_qpsT / faiss_flat_qpsT))
    out.append('HNSW, M = %d, ef_construction = %d; best one-at-a-time q/s (one thread; best of %d interleaved runs; '
               'for the Python peers the better of one call per query and one call for all queries on one '
               'thread) among the ef settings reaching the recall:\n' % (args.m, args.efc, args.reps))
    out.append('| engine | build wall s | build CPU s | bytes/item | q/s @ recall 0.95 (ef) | q/s @ recall 0.99 (ef) | max recall | batch q/s (ef 64, recall) |')
    out.append('|---|---:|---:|---:|---:|---:|---:|---:|')
    def best(name, target):
        ok = [p for p in curves[name] if p[1] >= target]
        if not ok: return None
        return max(ok, key=lambda p: p[2])
    for name in curves:
        tb, cpu, memnote, qb, rb = builds[name]
        cells = []
        for t in (0.95, 0.99):
            b = best(name, t)
            cells.append('%.0f (ef %d)' % (b[2], b[0]) if b else 'not reached')
        out.append('| %s | %.1f | %.1f | %s | %s | %s | %.4f | %.0f (%.4f) |' % (name, tb, cpu, memnote, cells[0], cells[1],
                   max(p[1] for p in curves[name]), qb, rb))
    for s in ['f32', 'i8']:
        name = 'vitrine hnsw ' + s
        for t in (0.95, 0.99):
            a, b = best(name, t), best('hnswlib', t)
            if a and b:
                out.append('\n%s vs hnswlib at recall %.2f: **%.2fx** q/s' % (name, t, a[2] / b[2]))
        out.append('\n%s build vs hnswlib: wall %.2fx, CPU %.2fx (below 1 = faster)' % (name, vit_h[s][0] / tb_h, vit_h[s][1] / cpu_h))
    text = '\n'.join(out)
    print('\n' + text)
    with open(os.path.join(args.work, 'results_%s.md' % tag), 'w') as f:
        f.write(text + '\n')
    for p in (args.xpath, args.qpath, args.ids):
        if os.path.exists(p): os.remove(p)

if __name__ == '__main__':
    main()
