/** PostgreSQL access through postgres.js, and the versioned migrations runner. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface DbOptions {
  /** Pool size; each pool holds this many connections at most. */
  max?: number;
  statementTimeoutMs?: number;
}

export function connect(url: string, opts: DbOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    // Money is bigint in SQL but always a safe integer here; read it as a number, not a string.
    types: { int8: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) } },
    transform: { undefined: null },
    connection: { statement_timeout: opts.statementTimeoutMs ?? 30_000, application_name: 'billflow' },
  });
}

/**
 * Applies `NNN_name.sql` files from `dir` in order, each in its own transaction, once. An advisory
 * lock keeps concurrent starters (API and worker booting together) from racing.
 */
export async function migrate(sql: Sql, dir: string, table = 'schema_migrations'): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${table}))`;
    await tx`CREATE TABLE IF NOT EXISTS ${tx(table)} (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ name: string }[]>`SELECT name FROM ${tx(table)}`).map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await readFile(path.join(dir, file), 'utf8'));
      await tx`INSERT INTO ${tx(table)} (name) VALUES (${file})`;
      applied.push(file);
    }
  });
  return applied;
}
