/**
 * One JSON line per event through pino, so a single search by requestId, companyId or
 * invoiceNumber finds a whole story across processes. Fields that could carry a secret are
 * redacted by name wherever they sit (up to two levels down), whatever the call site passes.
 */
import { pino, type Logger as Pino } from 'pino';

/** `log(msg, fields)`; `fields.level` ('DEBUG', 'INFO', 'WARN', 'ERROR') picks the level, INFO by default. */
export interface Logger {
  (msg: string, fields?: Record<string, unknown>): void;
  /** A logger adding these fields (a request's company, invoice and correlation id) to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

const SECRET_FIELDS = ['authorization', 'cookie', 'set-cookie', 'apiKey', 'api_key', 'secret', 'webhookSecret', 'password', 'pass', 'token', 'adminKey'];

/** The names at the top, one and two levels down (`headers.authorization`, `body.provider.apiKey`). */
const REDACTED_PATHS = SECRET_FIELDS.flatMap((f) => [`["${f}"]`, `*["${f}"]`, `*.*["${f}"]`]);

const LEVELS: Record<string, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

function wrap(p: Pino): Logger {
  const log = ((msg: string, fields: Record<string, unknown> = {}) => {
    const { level, ...rest } = fields;
    p[LEVELS[String(level ?? 'INFO').toUpperCase()] ?? 'info'](rest, msg);
  }) as Logger;
  log.child = (bindings) => wrap(p.child(bindings));
  return log;
}

export function createLogger(component: string, out: NodeJS.WritableStream = process.stdout): Logger {
  return wrap(
    pino(
      {
        base: { component },
        messageKey: 'msg',
        // The field name billflow's lines always had.
        timestamp: () => `,"at":"${new Date().toISOString()}"`,
        formatters: { level: (label) => ({ level: label.toUpperCase() }) },
        redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      },
      out,
    ),
  );
}

export const silentLogger: Logger = Object.assign(() => {}, { child: () => silentLogger });
