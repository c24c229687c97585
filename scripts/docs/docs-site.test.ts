import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMarkdownRenderer, disposeMdItInstance } from 'vitepress';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSite } from './check-links.mjs';
import { DiagramError, literalInlineCode, mermaidDiagrams, renderDiagram } from './markdown.js';
import { DeadRepositoryLinkError, rebaseLinks, repositoryLinks, sourcePages, type SourcePage } from './sources.js';
import { headingIds, repairAnchors, slugify } from './typedoc-anchors.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'cdss-docs-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function writeTree(root: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('check-links', () => {
  const site = writeTree(join(scratch, 'dist'), {
    'index.html': '<a href="/guides/a.html">A</a><a href="https://example.org/x">out</a><a href="/api/">api</a>',
    'guides/a.html':
      '<h2 id="ok">ok</h2><a href="#ok">self</a><a href="./b.html#gone">b</a><a href="/missing.html">m</a>' +
      '<a href="b.html#there">there</a><a href="mailto:x@example.org">mail</a>',
    'guides/b.html': '<div id="there"></div>',
    'api/index.html': '<a href="../guides/a.html#ok">back</a>',
  });

  it('reports a link to a missing page and an anchor missing on its page, and passes the rest', () => {
    const result = checkSite(site) as { pages: number; links: number; anchors: number; dead: string[] };
    expect(result.pages).toBe(4);
    expect(result.dead.sort()).toEqual([
      'guides/a.html: ./b.html#gone names no element #gone on guides/b.html',
      'guides/a.html: /missing.html names no page',
    ]);
    expect(result.links).toBe(7);
    expect(result.anchors).toBe(4);
  });

  it('checks links against the base path the site is served under', () => {
    const based = writeTree(join(scratch, 'based'), {
      'index.html': '<a href="/docs/a.html">a</a><a href="/elsewhere/b.html">b</a>',
      'a.html': '<p>a</p>',
    });
    const result = checkSite(based, { base: '/docs/' }) as { dead: string[] };
    expect(result.dead).toEqual(["index.html: /elsewhere/b.html is outside the site's base /docs/"]);
  });
});

describe('source pages', () => {
  it('shows every package README, the examples and the project files that exist', () => {
    const pages = sourcePages(repoRoot);
    const packages = readdirSync(join(repoRoot, 'packages')).filter((d) => {
      try {
        return readFileSync(join(repoRoot, 'packages', d, 'README.md')).length > 0;
      } catch {
        return false;
      }
    });
    expect(pages.filter((p) => p.page.startsWith('packages/')).map((p) => p.page)).toEqual(
      packages.sort().map((d) => `packages/${d}`),
    );
    expect(pages.find((p) => p.source === 'packages/core/README.md')?.title).toBe('@cdss/core');
    expect(pages.some((p) => p.source === 'CONTRIBUTING.md')).toBe(true);
  });

  it('rebases relative links and images onto the page, leaving code, anchors and absolute links alone', () => {
    const text = [
      'See [core](../core/README.md#install), [guide](../../docs/guides/x.md) and ![logo](assets/logo.png).',
      '[site](https://example.org/a.md), [here](#local), `[not](a/link.md)`',
      '[ref]: ../../CONTRIBUTING.md',
      '```md',
      '[inside](code.md)',
      '```',
    ].join('\n');
    expect(rebaseLinks(text, 'packages/cache', 'docs/packages').split('\n')).toEqual([
      'See [core](../../packages/core/README.md#install), [guide](../guides/x.md) and ![logo](../../packages/cache/assets/logo.png).',
      '[site](https://example.org/a.md), [here](#local), `[not](a/link.md)`',
      '[ref]: ../../CONTRIBUTING.md',
      '```md',
      '[inside](code.md)',
      '```',
    ]);
  });
});

describe('markdown plugins', async () => {
  const srcDir = join(repoRoot, 'docs');
  const pages: SourcePage[] = [{ source: 'packages/core/README.md', page: 'packages/core', title: '@cdss/core' }];
  const render = async (text: string, relativePath: string, repoUrl?: string): Promise<string> => {
    disposeMdItInstance(); // VitePress keeps one instance per process: make a fresh one with these plugins
    const md = await createMarkdownRenderer(srcDir);
    md.use(mermaidDiagrams);
    md.use(literalInlineCode);
    md.use(repositoryLinks({ repoRoot, srcDir, pages, repoUrl }));
    return md.render(text, { relativePath });
  };

  it('links a README shown as a page to its page, other repository files to the browser or as text', async () => {
    const text =
      '[core](../../packages/core/README.md#install) [folder](../../packages/core) ' +
      '[bootstrap](../../scripts/bootstrap.mjs) [guide](other.md)';
    const html = await render(text, 'guides/page.md');
    expect(html).toMatch(/href="(\.\/)?\.\.\/packages\/core\.html#install"/);
    expect(html).toMatch(/href="(\.\/)?\.\.\/packages\/core\.html"/);
    expect(html).toContain('<span class="repo-file" title="scripts/bootstrap.mjs in the repository">bootstrap</span>');
    expect(html).toContain('href="./other.html"');
    const browsed = await render('[bootstrap](../../scripts/bootstrap.mjs)', 'guides/page.md', 'https://git.example/c');
    expect(browsed).toContain('href="https://git.example/c/blob/HEAD/scripts/bootstrap.mjs"');
  });

  it('fails on a link to a repository file that does not exist', async () => {
    await expect(render('[gone](../../scripts/no-such-file.mjs)', 'guides/page.md')).rejects.toThrow(
      DeadRepositoryLinkError,
    );
  });

  it('renders Mermaid at build time to an SVG without <style>, fonts from elsewhere or clashing ids', async () => {
    const html = await render(
      '```mermaid\nflowchart LR\n  A[Server] --> B[(Orthanc)]\n```\n\n```mermaid\nflowchart LR\n  C --> D\n```\n',
      'guides/page.md',
    );
    expect(html.match(/<figure class="diagram" v-pre><svg/g)).toHaveLength(2);
    expect(html).not.toContain('<style>');
    expect(html).not.toMatch(/https?:\/\/fonts/);
    expect(html).toContain('>Orthanc</text>');
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [, ref] of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(ref);
  });

  it('names the page and line of a diagram that does not render', () => {
    expect(() => renderDiagram('sequenceDiagramm\n  A->>B: x', 'guides/page.md:3')).toThrow(DiagramError);
    expect(() => renderDiagram('sequenceDiagramm\n  A->>B: x', 'guides/page.md:3')).toThrow(/guides\/page\.md:3/);
  });

  it('keeps {{ … }} in inline code literal for Vue', async () => {
    const html = await render('Prefetch `Patient/{{context.patientId}}`.', 'guides/page.md');
    expect(html).toContain('<code v-pre="">Patient/{{context.patientId}}</code>');
  });
});

describe('typedoc anchors', () => {
  it('gives headings the ids VitePress gives them', () => {
    expect(slugify('CacheStore')).toBe('cachestore');
    expect(slugify('new Foo<T>()')).toBe('new-foo-t');
    expect([...headingIds('# A\n### get()\n```\n# not\n```\n### get()\n## `Re` \\<T\\>')]).toEqual([
      'a',
      'get',
      'get-1',
      're-t',
    ]);
  });

  it('repairs an anchor numbered as if its name came twice or in the form TypeDoc gives, and leaves the rest', () => {
    const out = writeTree(join(scratch, 'api'), {
      'pkg/index.md':
        '## CacheStore\n\nSee [CacheStore](#cachestore-1), [gone](#gone-1) and [get](#get-1).\n\n### get\n### get\n' +
        '### DEFAULT\\_RULES\n',
      'pkg/other.md': 'See [CacheStore](./index.md#cachestore-1) and [rules](../pkg/index.md#default_rules).\n',
    });
    expect(repairAnchors(out)).toBe(3);
    expect(readFileSync(join(out, 'pkg/index.md'), 'utf8')).toContain(
      '[CacheStore](#cachestore), [gone](#gone-1) and [get](#get-1)',
    );
    expect(readFileSync(join(out, 'pkg/other.md'), 'utf8')).toContain(
      '[CacheStore](./index.md#cachestore) and [rules](../pkg/index.md#default-rules)',
    );
  });
});
