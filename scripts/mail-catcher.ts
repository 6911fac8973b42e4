/**
 * A mail catcher (maildev) in a process of its own: the benchmark's stand-in for an SMTP server
 * on another machine, so parsing what billflow sends does not share the worker's event loop.
 * Usage: mail-catcher.ts <smtpPort> <webPort>; prints "ready" once it listens.
 */
import { startMailDev } from '../lib/maildev.js';

const [smtpPort, webPort] = process.argv.slice(2).map(Number);
if (!smtpPort || !webPort) throw new Error('usage: mail-catcher.ts <smtpPort> <webPort>');
const mailDev = await startMailDev({ smtpPort, webPort });
process.stdout.write('ready\n');
const stop = () => void mailDev.stop().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
