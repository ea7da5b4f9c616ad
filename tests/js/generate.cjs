// Run a genzoo generator in onnxruntime-node: tests/test_node.py feeds z on stdin as JSON
// {"model": PATH, "z": [...], "shape": [n, latent_dim]} and reads {"dims": [...], "data": [...]} back.
const ort = require("onnxruntime-node");

async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  const request = JSON.parse(text);
  const session = await ort.InferenceSession.create(request.model, { executionProviders: ["cpu"] });
  const z = new ort.Tensor("float32", Float32Array.from(request.z), request.shape);
  const { images } = await session.run({ z });
  process.stdout.write(JSON.stringify({
    inputs: session.inputNames, outputs: session.outputNames, dims: images.dims, data: Array.from(images.data),
  }));
}

main().catch((err) => { console.error(err.message); process.exit(1); });
