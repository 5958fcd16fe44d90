#!/usr/bin/env node
// Run an ONNX model with ONNX Runtime (onnxruntime-node, CPU) on raw inputs.
//
//   node tests/e2e/ort_run.js MODEL.onnx IN_DIR OUT_DIR
//
// IN_DIR/inputs.json: [{"name", "dtype", "shape", "file"}, ...], where file
// (relative to IN_DIR) holds the tensor as raw little-endian bytes in C order.
// Writes OUT_DIR/<name>.bin for each model output (same raw format) and
// OUT_DIR/outputs.json: [{"name", "dtype", "shape", "file"}, ...].
// onnxruntime-node is resolved from $MEXPORT_REPO, else this repository's
// root (its node_modules). Exits 1 with a one-line message on stderr on any error.
'use strict';

const fs = require('fs');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');

function fail(msg) {
  process.stderr.write('ort_run: ' + String(msg).split('\n')[0].trim() + '\n');
  process.exit(1);
}

function loadOrt() {
  try {
    const paths = [process.env.MEXPORT_REPO, REPO].filter(Boolean);
    return require(require.resolve('onnxruntime-node', { paths }));
  } catch (e) {
    fail(`cannot load onnxruntime-node from ${REPO}/node_modules ` +
         `(run: cd ${REPO} && ONNXRUNTIME_NODE_INSTALL=skip npm install): ${e.message}`);
  }
}

// dtype name -> [ort tensor type, TypedArray constructor]
const DTYPES = {
  float32: ['float32', Float32Array],
  float64: ['float64', Float64Array],
  int64: ['int64', BigInt64Array],
  int32: ['int32', Int32Array],
  int16: ['int16', Int16Array],
  int8: ['int8', Int8Array],
  uint8: ['uint8', Uint8Array],
  uint16: ['uint16', Uint16Array],
  uint32: ['uint32', Uint32Array],
  uint64: ['uint64', BigUint64Array],
  bool: ['bool', Uint8Array],
  float16: ['float16', Uint16Array],
};
const ORT_TO_DTYPE = { float: 'float32', double: 'float64' };

function readInput(inDir, spec) {
  for (const k of ['name', 'dtype', 'shape', 'file']) {
    if (!(k in spec)) fail(`inputs.json: an entry lacks "${k}"`);
  }
  const dt = DTYPES[spec.dtype];
  if (!dt) fail(`inputs.json: input ${spec.name}: unsupported dtype ${spec.dtype}`);
  const [ortType, Ctor] = dt;
  const buf = fs.readFileSync(path.resolve(inDir, spec.file));
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (buf.length !== count * Ctor.BYTES_PER_ELEMENT) {
    fail(`input ${spec.name}: ${spec.file} has ${buf.length} bytes, ` +
         `shape [${spec.shape}] ${spec.dtype} needs ${count * Ctor.BYTES_PER_ELEMENT}`);
  }
  // Copy into an aligned buffer (a Buffer may start at any offset).
  const data = new Ctor(count);
  new Uint8Array(data.buffer).set(buf);
  return [ortType, data, spec.shape];
}

function tensorBytes(t) {
  const d = t.data;
  if (!ArrayBuffer.isView(d)) fail(`output tensor of type ${t.type} has no raw data`);
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 3) fail('usage: node tests/e2e/ort_run.js MODEL.onnx IN_DIR OUT_DIR');
  const [modelPath, inDir, outDir] = args;
  if (os_little_endian() === false) fail('big-endian hosts are not supported');

  const ort = loadOrt();
  let specs;
  try {
    specs = JSON.parse(fs.readFileSync(path.join(inDir, 'inputs.json'), 'utf8'));
  } catch (e) {
    fail(`cannot read ${path.join(inDir, 'inputs.json')}: ${e.message}`);
  }
  if (!Array.isArray(specs)) fail('inputs.json must be a list');

  const feeds = {};
  for (const spec of specs) {
    const [type, data, shape] = readInput(inDir, spec);
    feeds[spec.name] = new ort.Tensor(type, data, shape);
  }

  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  const results = await session.run(feeds);

  fs.mkdirSync(outDir, { recursive: true });
  const outputs = [];
  for (const name of session.outputNames) {
    const t = results[name];
    const dtype = ORT_TO_DTYPE[t.type] || t.type;
    const file = name.replace(/[^A-Za-z0-9_.-]/g, '_') + '.bin';
    fs.writeFileSync(path.join(outDir, file), tensorBytes(t));
    outputs.push({ name, dtype, shape: Array.from(t.dims, Number), file });
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(outputs, null, 1) + '\n');
}

function os_little_endian() {
  return require('os').endianness() === 'LE';
}

main().catch((e) => fail(e && e.message ? e.message : e));
