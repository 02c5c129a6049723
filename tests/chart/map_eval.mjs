// map_eval.mjs - applies a rendered MutatingAdmissionPolicy to pods the way the API server does,
// with a CEL evaluator (@marcbachmann/cel-js, fetched by get-tools.sh), for the chart tests.
//
// Usage: node map_eval.mjs CELJS-INDEX-JS < {"spec": <policy spec>, "cases": [{"request",
//        "object"}...]}
// Prints one JSON list, an entry per case: {"matched": bool, "error": null or string, "object":
// the pod after the mutations, "again": the pod after a second run (reinvocation)}.
//
// What cel-js lacks, and this script supplies (test shims, faithful to Kubernetes' CEL):
//   - object construction, Object{...}, Object.spec{...}, Object.spec.containers{...}: rewritten
//     to map literals with the field names as string keys before evaluation;
//   - Kubernetes' quantity library: quantity(string) parses a Kubernetes quantity (decimal SI
//     n u m k M G T P E, binary Ki Mi Gi Ti Pi Ei, exponents e/E, a sign, a fraction) exactly, as
//     a rational; asInteger() errors when it is not an integer or does not fit in int64, as the
//     API server's does; isInteger();
//   - Kubernetes' list library: sum() (0 for an empty list) and max() (an error when empty);
//   - applying an ApplyConfiguration: a structured merge into the object in which maps merge key
//     by key, containers and initContainers (list-maps keyed by name) merge by name, anything else
//     is replaced. JSONPatch mutations are not implemented here (the chart uses none).
// Match: every matchCondition true. Variables are evaluated for each mutation, on the object as
// the mutations before left it. Any error is the case's error (failurePolicy Fail: denied).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const cel = await import(pathToFileURL(process.argv[2]).href);
const input = JSON.parse(readFileSync(0, 'utf8'));
const spec = input.spec;

// ---- Kubernetes quantities ----
const SUFFIX = {
  '': [1n, 1n], n: [1n, 10n ** 9n], u: [1n, 10n ** 6n], m: [1n, 1000n],
  k: [10n ** 3n, 1n], M: [10n ** 6n, 1n], G: [10n ** 9n, 1n], T: [10n ** 12n, 1n],
  P: [10n ** 15n, 1n], E: [10n ** 18n, 1n],
  Ki: [2n ** 10n, 1n], Mi: [2n ** 20n, 1n], Gi: [2n ** 30n, 1n], Ti: [2n ** 40n, 1n],
  Pi: [2n ** 50n, 1n], Ei: [2n ** 60n, 1n],
};

class Quantity {
  constructor(num, den) { this.num = num; this.den = den; }
}

export function parseQuantity(s) {
  const m = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(s);
  if (!m) throw new Error(`quantities must match the regular expression: ${JSON.stringify(s)}`);
  const [, sign, number, exp, suffix] = m;
  const [whole, frac = ''] = number.split('.');
  let num = BigInt((whole || '0') + frac), den = 10n ** BigInt(frac.length);
  if (exp) {
    const e = BigInt(exp.slice(1));
    if (e >= 0n) num *= 10n ** e; else den *= 10n ** -e;
  } else {
    const [mul, div] = SUFFIX[suffix ?? ''];
    num *= mul; den *= div;
  }
  if (sign === '-') num = -num;
  return new Quantity(num, den);
}

const INT64_MAX = 2n ** 63n - 1n, INT64_MIN = -(2n ** 63n);
function asInteger(q) {
  if (q.num % q.den !== 0n) throw new Error('cannot convert value to integer');
  const v = q.num / q.den;
  if (v > INT64_MAX || v < INT64_MIN) throw new Error('cannot convert value to integer');
  return v;
}

const env = new cel.Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false })
  .registerType('Quantity', Quantity)
  .registerFunction('quantity(string): Quantity', (s) => parseQuantity(s))
  .registerFunction('Quantity.asInteger(): int', (q) => asInteger(q))
  .registerFunction('Quantity.isInteger(): bool', (q) => q.num % q.den === 0n)
  .registerFunction('list.sum(): int', (l) => [...l].reduce((a, b) => a + b, 0n))
  .registerFunction('list.max(): int', (l) => {
    if (!l.length) throw new Error('max() of an empty list');
    return [...l].reduce((a, b) => (a > b ? a : b));
  });

