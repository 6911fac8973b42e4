/** The stack of test/stack.ts on the run's shared servers (from the global setup). */
import { inject } from 'vitest';
import { startStack as start, type Stack, type StackOptions } from './stack.js';

export { createTenant, eventually, http, ADMIN_KEY, type Stack, type Tenant } from './stack.js';

export function startStack(opts: Partial<StackOptions> = {}): Promise<Stack> {
  return start({
    databaseUrl: inject('databaseUrl'),
    sandboxDatabaseUrl: inject('sandboxDatabaseUrl'),
    temporalAddress: inject('temporalAddress'),
    chromiumPath: inject('chromiumPath'),
    workflowBundlePath: inject('workflowBundlePath'),
    smtpPort: inject('smtpPort'),
    ...opts,
  });
}
