import { condition } from '@temporalio/workflow';

/**
 * Async message handlers that call activities must not interleave (a status change and a payment
 * both rewrite the invoice), so every handler runs its body under this lock.
 */
export class Lock {
  private held = false;

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await condition(() => !this.held);
    this.held = true;
    try {
      return await fn();
    } finally {
      this.held = false;
    }
  }
}
