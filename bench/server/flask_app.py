#!/usr/bin/python3
"""flask_app.py: the peer: how most fashion recommenders answer "similar items": Flask +
scikit-learn NearestNeighbors (brute force, cosine) over the same vectors and attributes.

Usage: flask_app.py VECS.f32 IDS.ids META.csv PORT
"""
import csv
import sys

import numpy as np
from flask import Flask, abort, jsonify, request
from sklearn.neighbors import NearestNeighbors

vec_path, ids_path, meta_path, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ids = [l.strip() for l in open(ids_path) if l.strip()]
X = np.fromfile(vec_path, dtype=np.float32).reshape(len(ids), -1)
row_of = {i: n for n, i in enumerate(ids)}
with open(meta_path, newline="") as f:
    attrs = {r["id"]: {k: v for k, v in r.items() if k != "id" and v} for r in csv.DictReader(f)}
nn = NearestNeighbors(algorithm="brute", metric="cosine").fit(X)
app = Flask(__name__)


@app.get("/api/items/<item_id>/similar")
def similar(item_id):
    k = request.args.get("k", default=10, type=int)
    if item_id not in row_of:
        abort(404)
    dist, idx = nn.kneighbors(X[row_of[item_id]:row_of[item_id] + 1], n_neighbors=k + 1)
    results = [{"item": {"id": ids[j], "attributes": attrs.get(ids[j], {}), "image": "/images/" + ids[j]},
                "score": float(1 - d)} for d, j in zip(dist[0], idx[0]) if ids[j] != item_id][:k]
    return jsonify({"id": item_id, "results": results})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=port, threaded=True)
