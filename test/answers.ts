/**
 * Every answer of billflow's API that a test reads is checked against `/openapi.json`: the status
 * must be one the operation declares, and a JSON body must match the schema declared for that
 * status. A mismatch fails the test, named by operation, status and JSON pointer, so the
 * description cannot drift from what the server answers.
 */
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { templateOf } from '../api/contract.js';
import { openapi } from '../api/openapi.js';
import { schemaAjv } from '../lib/json-schema.js';

interface Answer {
  description?: string;
  $ref?: string;
  content?: Record<string, { schema?: object }>;
}
type Operations = Record<string, Record<string, { responses: Record<string, Answer> }>>;

const ajv = schemaAjv({ allErrors: true });
ajv.addSchema({ $id: 'billflow', components: openapi.components });
const compiled = new Map<string, ValidateFunction>();

/** `#/components/...` pointers of the description, made absolute within the registered document. */
function absolute(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"billflow#/')) as object;
}

function resolve(answer: Answer): Answer {
  if (!answer.$ref) return answer;
  const name = answer.$ref.split('/').pop()!;
  return (openapi.components.responses as Record<string, Answer>)[name]!;
}

const describeError = (e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`;

/**
 * The mismatches of one answer with the description (empty when it matches). Paths the
 * description does not have (the sandbox's, a 404 for an unknown route) are not checked here.
 */
export function answerMismatches(method: string, url: string, status: number, contentType: string, body: unknown): string[] {
  const path = new URL(url, 'http://x').pathname;
  const template = templateOf(path);
  if (!template) return [];
  const paths = openapi.paths as unknown as Operations;
  // HEAD is answered as GET (api/contract.ts).
  const operation = paths[template]?.[method.toLowerCase()] ?? (method.toUpperCase() === 'HEAD' ? paths[template]?.get : undefined);
  const name = `${method.toUpperCase()} ${template}`;
  // An undeclared method answers 405 before any route, for every path: the contract's own rule.
  if (!operation) return status === 405 || (method.toUpperCase() === 'OPTIONS' && status === 204) ? [] : [`${name}: answered ${status}, but the description has no such operation`];
  const declared = operation.responses[String(status)] ?? operation.responses[`${String(status)[0]}XX`] ?? operation.responses.default;
  if (!declared) return [`${name}: answered ${status}, which the description does not list (${Object.keys(operation.responses).join(', ')})`];
  const answer = resolve(declared);
  const media = contentType.split(';')[0]!.trim();
  const content = answer.content;
  if (!content) {
    return media.includes('json') && body !== '' ? [`${name} ${status}: answered ${media}, but the description declares no body for it`] : [];
  }
  const entry = content[media];
  if (!entry) return [`${name} ${status}: answered ${media || 'no content type'}, the description declares ${Object.keys(content).join(', ')}`];
  if (!entry.schema || !media.includes('json')) return [];
  const key = `${name} ${status} ${media}`;
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(absolute(entry.schema));
    compiled.set(key, v);
  }
  if (v(body)) return [];
  return v.errors!.map((e) => `${name} ${status}: ${describeError(e)}`);
}
