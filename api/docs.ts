/**
 * `/docs`: Swagger UI rendering `/openapi.json`. Its files come from the swagger-ui-dist package and
 * are served by the API itself under /docs/assets (no CDN: the page works offline); the page and its
 * start script are billflow's, as the package's own index points at a demo description on the internet.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Router } from 'express';

const dist = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The package's files the page loads; nothing else of the package is served. */
const ASSETS = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'favicon-32x32.png', 'favicon-16x16.png']);

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>billflow API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/assets/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/start.js"></script>
</body>
</html>
`;

// validatorUrl null: by default Swagger UI sends the description to an online validator for a badge.
const START = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

// Only this origin, so a file that tried to reach elsewhere would be refused by the browser too.
// Swagger UI sets inline styles and draws its icons as data: images.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

export function docsRouter(): Router {
  const r = Router();
  r.get('/docs', (_req, res) => {
    res.set('content-security-policy', CSP).type('html').send(PAGE);
  });
  r.get('/docs/assets/start.js', (_req, res) => {
    res.type('text/javascript').send(START);
  });
  r.get('/docs/assets/:file', (req, res, next) => {
    if (!ASSETS.has(req.params.file)) return next();
    res.sendFile(req.params.file, { root: dist, maxAge: '1d' });
  });
  return r;
}
