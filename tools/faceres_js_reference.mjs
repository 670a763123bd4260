// One-off: HSE's FaceRes tf.js graph model itself (tf.js CPU backend, from the @vladmandic/face-api bundle
// in argv[2]) on the inputs in argv[5] (JSON list of SxSx3 float arrays: BGR minus the Caffe means, what
// our ONNX computes before its first convolution), printing [{p_male, age}] as JSON. argv[3] and argv[4]
// are the model's JSON and weights. Run by tools/faceres_reference.py; not needed to build or test faceread.
import fs from 'fs';
import { loadFaceApi } from './tfjs_node.mjs';

const tf = (await loadFaceApi(process.argv[2])).tf;
const model = JSON.parse(fs.readFileSync(process.argv[3]));
const bin = fs.readFileSync(process.argv[4]);
const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
const net = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: model.modelTopology, format: model.format, generatedBy: model.generatedBy,
  convertedBy: model.convertedBy, weightSpecs: model.weightsManifest.flatMap((g) => g.weights), weightData,
}));
const out = [];
for (const x of JSON.parse(fs.readFileSync(process.argv[5]))) {
  const size = Math.round(Math.sqrt(x.length / 3));
  const [gender, age] = net.execute(tf.tensor4d(Float32Array.from(x), [1, size, size, 3], 'float32'),
    ['gender_pred/Sigmoid', 'age_pred/Softmax']);
  const probs = age.dataSync();
  let years = 0;
  for (let i = 0; i < probs.length; i++) years += i * probs[i];
  out.push({ p_male: gender.dataSync()[0], age: years });
}
console.log(JSON.stringify(out));
