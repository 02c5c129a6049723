// cel_eval.mjs - evaluates CEL expressions over given variables with cel-js (fetched by
// get-tools.sh), for the chart tests of expressions that are not admission policies: the
// DeviceClass's and a claim's device selectors (variable "device").
//
// Usage: node cel_eval.mjs CELJS-INDEX-JS < {"expressions": [E...], "contexts": [{NAME: VALUE}...]}
// Prints one JSON list, an entry per context, each a list with an entry per expression:
// {"value": V} or {"error": "..."}.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const cel = await import(pathToFileURL(process.argv[2]).href);
const input = JSON.parse(readFileSync(0, 'utf8'));
const out = input.contexts.map((ctx) => input.expressions.map((e) => {
  try {
    return { value: cel.evaluate(e, ctx) };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err).split('\n')[0] };
  }
}));
process.stdout.write(JSON.stringify(out) + '\n');
