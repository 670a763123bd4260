// One-off: face-api.js's own AgeGenderNet (tf.js CPU backend) on the inputs in argv[3] (JSON list of
// 112x112x3 RGB float arrays), printing [{age, p_male}] as JSON. Run by evaluation/agegender_reference.py;
// argv[2] is the unpacked npm package's folder. Not needed to build or test faceread.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

const pkg = process.argv[2];
// The ESM bundle imports Node's `util` through a browser stub; give it the real module.
let src = fs.readFileSync(path.join(pkg, 'dist', 'face-api.esm.js'), 'utf8');
const stub = 'this.util=AR(),';
if (!src.includes(stub)) throw new Error('face-api.esm.js changed: update the util shim');
src = "import * as __nodeUtil from 'util';\n" + src.replace(stub, 'this.util=__nodeUtil,');
const shimmed = path.join(pkg, 'dist', 'face-api.shimmed.mjs');
fs.writeFileSync(shimmed, src);
const faceapi = await import(pathToFileURL(shimmed).href);
const tf = faceapi.tf;
await tf.setBackend('cpu');
await tf.ready();
const manifest = JSON.parse(fs.readFileSync(path.join(pkg, 'model', 'age_gender_model-weights_manifest.json')));
const bin = fs.readFileSync(path.join(pkg, 'model', 'age_gender_model.bin'));
const weights = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
  manifest[0].weights);
const net = faceapi.nets.ageGenderNet;
net.loadFromWeightMap(weights);
const out = [];
for (const x of JSON.parse(fs.readFileSync(process.argv[3]))) {
  const r = await net.predictAgeAndGender(tf.tensor3d(Float32Array.from(x), [112, 112, 3], 'float32'));
  out.push({ age: r.age, p_male: r.gender === 'male' ? r.genderProbability : 1 - r.genderProbability });
}
console.log(JSON.stringify(out));
