// vap_eval.mjs - evaluates a rendered ValidatingAdmissionPolicy the way the API server does, with
// a CEL evaluator (@marcbachmann/cel-js, fetched by get-tools.sh), for the chart tests.
//
// Usage: node vap_eval.mjs CELJS-INDEX-JS < {"spec": <policy spec>, "cases": [{"request",
//        "object", "oldObject"}...]}
// Prints one JSON list, an entry per case: {"matched": bool, "allowed": bool, "failed": [...]},
// where failed names each validation that was false or raised an error (which, with
// failurePolicy Fail, denies too). Match: every matchCondition true (resourceRules are the
// test's to pick). Variables are evaluated in order and reach later ones as variables.NAME.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const cel = await import(pathToFileURL(process.argv[2]).href);
const input = JSON.parse(readFileSync(0, 'utf8'));
const spec = input.spec;

function run(expr, ctx) {
  try {
    return { value: cel.evaluate(expr, ctx) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e).split('\n')[0] };
  }
}

const out = [];
for (const c of input.cases) {
  const ctx = { request: c.request, object: c.object ?? null, oldObject: c.oldObject ?? null };
  let matched = true;
  for (const m of spec.matchConditions ?? []) {
    const r = run(m.expression, ctx);
    if (r.error !== undefined) throw new Error(`matchCondition ${m.name}: ${r.error}`);
    if (r.value !== true) matched = false;
  }
  const failed = [];
  if (matched) {
    const variables = {};
    for (const v of spec.variables ?? []) {
      const r = run(v.expression, { ...ctx, variables });
      // an erroring variable errors the validations that use it, as in the API server
      if (r.error === undefined) variables[v.name] = r.value;
    }
    for (const v of spec.validations) {
      const r = run(v.expression, { ...ctx, variables });
      if (r.error !== undefined) failed.push(`${v.message ?? v.expression}: error: ${r.error}`);
      else if (r.value !== true) failed.push(v.message ?? v.expression);
    }
  }
  out.push({ matched, allowed: failed.length === 0, failed });
}
process.stdout.write(JSON.stringify(out) + '\n');
