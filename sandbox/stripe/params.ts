/**
 * A request's parameters as Stripe reads them (form-encoded bodies, query strings; nested
 * `metadata[key]=value`): each handler takes the ones it knows, and any other is refused as
 * Stripe refuses it ("Received unknown parameter"), so a call the sandbox does not model never
 * passes silently.
 */
import { invalid } from './errors.js';

type Raw = Record<string, unknown>;

export class Params {
  private readonly taken = new Set<string>();

  constructor(private readonly raw: Raw) {}

  private take(name: string): unknown {
    this.taken.add(name);
    return this.raw[name];
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined;
  }

  string(name: string, opts: { required?: boolean; max?: number; oneOf?: readonly string[] } = {}): string | undefined {
    const v = this.take(name);
    if (v === undefined || v === '') {
      if (opts.required) throw invalid(`Missing required param: ${name}.`, name);
      return undefined;
    }
    if (typeof v !== 'string') throw invalid(`Invalid string: ${JSON.stringify(v)}`, name);
    if (opts.max !== undefined && v.length > opts.max) throw invalid(`Invalid ${name}: must be at most ${opts.max} characters`, name);
    if (opts.oneOf && !opts.oneOf.includes(v)) throw invalid(`Invalid ${name}: must be one of ${opts.oneOf.join(', ')}`, name);
    return v;
  }

  required(name: string, opts: { max?: number; oneOf?: readonly string[] } = {}): string {
    return this.string(name, { ...opts, required: true })!;
  }

  int(name: string, opts: { required?: boolean; min?: number } = {}): number | undefined {
    const v = this.string(name, { required: opts.required });
    if (v === undefined) return undefined;
    if (!/^-?\d{1,15}$/.test(v)) throw invalid(`Invalid integer: ${v}`, name);
    const n = Number(v);
    if (opts.min !== undefined && n < opts.min) throw invalid(`Invalid ${name}: must be at least ${opts.min}`, name);
    return n;
  }

  bool(name: string): boolean | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, name);
    return v === 'true';
  }

  /** Stripe's metadata: at most 50 keys of up to 40 characters, values of up to 500; '' deletes a key. */
  metadata(name = 'metadata'): Record<string, string> | undefined {
    const v = this.take(name);
    if (v === undefined || v === '') return v === '' ? {} : undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`Invalid object`, name);
    const entries = Object.entries(v as Raw);
    if (entries.length > 50) throw invalid('You can specify up to 50 keys in metadata.', name);
    const out: Record<string, string> = {};
    for (const [k, val] of entries) {
      if (typeof val !== 'string') throw invalid(`Invalid value for metadata[${k}]`, `${name}[${k}]`);
      if (k.length > 40) throw invalid(`Metadata keys can be at most 40 characters.`, `${name}[${k}]`);
      if (val.length > 500) throw invalid(`Metadata values can be at most 500 characters.`, `${name}[${k}]`);
      out[k] = val;
    }
    return out;
  }

  strings(name: string, opts: { required?: boolean } = {}): string[] | undefined {
    const v = this.take(name);
    if (v === undefined) {
      if (opts.required) throw invalid(`Missing required param: ${name}.`, name);
      return undefined;
    }
    // `a[]=x&a[]=y` and `a[0]=x&a[1]=y` both arrive as arrays (or, past 20 items, as an object).
    const list = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.values(v) : [v];
    if (!list.every((x): x is string => typeof x === 'string' && x !== '')) throw invalid(`Invalid array`, name);
    return list;
  }

  /** Refuses whatever the handler did not read: `expand` too, except where a handler takes it (payment intents). */
  done(): void {
    for (const name of Object.keys(this.raw)) {
      if (!this.taken.has(name)) throw invalid(`Received unknown parameter: ${name}`, name);
    }
  }
}
