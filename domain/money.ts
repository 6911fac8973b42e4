/**
 * Money is always an integer count of the currency's minor unit (cents for USD).
 * Floats never carry amounts; formatting for people happens only at the edges.
 */
export type Minor = number;

export class DomainError extends Error {
  constructor(
    /** Stable machine-readable type, e.g. `invalid-amount`. */
    readonly type: string,
    message: string,
    /** The offending input field, when there is one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export function assertMinor(value: unknown, field: string): asserts value is Minor {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new DomainError('invalid-amount', `${field} must be an integer amount in minor units`, field);
  }
}

/** Sums integer amounts, refusing to leave the exactly-representable range. */
export function sum(values: readonly Minor[]): Minor {
  let total = 0;
  for (const v of values) total += v;
  if (!Number.isSafeInteger(total)) throw new DomainError('invalid-amount', 'amounts overflow the safe integer range');
  return total;
}

// Building a NumberFormat costs far more than using one (a bill sending run formats thousands).
const formats = new Map<string, { fmt: Intl.NumberFormat; digits: number }>();

/** Formats minor units for a document, e.g. 123456 USD -> "$1,234.56". */
export function formatMoney(amount: Minor, currency: string): string {
  let f = formats.get(currency);
  if (!f) {
    const fmt = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    f = { fmt, digits: fmt.resolvedOptions().maximumFractionDigits ?? 2 };
    formats.set(currency, f);
  }
  return f.fmt.format(amount / 10 ** f.digits);
}
