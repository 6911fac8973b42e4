import { condition } from '@temporalio/workflow';

/**
 * Async message handlers that call activities must not interleave (a status change and a payment
 * both rewrite the invoice), so every handler runs its body under this lock.
 *
 * The lock is claimed inside the condition itself: when it frees, the SDK evaluates every waiting
 * condition in one pass before any continuation runs, so a claim made after the `await` let every
 * waiter in at once (and the first to finish freed the lock under the others). Waiters are
 * evaluated in the order they began waiting, so the lock is handed on first come, first served.
 * `exclusive` is false only to replay runs recorded with that old lock.
 */
export class Lock {
  private held = false;

  constructor(private readonly exclusive: boolean) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.exclusive) {
      await condition(() => (this.held ? false : (this.held = true)));
    } else {
      await condition(() => !this.held);
      this.held = true;
    }
    try {
      return await fn();
    } finally {
      this.held = false;
    }
  }
}
