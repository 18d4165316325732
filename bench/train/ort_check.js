// ort_check.js: runs a vitrine-trained ONNX model in ONNX Runtime (npm onnxruntime-node, CPU) and
// compares its outputs with expected ones.
// Usage: node ort_check.js MODEL.onnx INPUT.f32 N,C,H,W [OUTPUT_NAME EXPECTED.f32]...
// Prints the max relative error per output; exit 0 when all are <= 1e-4, 1 otherwise, 2 when
// onnxruntime-node is not installed (bench/nn/ort or $ORT_NODE_MODULE).
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const cands = [process.env.ORT_NODE_MODULE, path.join(__dirname, '..', 'nn', 'ort', 'node_modules', 'onnxruntime-node'),
                 path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node')].filter(Boolean);
  for (const c of cands) {
    try { return require(c); } catch (e) { /* next */ }
  }
  console.error('onnxruntime-node not found (npm install --ignore-scripts onnxruntime-node in bench/nn/ort)');
  process.exit(2);
}

function readF32(p) {
  const b = fs.readFileSync(p);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function main() {
  const ort = loadOrt();
  const [model, inp, shapeS, ...pairs] = process.argv.slice(2);
  const shape = shapeS.split(',').map(Number);
  const sess = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, graphOptimizationLevel: 'all'});
  const feeds = {};
  feeds[sess.inputNames[0]] = new ort.Tensor('float32', readF32(inp), shape);
  const out = await sess.run(feeds);
  let ok = true;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const y = out[pairs[i]].data, e = readF32(pairs[i + 1]);
    if (y.length !== e.length) { console.log(`${pairs[i]}: size ${y.length} != expected ${e.length}`); ok = false; continue; }
    let md = 0, me = 1e-12;
    for (let j = 0; j < e.length; j++) { md = Math.max(md, Math.abs(y[j] - e[j])); me = Math.max(me, Math.abs(e[j])); }
    console.log(`onnxruntime ${pairs[i]}: max relative error ${(md / me).toExponential(3)}`);
    if (md / me > 1e-4) ok = false;
  }
  process.exit(ok ? 0 : 1);
}
main().catch(e => { console.error(e); process.exit(1); });
