/** One JSON line per event, so a single search by requestId finds a whole story across processes. */
export type Logger = (msg: string, fields?: Record<string, unknown>) => void;

export function createLogger(component: string, out: NodeJS.WritableStream = process.stdout): Logger {
  return (msg, fields = {}) => {
    out.write(`${JSON.stringify({ at: new Date().toISOString(), component, msg, ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => {};