// ---- Object{...} construction -> map literals ----
// Outside string literals: "Object(.name)*{" opens a message whose field names ("name:" right
// after "{" or ",") become string keys.
export function rewriteConstruction(expr) {
  let out = '';
  const stack = []; // per open brace: true when it opened a message
  let i = 0, expectField = false;
  while (i < expr.length) {
    const ch = expr[i];
    if (ch === '"' || ch === "'") { // a string literal, copied as it is
      let j = i + 1;
      while (j < expr.length && expr[j] !== ch) j += expr[j] === '\\' ? 2 : 1;
      out += expr.slice(i, j + 1);
      i = j + 1;
      expectField = false;
      continue;
    }
    const msg = /^Object(?:\.[A-Za-z_][A-Za-z0-9_]*)*\s*\{/.exec(expr.slice(i));
    if (msg && !/[A-Za-z0-9_.]/.test(expr[i - 1] ?? '')) {
      out += '{';
      stack.push(true);
      i += msg[0].length;
      expectField = true;
      continue;
    }
    if (ch === '{' || ch === '[' || ch === '(') { stack.push(false); out += ch; i++; expectField = false; continue; }
    if (ch === '}' || ch === ']' || ch === ')') { stack.pop(); out += ch; i++; expectField = false; continue; }
    if (ch === ',' && stack.at(-1) === true) { out += ch; i++; expectField = true; continue; }
    if (expectField) {
      const f = /^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*):/.exec(expr.slice(i));
      if (f) {
        out += `${f[1]}'${f[2]}'${f[3]}:`;
        i += f[0].length;
        expectField = false;
        continue;
      }
      if (!/\s/.test(ch)) expectField = false;
    }
    out += ch;
    i++;
  }
  return out;
}

// ---- structured merge of an apply configuration ----
const KEYED_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);
function merge(into, apply, field) {
  if (Array.isArray(apply) && KEYED_LISTS.has(field)) {
    const out = Array.isArray(into) ? into.map((x) => x) : [];
    for (const item of apply) {
      const at = out.findIndex((x) => x.name === item.name);
      if (at < 0) out.push(item); else out[at] = merge(out[at], item);
    }
    return out;
  }
  if (apply && typeof apply === 'object' && !Array.isArray(apply) && into && typeof into === 'object' &&
      !Array.isArray(into)) {
    const out = { ...into };
    for (const [k, v] of Object.entries(apply)) out[k] = k in out ? merge(out[k], v, k) : v;
    return out;
  }
  return apply;
}

// cel-js values back to JSON: ints are BigInt
function plain(v) {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function evaluate(expr, ctx) {
  return env.evaluate(rewriteConstruction(expr), ctx);
}

function mutateOnce(request, object) {
  for (const m of spec.mutations) {
    const variables = {};
    const ctx = { request, object, oldObject: null, variables };
    for (const v of spec.variables ?? []) variables[v.name] = evaluate(v.expression, ctx);
    if (m.patchType !== 'ApplyConfiguration') throw new Error(`patchType ${m.patchType} is not implemented here`);
    object = merge(object, plain(evaluate(m.applyConfiguration.expression, ctx)));
  }
  return object;
}

const out = [];
for (const c of input.cases) {
  const ctx = { request: c.request, object: c.object, oldObject: null };
  let matched = true;
  let error = null;
  try {
    for (const m of spec.matchConditions ?? []) {
      if (evaluate(m.expression, ctx) !== true) matched = false;
    }
  } catch (e) {
    error = `matchCondition: ${String(e?.message ?? e).split('\n')[0]}`;
  }
  let object = c.object, again = c.object;
  if (matched && error === null) {
    try {
      object = mutateOnce(c.request, c.object);
      again = mutateOnce(c.request, object);
    } catch (e) {
      error = String(e?.message ?? e).split('\n')[0];
    }
  }
  out.push({ matched, error, object, again });
}
process.stdout.write(JSON.stringify(out) + '\n');
