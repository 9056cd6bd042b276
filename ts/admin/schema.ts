/**
 * The JSON Schemas of the admin API's request bodies, and a small validator
 * for the subset of JSON Schema they use. The same objects are embedded in
 * the OpenAPI document (`openapi.ts`), so what the server enforces and what
 * it documents cannot drift apart.
 */

/** The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) understood here. */
export interface Schema {
  $ref?: string;
  type?: SchemaType | SchemaType[];
  enum?: readonly unknown[];
  properties?: Record<string, Schema>;
  required?: readonly string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  description?: string;
  examples?: unknown[];
  format?: string;
}

export type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null';

/** One validation failure: where (`body.weight`) and what. */
export interface SchemaIssue {
  path: string;
  message: string;
}

import { ALGORITHMS, BACKEND_STATES } from '../config/validate.js';
import { LIMITS } from '../binding/catalog.generated.js';

export { ALGORITHMS, BACKEND_STATES };

const ADDRESS: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: 100,
  description: '`ip:port` or `[ipv6]:port` (IP literals and `localhost` only).',
  examples: ['10.0.0.4:80'],
};

/** Request bodies, by name (also `components.schemas` of the OpenAPI document). */
export const REQUEST_SCHEMAS = {
  AddBackend: {
    type: 'object',
    required: ['address'],
    additionalProperties: false,
    properties: {
      address: ADDRESS,
      weight: { type: 'integer', minimum: LIMITS.weight.min, maximum: LIMITS.weight.max, description: `Relative weight. Default ${LIMITS.weight.default}.` },
      backup: { type: 'boolean', description: 'Use only when no primary is available. Default false.' },
      state: { type: 'string', enum: BACKEND_STATES, description: 'Operator state. Default `ready`.' },
    },
  },
  SetWeight: {
    type: 'object',
    required: ['weight'],
    additionalProperties: false,
    properties: { weight: { type: 'integer', minimum: LIMITS.weight.min, maximum: LIMITS.weight.max, description: '0 takes no new connections.' } },
  },
  SetState: {
    type: 'object',
    required: ['state'],
    additionalProperties: false,
    properties: { state: { type: 'string', enum: BACKEND_STATES } },
  },
  SetAlgorithm: {
    type: 'object',
    required: ['algorithm'],
    additionalProperties: false,
    properties: { algorithm: { type: 'string', enum: ALGORITHMS } },
  },
  Upgrade: {
    type: 'object',
    additionalProperties: false,
    properties: {
      binary: { type: 'string', minLength: 1, description: 'The executable to start instead of this process\'s own command (it gets the same arguments). Default: the same command again (an `npm install` of a new version replaced its files).' },
    },
  },
  SetTraceSample: {
    type: 'object',
    required: ['rate'],
    additionalProperties: false,
    properties: { rate: { type: 'number', minimum: 0, maximum: 1, description: 'The share of connections (HTTP: requests) traced: 0 (none) to 1 (every one).' } },
  },
} satisfies Record<string, Schema>;

function typeOf(v: unknown): SchemaType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as SchemaType;
}

function describe(v: unknown): string {
  const t = typeOf(v);
  if (t === 'string') {
    const s = v as string;
    return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
  }
  if (t === 'object' || t === 'array') return `an ${t}`;
  return String(v);
}

/**
 * Validate `value` against `schema`; `$ref`s (`#/components/schemas/X`) are
 * looked up in `root`. Returns every issue found (empty when valid).
 */
export function validate(value: unknown, schema: Schema, root: unknown = {}, path = 'body'): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const walk = (v: unknown, s: Schema, p: string): void => {
    if (s.$ref) {
      const target = s.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), root);
      if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
      walk(v, target as Schema, p);
      return;
    }
    if (s.type) {
      const allowed = Array.isArray(s.type) ? s.type : [s.type];
      const t = typeOf(v);
      const ok = allowed.includes(t) || (t === 'integer' && allowed.includes('number'));
      if (!ok) {
        issues.push({ path: p, message: `expected ${allowed.join(' or ')}, got ${describe(v)}` });
        return;
      }
    }
    if (s.enum && !s.enum.includes(v)) {
      issues.push({ path: p, message: `expected one of ${s.enum.join(', ')}, got ${describe(v)}` });
      return;
    }
    if (typeof v === 'number') {
      if (s.minimum !== undefined && v < s.minimum) issues.push({ path: p, message: `expected at least ${s.minimum}, got ${v}` });
      if (s.maximum !== undefined && v > s.maximum) issues.push({ path: p, message: `expected at most ${s.maximum}, got ${v}` });
    }
    if (typeof v === 'string') {
      if (s.minLength !== undefined && v.length < s.minLength) issues.push({ path: p, message: `expected at least ${s.minLength} characters` });
      if (s.maxLength !== undefined && v.length > s.maxLength) issues.push({ path: p, message: `expected at most ${s.maxLength} characters` });
      if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) issues.push({ path: p, message: `does not match ${s.pattern}` });
    }
    if (Array.isArray(v) && s.items) v.forEach((x, i) => walk(x, s.items!, `${p}[${i}]`));
    if (typeOf(v) === 'object') {
      const o = v as Record<string, unknown>;
      for (const k of s.required ?? []) if (!(k in o)) issues.push({ path: `${p}.${k}`, message: 'missing' });
      for (const [k, x] of Object.entries(o)) {
        const sub = s.properties?.[k];
        if (sub) walk(x, sub, `${p}.${k}`);
        else if (s.additionalProperties === false) {
          issues.push({ path: `${p}.${k}`, message: `unknown key (allowed: ${Object.keys(s.properties ?? {}).join(', ')})` });
        } else if (typeof s.additionalProperties === 'object') walk(x, s.additionalProperties, `${p}.${k}`);
      }
    }
  };
  walk(value, schema, path);
  return issues;
}
