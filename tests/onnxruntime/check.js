#!/usr/bin/env node
// Loads ONNX models with onnxruntime-node, runs them with no inputs and compares every graph
// output with expected values. Used by tests/sanitize_test.py; see install.sh for the install.
//
//   node check.js MODEL.onnx EXPECTED.json [MODEL2.onnx EXPECTED2.json ...]
//
// EXPECTED.json maps each output name to {"dims": [..], "type": "<ort type>", "hex": "<bytes>"}:
// `type` is onnxruntime's tensor type string (float32, float64, float16, int8, uint8, int16,
// uint16, int32, uint32, int64, uint64, bool), `hex` the output's row-major little-endian bytes.
// The set of session outputs must equal the set of expected names (types the JS binding cannot
// return — bfloat16, float8, complex — must not be in the model at all: session creation fails).
//
// Prints one line per model, "ok <model> (N outputs)" or "FAIL <model>: <reasons>", and exits
// 0 if every model matched, 1 if some did not, 2 on bad usage or when onnxruntime-node is missing.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(message) {
  process.stderr.write(`check.js: ${message}\nusage: node check.js MODEL.onnx EXPECTED.json [MODEL EXPECTED ...]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) usage('expected pairs of MODEL.onnx EXPECTED.json');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  process.stderr.write(`check.js: cannot load onnxruntime-node (run ${path.join(__dirname, 'install.sh')}): ${e.message}\n`);
  process.exit(2);
}

function bytesOf(data) {
  // Every numeric TypedArray (BigInt64Array for int64, Uint16Array for float16, Uint8Array for
  // bool) exposes its little-endian bytes through its buffer on x86/ARM hosts.
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new Error(`output data is not a typed array (${Object.prototype.toString.call(data)})`);
}

function sameDims(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => Number(x) === Number(b[i]));
}

function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

async function checkModel(modelPath, expectedPath) {
  const problems = [];
  let expected;
  try {
    expected = JSON.parse(fs.readFileSync(expectedPath, 'utf8'));
  } catch (e) {
    return [`cannot read expectations ${expectedPath}: ${e.message}`];
  }
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath);
  } catch (e) {
    return [`session creation failed: ${e.message}`];
  }
  try {
    const names = [...session.outputNames].sort();
    const want = Object.keys(expected).sort();
    const missing = want.filter((n) => !names.includes(n));
    const extra = names.filter((n) => !want.includes(n));
    if (missing.length) problems.push(`outputs missing from the model: ${JSON.stringify(missing)}`);
    if (extra.length) problems.push(`unexpected outputs: ${JSON.stringify(extra)}`);
    let results;
    try {
      results = await session.run({});
    } catch (e) {
      problems.push(`run failed: ${e.message}`);
      return problems;
    }
    for (const name of want) {
      const t = results[name];
      if (!t) {
        if (names.includes(name)) problems.push(`${name}: no value returned`);
        continue;
      }
      const e = expected[name];
      if (t.type !== e.type) problems.push(`${name}: type ${t.type}, expected ${e.type}`);
      if (!sameDims(t.dims, e.dims)) problems.push(`${name}: dims ${JSON.stringify(t.dims)}, expected ${JSON.stringify(e.dims)}`);
      let got;
      try {
        got = bytesOf(t.data);
      } catch (err) {
        problems.push(`${name}: ${err.message}`);
        continue;
      }
      if (typeof e.hex !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(e.hex)) {
        problems.push(`${name}: expectation "hex" is not an even-length hex string`);
        continue;
      }
      const want_bytes = Buffer.from(e.hex, 'hex');
      if (!got.equals(want_bytes)) {
        const i = firstDiff(got, want_bytes);
        problems.push(`${name}: ${got.length} bytes, expected ${want_bytes.length}; first difference at byte ${i} ` +
                      `(got ${got.subarray(i, i + 8).toString('hex')}, expected ${want_bytes.subarray(i, i + 8).toString('hex')})`);
      }
    }
    if (!problems.length) return [null, want.length];
    return problems;
  } finally {
    if (session && typeof session.release === 'function') await session.release().catch(() => {});
  }
}

(async () => {
  let failed = 0;
  for (let i = 0; i < args.length; i += 2) {
    const [model, exp] = [args[i], args[i + 1]];
    const r = await checkModel(model, exp);
    if (r[0] === null) {
      console.log(`ok ${model} (${r[1]} outputs)`);
    } else {
      failed++;
      console.log(`FAIL ${model}: ${r.join('; ')}`);
    }
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  process.stderr.write(`check.js: ${e.stack || e}\n`);
  process.exit(2);
});
