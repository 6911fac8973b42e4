/**
 * RFC 9457 problem documents for every error an HTTP service of ours returns: a stable `type`,
 * a human `detail`, and the offending `field` when there is one.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly detail: string,
    readonly field?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function sendProblem(res: Response, p: HttpProblem): void {
  res
    .status(p.status)
    .type('application/problem+json')
    .json({
      type: `https://billflow.dev/problems/${p.type}`,
      title: TITLES[p.status] ?? 'Error',
      status: p.status,
      detail: p.detail,
      ...(p.field ? { field: p.field } : {}),
      ...p.extra,
    });
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpProblem(404, 'not-found', `no route for ${req.method} ${req.path}`));
};

/** Turns thrown errors into problem documents; body-parser errors become 400/413/415. */
export function problemHandler(log: (msg: string, err: unknown, res: Response) => void): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpProblem) return sendProblem(res, err);
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') {
      return sendProblem(res, new HttpProblem(400, 'malformed-json', `request body is not valid JSON: ${e.message}`));
    }
    if (e.type === 'entity.too.large') return sendProblem(res, new HttpProblem(413, 'too-large', 'request body is too large'));
    if (e.status === 415 || e.type === 'encoding.unsupported') {
      return sendProblem(res, new HttpProblem(415, 'unsupported-media-type', e.message ?? 'unsupported media type'));
    }
    log('unhandled error', err, res);
    return sendProblem(res, new HttpProblem(500, 'internal', 'internal error; see the server log'));
  };
}
