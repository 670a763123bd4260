// tf.js (CPU backend) from the @vladmandic/face-api bundle, under node: shared by the one-off reference
// recorders (evaluation/agegender_js_reference.mjs). `pkg` is the unpacked npm
// package's folder. Not needed to build or test faceread.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

export async function loadFaceApi(pkg) {
  // The ESM bundle imports Node's `util` through a browser stub; give it the real module.
  let src = fs.readFileSync(path.join(pkg, 'dist', 'face-api.esm.js'), 'utf8');
  const stub = 'this.util=AR(),';
  if (!src.includes(stub)) throw new Error('face-api.esm.js changed: update the util shim');
  src = "import * as __nodeUtil from 'util';\n" + src.replace(stub, 'this.util=__nodeUtil,');
  const shimmed = path.join(pkg, 'dist', 'face-api.shimmed.mjs');
  fs.writeFileSync(shimmed, src);
  const faceapi = await import(pathToFileURL(shimmed).href);
  await faceapi.tf.setBackend('cpu');
  await faceapi.tf.ready();
  return faceapi;
}
