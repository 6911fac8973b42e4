/**
 * Stripe's published OpenAPI description (the copy inside the stripe-mock module the setup builds:
 * `embedded/openapi/spec3.json` in the Go module cache), as validators of the sandbox's Stripe
 * answers: each operation's 200 answer against its response schema, errors against Stripe's
 * error schema, event bodies against `event` and their object's own schema.
 *
 * Stricter than the description in one way: an object may carry only the properties Stripe
 * describes for it (`additionalProperties: false` wherever the description lists properties and
 * says nothing else), so a field the sandbox invents, or misspells, fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';

const STRIPE_MOCK_MODULE = 'github.com/stripe/stripe-mock@v0.203.0';

function stripeSpecPath(): string {
  const cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  const file = path.join(cache, STRIPE_MOCK_MODULE, 'embedded', 'openapi', 'spec3.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`node scripts/setup.mjs --for-tests\` (it builds stripe-mock with go install)`);
  return file;
}

type Json = Record<string, unknown>;

/** OpenAPI 3.0 into what Ajv checks: `nullable` admits null (beside `anyOf` and `enum` too); listed properties are all there may be. */
function tighten(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tighten);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, tighten(s)])) : tighten(v);
  if (out.properties && out.additionalProperties === undefined && (out.type === 'object' || out.type === undefined)) out.additionalProperties = false;
  // Stripe marks nullable enums without listing null among their values.
  if (out.nullable === true && Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...(out.enum as unknown[]), null];
  if (out.nullable === true && out.type === undefined) {
    const { nullable: _n, ...rest } = out;
    return { anyOf: [rest, { type: 'null' }] };
  }
  return out;
}

export interface StripeContract {
  /** Problems of one answer of `method path` with `status`, or [] when it is what Stripe describes. */
  check(method: string, path: string, status: number, body: unknown): string[];
  /** Problems of an error answered before any operation was matched (a bad key, an unknown path, an injected fault). */
  checkError(body: unknown): string[];
  /** Problems of an event as sent to a webhook endpoint. */
  checkEvent(event: { type: string; data: { object: { object: string } } }): string[];
  /** The operations the description has (`METHOD /v1/...`). */
  has(method: string, path: string): boolean;
}

export function stripeContract(): StripeContract {
  const spec = JSON.parse(readFileSync(stripeSpecPath(), 'utf8')) as { paths: Record<string, Record<string, Json>>; components: { schemas: Json } };
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true, validateSchema: false });
  ajv.addSchema({ $id: 'stripe', components: tighten(spec.components) });
  const cache = new Map<string, ValidateFunction>();
  const compile = (key: string, schema: unknown) => {
    let v = cache.get(key);
    if (!v) {
      // Refs inside the description point at '#/components/...'; they resolve against the added one.
      v = ajv.compile(JSON.parse(JSON.stringify(tighten(schema)).replaceAll('"#/components/', '"stripe#/components/')) as Json);
      cache.set(key, v);
    }
    return v;
  };
  const problems = (v: ValidateFunction, body: unknown) => (v(body) ? [] : (v.errors ?? []).slice(0, 8).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
  const op = (method: string, p: string) => spec.paths[p]?.[method.toLowerCase()] as { responses: Record<string, { content: Record<string, { schema: unknown }> }> } | undefined;
  return {
    has: (method, p) => op(method, p) !== undefined,
    check(method, p, status, body) {
      const o = op(method, p);
      if (!o) return [`${method} ${p} is not an operation Stripe describes`];
      const response = o.responses[status === 200 ? '200' : 'default'];
      const schema = response?.content['application/json']?.schema;
      if (!schema) return [`${method} ${p} has no ${status} answer in the description`];
      return problems(compile(`${method} ${p} ${status === 200 ? 200 : 'default'}`, schema), body);
    },
    checkError: (body) => problems(compile('error', { $ref: '#/components/schemas/error' }), body),
    checkEvent(event) {
      const envelope = problems(compile('event', { $ref: '#/components/schemas/event' }), event);
      const object = problems(compile(`object ${event.data.object.object}`, { $ref: `#/components/schemas/${event.data.object.object}` }), event.data.object);
      return [...envelope, ...object.map((x) => `data.object${x}`)];
    },
  };
}
