// ort_bench.js: times ONNX Runtime (npm onnxruntime-node, CPU) on an ONNX image model; prints images/s.
// Usage: node ort_bench.js MODEL.onnx BATCH THREADS SECONDS
// Resolves onnxruntime-node from bench/nn/ort/node_modules (npm install --ignore-scripts onnxruntime-node).
const path = require('path');
const ort = require(path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, b, t, s] = process.argv.slice(2);
  const batch = parseInt(b || '1'), threads = parseInt(t || '1'), seconds = parseFloat(s || '5');
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const name = sess.inputNames[0];
  const n = batch * 3 * 224 * 224;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  const feeds = {}; feeds[name] = new ort.Tensor('float32', x, [batch, 3, 224, 224]);
  await sess.run(feeds); await sess.run(feeds);
  const times = []; const t0 = process.hrtime.bigint();
  for (;;) {
    const t1 = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t1) / 1e9);
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    if (el >= seconds && times.length >= 3) {
      times.sort((a, b) => a - b);
      const med = times[Math.floor(times.length / 2)];
      // headline: median batch time (robust on a shared machine), as vitrine bench prints it
      console.log(`ort batch ${batch} threads ${threads}: ${(batch / med).toFixed(1)} images/s (median ${(med * 1e3).toFixed(2)} ms/batch; mean ${(times.length * batch / el).toFixed(1)} images/s; best ${(times[0] * 1e3).toFixed(2)} ms; ${times.length} runs)`);
      break;
    }
  }
}
main().catch(e => { console.error(e); process.exit(1); });
