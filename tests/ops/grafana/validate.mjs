// Checks a Grafana dashboard file against Grafana's own Dashboard type, the way Grafana's schema defines it:
// the JSON Schema is generated now, from the TypeScript type that the pinned @grafana/schema package ships
// (dist/types/raw/dashboard/x/types.gen.d.ts), by ts-json-schema-generator, and ajv validates the file against it.
// Each panel's options and custom field config are checked the same way against its panel type's own types
// (composable/<type>/panelcfg). No schema is stored here, so a newer @grafana/schema in package.json is the only thing
// to change to follow Grafana.
//
//   node validate.mjs DASHBOARD.json...
//
// Prints "FILE: valid (...)" per valid file, or "FILE: <path> <error>" per schema error; exits 0 only if every file is
// valid (1: some file is not; 2: cannot run). One run generates the schema once for all the files.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Ajv from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs DASHBOARD.json...');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const schemaRoot = dirname(require.resolve('@grafana/schema/package.json'));
const typesFile = join(schemaRoot, 'dist/types/raw/dashboard/x/types.gen.d.ts');
// The same module's default dashboard carries the schemaVersion this Grafana release writes.
const defaults = await import(pathToFileURL(join(schemaRoot, 'dist/esm/raw/dashboard/x/types.gen.mjs')).href);
const currentSchemaVersion = defaults.defaultDashboard.schemaVersion;

// skipTypeCheck: the .d.ts imports nothing we need type-checked; generation is what we want from it.
const schema = createGenerator({ path: typesFile, type: 'Dashboard', skipTypeCheck: true, expose: 'export', topRef: true })
  .createSchema('Dashboard');

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

// The Dashboard type leaves a panel's `options` and `fieldConfig.defaults.custom` open (they belong to the panel
// plugin); each core panel's own types (composable/<type>/panelcfg) close them. Generated once per panel type used.
const panelValidators = new Map();
function panelValidator(type) {
  if (panelValidators.has(type)) return panelValidators.get(type);
  const types = join(schemaRoot, 'dist/types/raw/composable', type, 'panelcfg/x/types.gen.d.ts');
  let v = null;
  if (/^[a-z0-9-]+$/.test(type) && existsSync(types)) {
    const source = readFileSync(types, 'utf8');
    const compile = (name) => new RegExp(`export interface ${name}\\b`).test(source)
      ? ajv.compile(createGenerator({ path: types, type: name, skipTypeCheck: true, expose: 'export', topRef: true }).createSchema(name))
      : null;
    v = { options: compile('Options'), custom: compile('FieldConfig') };
  }
  panelValidators.set(type, v);
  return v;
}

function* panelsOf(dashboard) {
  for (const [i, p] of (dashboard.panels ?? []).entries()) {
    if (p?.type === 'row') {
      for (const [j, q] of (p.panels ?? []).entries()) yield [`/panels/${i}/panels/${j}`, q];
    } else yield [`/panels/${i}`, p];
  }
}

function panelErrors(dashboard) {
  const errors = [];
  for (const [path, panel] of panelsOf(dashboard)) {
    if (typeof panel?.type !== 'string') continue; // the Dashboard schema reports it
    const v = panelValidator(panel.type);
    if (v === null) {
      errors.push(`${path}/type "${panel.type}" is not a panel type @grafana/schema describes`);
      continue;
    }
    const check = (validator, value, at) => {
      if (validator && value !== undefined && !validator(value))
        for (const e of validator.errors)
          errors.push(`${path}${at}${e.instancePath} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ''}`);
    };
    check(v.options, panel.options, '/options');
    check(v.custom, panel.fieldConfig?.defaults?.custom, '/fieldConfig/defaults/custom');
  }
  return errors;
}
const version = require('@grafana/schema/package.json').version;
let failed = false;
for (const file of files) {
  const errors = [];
  let dashboard;
  try {
    dashboard = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    errors.push(`not JSON: ${e.message}`);
  }
  if (dashboard !== undefined) {
    if (!validate(dashboard))
      for (const e of validate.errors)
        errors.push(`${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ''}`);
    else errors.push(...panelErrors(dashboard));
    // Grafana migrates an older schemaVersion on load and rewrites the file on save; we keep the file current instead.
    if (dashboard.schemaVersion !== currentSchemaVersion)
      errors.push(`/schemaVersion is ${dashboard.schemaVersion}; @grafana/schema ${version} writes ${currentSchemaVersion}`);
  }
  if (errors.length > 0) {
    failed = true;
    for (const line of errors) console.log(`${file}: ${line}`);
  } else {
    console.log(`${file}: valid (schemaVersion ${currentSchemaVersion}, @grafana/schema ${version}; panel types ${[...panelValidators.keys()].join(', ')})`);
  }
}
process.exit(failed ? 1 : 0);
