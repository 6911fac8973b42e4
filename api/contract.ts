/**
 * What the OpenAPI description says about a request, enforced before any route sees it: a method
 * the path does not declare is 405 with `Allow`, and path, query and header parameters must match
 * their schemas (422 naming the parameter). Request bodies are validated by the routes (`bodyOf`, api/validate.ts).
 */
import type { RequestHandler } from 'express';
import { bodyValidator, fromQueryString } from '../lib/json-schema.js';
import { HttpProblem } from '../lib/problem.js';
import { openapi } from './openapi.js';

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: { type?: string | readonly string[] };
}
type PathItem = Record<string, { parameters?: readonly Parameter[] }>;

interface Route {
  template: string;
  pattern: RegExp;
  /** Path parameter names, in the order of the pattern's groups. */
  names: string[];
  methods: Record<string, readonly Parameter[]>;
  /** Static segments win over parameters when two templates match ("/a/b" over "/a/{id}"). */
  params: number;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const routes: Route[] = Object.entries(openapi.paths as unknown as Record<string, PathItem>)
  .map(([template, item]) => {
    const names: string[] = [];
    const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, name: string) => (names.push(name), '([^/]+)'));
    const methods = Object.fromEntries(
      Object.entries(item)
        .filter(([m]) => METHODS.includes(m))
        .map(([m, op]) => [m.toUpperCase(), op.parameters ?? []]),
    );
    return { template, pattern: new RegExp(`^${source}/?$`), names, methods, params: names.length };
  })
  .sort((a, b) => a.params - b.params);

/** The parameters of one operation in one place ("path", "query" or "header") as one object schema. */
function parameterSchema(params: readonly Parameter[], where: string): object {
  const mine = params.filter((p) => p.in === where);
  return {
    type: 'object',
    properties: Object.fromEntries(mine.map((p) => [p.name, p.schema ?? {}])),
    required: mine.filter((p) => p.required).map((p) => p.name),
  };
}

const schemas = new Map<string, object>();
const validate = bodyValidator<string>((name) => schemas.get(name)!, [{ $id: 'billflow', components: openapi.components }]);

/** The description's path template `path` falls under ("/v1/invoices/INV-1" is "/v1/invoices/{number}"), if any. */
export function templateOf(path: string): string | undefined {
  return routes.find((r) => r.pattern.test(path))?.template;
}

export const contract: RequestHandler = (req, res, next) => {
  const route = routes.find((r) => r.pattern.test(req.path));
  if (!route) return next();
  const method = req.method === 'HEAD' && route.methods.GET ? 'GET' : req.method;
  const params = route.methods[method];
  if (!params) {
    const allow = Object.keys(route.methods).join(', ');
    res.set('Allow', allow);
    if (req.method === 'OPTIONS') return void res.status(204).end();
    return next(new HttpProblem(405, 'method-not-allowed', `${req.method} is not a method of ${route.template}; it allows ${allow}`));
  }
  const groups = route.pattern.exec(req.path)!.slice(1);
  const path: Record<string, string> = {};
  for (const [i, name] of route.names.entries()) {
    try {
      path[name] = decodeURIComponent(groups[i]!);
    } catch {
      return next(new HttpProblem(422, 'invalid-request', `${name} is not valid percent-encoding`, name));
    }
  }
  const query = Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, fromQueryString(v, params.find((p) => p.in === 'query' && p.name === k)?.schema)]));
  const headers = Object.fromEntries(params.filter((p) => p.in === 'header' && req.get(p.name) !== undefined).map((p) => [p.name, req.get(p.name)]));
  for (const [where, values] of [
    ['path', path],
    ['query', query],
    ['header', headers],
  ] as const) {
    const name = `${method} ${route.template} ${where}`;
    if (!schemas.has(name)) schemas.set(name, parameterSchema(params, where));
    validate(name, values);
  }
  next();
};
