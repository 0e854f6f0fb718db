// Provenance of tests/golden/tok_reference.json (not run by the build or the tests).
// Hugging Face's tokenizers (Rust) through its Node binding: npm install @anush008/tokenizers@0.6
// (with @anush008/tokenizers-linux-x64-gnu), then: node tok_reference.make.js TOKENIZER_JSON < strings.json
// strings.json is a JSON array of strings; prints a JSON array of id arrays (add_special_tokens=false).
const { Tokenizer } = require('@anush008/tokenizers');
const tok = Tokenizer.fromFile(process.argv[2] || 'models/vbrlab-moe-tiny/tokenizer.json');
const inp = JSON.parse(require('fs').readFileSync(0, 'utf8'));
(async () => {
  const out = [];
  for (const s of inp) { const e = await tok.encode(s, null, {addSpecialTokens: false}); out.push(Array.from(e.getIds())); }
  console.log(JSON.stringify(out));
})();
