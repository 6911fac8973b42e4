/**
 * `npm run rotate-secret-key`: re-encrypts every stored provider secret under a new key, in one
 * transaction (all or none).
 *
 * - Keys from the environment (production): BILLFLOW_SECRET_KEY is the new key and
 *   BILLFLOW_SECRET_KEY_PREVIOUS the old one. Start the API and worker with both first (they then
 *   open values under either), run this, then drop BILLFLOW_SECRET_KEY_PREVIOUS.
 * - Keys in the data folder (npm start): a new key is generated; the old one moves to
 *   secret-key.previous, which npm start still hands to the API and worker. Restart npm start after.
 *
 * The database is DATABASE_URL, or npm start's embedded PostgreSQL (it must be running).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../lib/db.js';
import { embeddedPgUrl } from '../lib/embedded-pg.js';
import { ROOT } from '../lib/paths.js';
import { keyring, newSecretKey, sealStoredSecrets } from '../lib/secrets.js';

const env = process.env;
const say = (msg: string) => process.stdout.write(`[rotate-secret-key] ${msg}\n`);
const dataDir = path.resolve(env.BILLFLOW_DATA_DIR ?? path.join(ROOT, 'data'));
const keyFile = path.join(dataDir, 'secret-key');
const fromEnv = Boolean(env.BILLFLOW_SECRET_KEY);

let next: string;
let previous: string;
if (fromEnv) {
  if (!env.BILLFLOW_SECRET_KEY_PREVIOUS) throw new Error('set BILLFLOW_SECRET_KEY_PREVIOUS to the key the secrets are stored under now, and BILLFLOW_SECRET_KEY to the new one');
  next = env.BILLFLOW_SECRET_KEY!;
  previous = env.BILLFLOW_SECRET_KEY_PREVIOUS;
} else {
  if (!existsSync(keyFile)) throw new Error(`no ${keyFile}: set BILLFLOW_SECRET_KEY and BILLFLOW_SECRET_KEY_PREVIOUS, or BILLFLOW_DATA_DIR`);
  previous = readFileSync(keyFile, 'utf8').trim();
  // Written before the database changes: whatever happens next, the new key is on disk.
  const pending = `${keyFile}.next`;
  if (!existsSync(pending)) writeFileSync(pending, `${newSecretKey()}\n`, { mode: 0o600 });
  next = readFileSync(pending, 'utf8').trim();
}

const ring = keyring(next, previous);
const sql = connect(env.DATABASE_URL ?? embeddedPgUrl(Number(env.EMBEDDED_PG_PORT ?? 5433), 'billflow'), { max: 1 });
try {
  const count = await sealStoredSecrets(sql, ring, { rotate: true });
  say(`${count} stored secret(s) re-encrypted under key ${ring.current.id} (was ${ring.previous[0]!.id})`);
} finally {
  await sql.end({ timeout: 5 });
}
if (!fromEnv) {
  renameSync(keyFile, `${keyFile}.previous`);
  renameSync(`${keyFile}.next`, keyFile);
  say(`${keyFile} holds the new key, ${keyFile}.previous the old one: restart npm start so the API and worker use it`);
} else {
  say('the API and worker can drop BILLFLOW_SECRET_KEY_PREVIOUS now');
}
