/**
 * Keeps the engine's processes up. A process that exits while the engine is not stopping is
 * started again after a backoff (0.5 s, doubling up to 30 s, back to 0.5 s once it has stayed up
 * a minute); the others keep running. `stop()` stops them in reverse start order, including one
 * waiting to be restarted or still starting.
 */
import type { ChildProcess } from 'node:child_process';

export interface Running {
  process: ChildProcess;
  /** Stops the process and resolves once it has exited. */
  stop(): Promise<void>;
}

export interface Service {
  name: string;
  /**
   * Starts the process and resolves once it serves. On failure (or when `signal` aborts because
   * the engine is stopping) it leaves no process behind and rejects.
   */
  start(signal: AbortSignal): Promise<Running>;
}

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const STABLE_MS = 60_000;

/** Delay before the next start after `inARow` exits without a stable minute in between. */
const restartDelay = (inARow: number): number => Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** inARow);

/** Resolves when the process has exited (at once if it already has). */
function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  // Node sets exitCode/signalCode just before it emits 'exit', so this check cannot miss the event.
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
}

interface Slot {
  service: Service;
  running?: Running;
  starting?: Promise<void>;
  timer?: NodeJS.Timeout;
  startedAt: number;
  restarts: number;
  inARow: number;
}

export interface SupervisorEvents {
  /** A restart (or a failed one) to print and log. */
  report(line: string, fields: Record<string, unknown>): void;
  /** The pids of the running processes changed. */
  pids(pids: Record<string, number>): void;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly stopping = new AbortController();

  constructor(private readonly events: SupervisorEvents) {}

  /** Starts a service for the first time and supervises it; a failure here is thrown (the engine did not start). */
  async add(service: Service): Promise<void> {
    if (this.stopping.signal.aborted) throw new Error(`${service.name} not started: stopping`);
    const slot: Slot = { service, startedAt: 0, restarts: 0, inARow: 0 };
    this.slots.push(slot);
    await this.launch(slot);
  }

  private launch(slot: Slot): Promise<void> {
    const signal = this.stopping.signal;
    slot.starting = (async () => {
      const running = await slot.service.start(signal);
      if (signal.aborted) return running.stop();
      slot.running = running;
      slot.startedAt = Date.now();
      this.publish();
      void exitOf(running.process).then(({ code, signal: sig }) => this.exited(slot, sig ? `signal ${sig}` : `code ${code}`));
    })().finally(() => (slot.starting = undefined));
    return slot.starting;
  }

  private exited(slot: Slot, how: string): void {
    slot.running = undefined;
    if (this.stopping.signal.aborted) return;
    this.publish();
    if (Date.now() - slot.startedAt >= STABLE_MS) slot.inARow = 0;
    this.scheduleRestart(slot, `exited (${how})`);
  }

  private scheduleRestart(slot: Slot, why: string): void {
    const delay = restartDelay(slot.inARow++);
    slot.restarts++;
    const name = slot.service.name;
    this.events.report(`${name} ${why}; restarting in ${(delay / 1000).toFixed(1)} s (restart ${slot.restarts})`, {
      service: name,
      why,
      delayMs: delay,
      restart: slot.restarts,
    });
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.launch(slot).catch((e: unknown) => {
        if (!this.stopping.signal.aborted) this.scheduleRestart(slot, `did not start (${e instanceof Error ? e.message : String(e)})`);
      });
    }, delay);
  }

  private publish(): void {
    const pids: Record<string, number> = {};
    for (const s of this.slots) if (s.running?.process.pid) pids[s.service.name] = s.running.process.pid;
    this.events.pids(pids);
  }

  /** Stops every service, last started first; none is restarted from now on. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const slot of [...this.slots].reverse()) {
      clearTimeout(slot.timer);
      await slot.starting?.catch(() => {});
      await slot.running?.stop();
    }
  }
}

/** Stops a child process: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  const exited = exitOf(proc);
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(kill);
}

/**
 * Waits for `ready` of the process `what`; if it exits first, `ready` fails or `signal` aborts (the engine is
 * stopping), stops the process with `stop` and rejects.
 */
export async function untilReady(what: string, proc: ChildProcess, ready: Promise<unknown>, signal: AbortSignal | undefined, stop: () => Promise<void>): Promise<void> {
  let onAbort = () => {};
  const failure = await Promise.race([
    ready.then(
      () => null,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    ),
    exitOf(proc).then(({ code, signal: sig }) => new Error(`${what} exited (${sig ? `signal ${sig}` : `code ${code}`}) before it was ready`)),
    new Promise<Error>((resolve) => {
      onAbort = () => resolve(new Error(`${what}: stopping`));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    }),
  ]);
  signal?.removeEventListener('abort', onAbort);
  if (!failure) return;
  await stop();
  throw failure;
}
