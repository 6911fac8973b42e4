/** A self-contained HTML rendering of the OpenAPI description (no CDN: it must work offline). */
import { openapi } from './openapi.js';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

interface Operation {
  summary?: string;
  description?: string;
  parameters?: readonly { name: string; in: string; description?: string }[];
  requestBody?: { content: { 'application/json': { schema: { $ref: string } } } };
  responses: Record<string, { description?: string; $ref?: string; content?: Record<string, { schema?: unknown }> }>;
}

export function docsHtml(): string {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(openapi.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      const params = (op.parameters ?? []).map((p) => `<li><code>${esc(p.name)}</code> (${p.in})${p.description ? ` ${esc(p.description)}` : ''}</li>`).join('');
      const bodyRef = op.requestBody?.content['application/json'].schema.$ref.split('/').pop();
      const responses = Object.entries(op.responses)
        .map(([code, r]) => {
          // The body: a link to its component schema, or the schema itself when it is written in place (listings).
          const schema = r.content?.['application/json']?.schema as { $ref?: string } | undefined;
          const ref = schema?.$ref?.split('/').pop();
          const shape = ref ? ` <a href="#${ref}">${ref}</a>` : schema ? `<pre>${esc(JSON.stringify(schema))}</pre>` : '';
          return `<li><code>${code}</code> ${esc(r.description ?? 'problem document')}${shape}</li>`;
        })
        .join('');
      ops.push(`<section><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>
<p><strong>${esc(op.summary ?? '')}</strong></p>${op.description ? `<p>${esc(op.description)}</p>` : ''}
${params ? `<h4>Parameters</h4><ul>${params}</ul>` : ''}
${bodyRef ? `<h4>Body: <a href="#${bodyRef}">${bodyRef}</a></h4>` : ''}
<h4>Responses</h4><ul>${responses}</ul></section>`);
    }
  }
  const schemas = Object.entries(openapi.components.schemas)
    .map(([name, s]) => `<section id="${name}"><h3>${name}</h3><pre>${esc(JSON.stringify(s, null, 2))}</pre></section>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(openapi.info.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1d2433}
section{border-top:1px solid #dde;padding:.4em 0}.m{display:inline-block;min-width:4em;color:#fff;border-radius:4px;padding:2px 6px;font-size:.8em}
.get{background:#2f7d32}.post{background:#2f5bea}pre{background:#f5f6fa;padding:1em;overflow:auto}</style></head>
<body><h1>${esc(openapi.info.title)} <small>${esc(openapi.info.version)}</small></h1><p>${esc(openapi.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${openapi.openapi}).</p>
<h2>Operations</h2>${ops.join('\n')}<h2>Schemas</h2>${schemas}</body></html>`;
}
