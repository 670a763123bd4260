// One-off: face-api.js's own AgeGenderNet (tf.js CPU backend) on the inputs in argv[3] (JSON list of
// 112x112x3 RGB float arrays), printing [{age, p_male}] as JSON. Run by evaluation/agegender_reference.py;
// argv[2] is the unpacked npm package's folder. Not needed to build or test faceread.
import fs from 'fs';
import path from 'path';
import { loadFaceApi } from './tfjs_node.mjs';

const pkg = process.argv[2];
const faceapi = await loadFaceApi(pkg);
const tf = faceapi.tf;
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
