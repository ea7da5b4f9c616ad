// The page's latent maths (export/web_template/genzoo-web.js) run in Node for tests/test_node.py:
// stdin {"script": PATH, "seeded": [[seed, n, d], ...], "walks": [[seedA, seedB, d, steps, method], ...]}.
async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  const request = JSON.parse(text);
  const math = require(request.script);
  const seeded = request.seeded.map(([seed, n, d]) => Array.from(math.seededLatents(seed, n, d)));
  const walks = request.walks.map(([a, b, d, steps, method]) =>
    Array.from(math.interpolateLatents(math.seededLatents(a, 1, d), math.seededLatents(b, 1, d), steps, method)));
  const parsed = request.fields.map(([text, low, high]) => {
    const v = math.parseWhole(text, "field", low, high);
    return v instanceof Error ? { error: v.message } : { value: v };
  });
  process.stdout.write(JSON.stringify({ seeded, walks, parsed }));
}

main().catch((err) => { console.error(err.stack); process.exit(1); });
