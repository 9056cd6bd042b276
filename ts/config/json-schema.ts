/**
 * The JSON Schema (draft-07, what YAML language servers read) of the
 * configuration file, rendered from the field tree the validators use
 * (`fields.ts`). `scripts/gen-schema.mjs` writes it to
 * `schema/switchyard.schema.json`; a test fails when that file is stale.
 */
import { DURATION_PATTERN, formatDuration } from './duration.js';
import { CONFIG, writtenDefault, type Field } from './fields.js';
import { SIZE_PATTERN, formatSize } from './size.js';
import { HOST_ADDRESS_PATTERN } from '../dns/names.js';

/** A JSON Schema node (only the keywords used here). */
export type JsonSchema = Record<string, unknown>;

/** IPv4, `[IPv6]` or `localhost`, then a port; the validator is stricter (octet ranges, canonical IPv6). */
const ADDRESS_PATTERN = '^(localhost|\\d{1,3}(\\.\\d{1,3}){3}|\\[[0-9A-Fa-f:.]+\\]):\\d{1,5}$';

function describe(f: Field): string {
  if (f.kind === 'duration') return `${f.doc} A duration with a unit (250ms, 2s, 1.5s, 1m, 1h), ${formatDuration(f.min)}..${formatDuration(f.max)}; only 0 may omit the unit.`;
  if (f.kind === 'size') return `${f.doc} A size in bytes or with a unit (16k, 1m, 2g; k = 1024), ${formatSize(f.min)}..${formatSize(f.max)}.`;
  if (f.kind === 'address') return `${f.doc} Port ${f.minPort}..65535; IPv6 as "[::1]:port".`;
  return f.doc;
}

function node(f: Field): JsonSchema {
  const out: JsonSchema = { description: describe(f) };
  const dflt = writtenDefault(f);
  switch (f.kind) {
    case 'int':
      Object.assign(out, { type: 'integer', minimum: f.min, maximum: f.max });
      break;
    case 'number':
      Object.assign(out, { type: 'number', ...(f.min === undefined ? { exclusiveMinimum: f.exclusiveMin } : { minimum: f.min }), maximum: f.max });
      break;
    case 'bool':
      out.type = 'boolean';
      break;
    case 'enum':
      Object.assign(out, { type: 'string', enum: [...f.values] });
      break;
    case 'duration':
      // A string with a unit, or 0 (the validator also reads the string "0").
      out.anyOf = [{ type: 'string', pattern: DURATION_PATTERN }, { const: 0 }];
      break;
    case 'size':
      // Bytes, or a string with a unit; the string's range is checked by the validator.
      out.anyOf = [{ type: 'integer', minimum: f.min, maximum: f.max }, { type: 'string', pattern: SIZE_PATTERN }];
      break;
    case 'const':
      out.const = f.value;
      break;
    case 'string':
      out.type = 'string';
      if (f.pattern !== undefined) out.pattern = f.pattern;
      if (f.minLength !== undefined) out.minLength = f.minLength;
      if (f.maxLength !== undefined) out.maxLength = f.maxLength;
      break;
    case 'address':
      Object.assign(out, { type: 'string', pattern: f.hostNames ? `(${ADDRESS_PATTERN})|(${HOST_ADDRESS_PATTERN})` : ADDRESS_PATTERN });
      break;
    case 'object':
      Object.assign(out, {
        type: 'object',
        properties: Object.fromEntries(Object.entries(f.fields).map(([k, v]) => [k, node(v)])),
        additionalProperties: false,
      });
      if (f.required?.length) out.required = [...f.required];
      break;
    case 'map':
      Object.assign(out, { type: 'object', propertyNames: { pattern: f.keyPattern }, additionalProperties: node(f.value) });
      if (f.minEntries !== undefined) out.minProperties = f.minEntries;
      break;
    case 'list':
      Object.assign(out, { type: 'array', items: node(f.items) });
      if (f.minItems !== undefined) out.minItems = f.minItems;
      break;
    case 'anyOf':
      out.anyOf = f.of.map(node);
      break;
  }
  if (dflt !== undefined) out.default = dflt;
  return out;
}

/** The JSON Schema of a configuration file (YAML or JSON). */
export function configJsonSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Switchyard configuration',
    ...node(CONFIG),
  };
}

/** The schema as committed in `schema/switchyard.schema.json` (two-space JSON, final newline). */
export function renderConfigSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
