// validate_models.mjs - checks Kubernetes objects against the Kubernetes API schema, for the
// chart tests: each object is built as the kubernetes-models class of its apiVersion and kind
// (kubernetes-models 5.1.0, fetched by get-tools.sh with the yaml package) and validate()d, which
// runs the API's OpenAPI schema (required fields, types, enums, formats) over it.
//
// Usage: node validate_models.mjs MODELS-NODE-MODULES [FILE...]   (no FILE: standard input)
// Input: YAML, one or more documents (`helm template`'s output as it is), or JSON (a JSON
// document is YAML). A document that is a list, or a kind ending in "List" with items, counts
// as its items; empty documents are skipped.
// Prints one JSON list, an entry per object: {"apiVersion", "kind", "name", "ok", "errors"}.
// Exits 0 when every object is valid, 1 when one is not, or its apiVersion/kind is one
// kubernetes-models does not know (no class, no validation: a failure, never a pass), 2 on bad
// usage or input that does not parse.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modulesArg, ...files] = process.argv.slice(2);
const modules = modulesArg && resolve(modulesArg);
if (!modules || !existsSync(join(modules, 'kubernetes-models', 'package.json'))) {
  process.stderr.write('usage: validate_models.mjs MODELS-NODE-MODULES [FILE...]\n');
  process.exit(2);
}
const YAML = createRequire(join(modules, 'index.js'))('yaml');
const root = join(modules, 'kubernetes-models');

// "apps/v1" -> <root>/apps/v1/<Kind>.js; core "v1" -> <root>/v1/<Kind>.js
function classFile(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  const f = join(root, ...apiVersion.split('/'), kind + '.js');
  return existsSync(f) ? f : null;
}

async function check(obj) {
  const apiVersion = obj?.apiVersion, kind = obj?.kind;
  const entry = { apiVersion, kind, name: obj?.metadata?.name ?? null, ok: false, errors: [] };
  const f = classFile(apiVersion, kind);
  if (!f) {
    entry.errors.push(`unknown apiVersion/kind ${apiVersion}/${kind}: kubernetes-models has no ` +
                      'class for it, so it cannot be validated');
    return entry;
  }
  const cls = (await import(pathToFileURL(f).href))[kind];
  if (!cls || cls.apiVersion !== apiVersion || cls.kind !== kind) {
    entry.errors.push(`kubernetes-models' ${f} does not export ${apiVersion}/${kind}`);
    return entry;
  }
  try {
    new cls(obj).validate();
    entry.ok = true;
  } catch (e) {
    // ajv's errors: "data/spec/x must ...", one per line; kept as they are
    const msg = String(e && e.message ? e.message : e);
    entry.errors.push(...msg.split(/\n|, (?=data)/).filter((l) => l.trim()));
  }
  return entry;
}

function* objectsOf(doc) {
  if (doc === null || doc === undefined) return;
  if (Array.isArray(doc)) {
    for (const d of doc) yield* objectsOf(d);
  } else if (typeof doc?.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
    for (const d of doc.items) yield* objectsOf(d);
  } else {
    yield doc;
  }
}

const texts = files.length ? files.map((f) => readFileSync(f, 'utf8')) : [readFileSync(0, 'utf8')];
const objects = [];
for (const text of texts) {
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) {
      process.stderr.write(`validate_models.mjs: YAML does not parse: ${d.errors[0].message}\n`);
      process.exit(2);
    }
    objects.push(...objectsOf(d.toJS()));
  }
}
const out = [];
for (const o of objects) out.push(await check(o));
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.every((e) => e.ok) ? 0 : 1);
