/**
 * markdown-it plugins of the docs site: Mermaid diagrams rendered at build time, and inline code that Vue leaves
 * alone.
 *
 * Mermaid diagrams are rendered to inline SVG when the site is built, with beautiful-mermaid (pure TypeScript layout with
 * ELK, no DOM and no browser): the pages need no diagram script, the diagrams' text is searchable by the browser,
 * and the build works offline.
 *
 * The SVG it returns is made fit for a page that holds several of them: its `<style>` element (which would apply to
 * the whole document, and imports a web font from a third-party host) is dropped, since the site's stylesheet
 * defines the same colour variables once (`docs/.vitepress/theme/style.css`, from the page's theme colours, so dark
 * mode follows), and its marker ids are made unique per diagram.
 */
import { createHash } from 'node:crypto';
import { renderMermaidSVG } from 'beautiful-mermaid';
import type { MarkdownRenderer } from 'vitepress';

/** Thrown (failing the build) for a diagram that does not parse. */
export class DiagramError extends Error {}

/**
 * Renders one Mermaid diagram to an inline SVG for the site.
 * @param source - the diagram's Mermaid text
 * @param where - names the diagram in an error (page and line)
 * @returns `<svg …>` without `<style>`, with ids unique to this diagram, colours from CSS variables
 * @throws {@link DiagramError} when beautiful-mermaid cannot render it
 */
export function renderDiagram(source: string, where: string): string {
  let svg: string;
  try {
    svg = renderMermaidSVG(source, { bg: 'var(--vp-c-bg)', fg: 'var(--vp-c-text-1)', transparent: true });
  } catch (error) {
    throw new DiagramError(`${where}: the Mermaid diagram does not render: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const prefix = `d${createHash('sha256').update(source).digest('hex').slice(0, 8)}-`;
  const ids = [...svg.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!);
  let out = svg.replace(/<style>[\s\S]*?<\/style>\s*/g, '');
  for (const id of new Set(ids)) {
    const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out
      .replace(new RegExp(`\\bid="${escaped}"`, 'g'), `id="${prefix}${id}"`)
      .replace(new RegExp(`url\\(#${escaped}\\)`, 'g'), `url(#${prefix}${id})`)
      .replace(new RegExp(`href="#${escaped}"`, 'g'), `href="#${prefix}${id}"`);
  }
  return out;
}

/**
 * A markdown-it plugin: a fenced block with the language `mermaid` becomes a `<figure class="diagram">` holding the
 * rendered SVG (`v-pre`, so Vue leaves its text alone). Other fences render as before.
 * @param md - VitePress's markdown-it instance
 */
export function mermaidDiagrams(md: MarkdownRenderer): void {
  const fence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, options, env: { relativePath?: string }, self) => {
    const token = tokens[idx]!;
    if (token.info.trim() !== 'mermaid') return fence(tokens, idx, options, env, self);
    const where = `${env.relativePath ?? 'page'}:${(token.map?.[0] ?? 0) + 1}`;
    return `<figure class="diagram" v-pre>${renderDiagram(token.content, where)}</figure>\n`;
  };
}

/**
 * A markdown-it plugin: inline code is rendered `v-pre`, so Vue prints `{{ … }}` in it literally. VitePress does this
 * for fenced blocks only; an inline `Patient/{{context.patientId}}` (a CDS Hooks prefetch template) would otherwise be
 * evaluated as a Vue expression and break the page.
 * @param md - VitePress's markdown-it instance
 */
export function literalInlineCode(md: MarkdownRenderer): void {
  const codeInline = md.renderer.rules.code_inline!;
  md.renderer.rules.code_inline = (tokens, idx, options, env, self) => {
    tokens[idx]!.attrSet('v-pre', '');
    return codeInline(tokens, idx, options, env, self);
  };
}
