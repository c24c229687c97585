/**
 * The CDSS documentation site (VitePress). `npm run docs` builds it (typedoc's Markdown API reference into docs/api,
 * then this site into docs/.vitepress/dist, then scripts/docs/check-links.mjs over the HTML); `npm run docs:dev`
 * serves it. A dead link to a page fails the build (VitePress), so does a link to a repository file that does not
 * exist (scripts/docs/sources.ts); the checker then also checks every #anchor.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type DefaultTheme } from 'vitepress';
import { literalInlineCode, mermaidDiagrams } from '../../scripts/docs/markdown.js';
import { repositoryLinks, sourcePages, writeSourcePages, type SourcePage } from '../../scripts/docs/sources.js';

declare global {
  /** Set by the theme (theme/index.ts) when Vue meets an error rendering a page at build time. */
  var __cdssRenderErrors: string[] | undefined;
}

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(srcDir, '..');
const pages = writeSourcePages(repoRoot, srcDir);

const link = (page: string): string => `/${page}`;
const pagesIn = (section: string): DefaultTheme.SidebarItem[] =>
  pages.filter((p) => p.page.startsWith(`${section}/`)).map((p) => ({ text: p.title, link: link(p.page) }));
const pageOf = (source: string): SourcePage | undefined => pages.find((p) => p.source === source);
const optional = (source: string, text: string): DefaultTheme.SidebarItem[] => {
  const page = pageOf(source);
  return page ? [{ text, link: link(page.page) }] : [];
};

/** typedoc-vitepress-theme's sidebar of the API reference (written by `typedoc` before the site is built). */
function apiSidebar(): DefaultTheme.SidebarItem[] {
  const file = join(srcDir, 'api', 'typedoc-sidebar.json');
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as DefaultTheme.SidebarItem[];
}

/** A sidebar entry for a page of `docs/`, left out while the page does not exist (a guide still being written). */
const page = (text: string, path: string): { text: string; link: string }[] =>
  existsSync(join(srcDir, path === '/' ? 'index.md' : `${path.slice(1)}.md`)) ? [{ text, link: path }] : [];

const guide: DefaultTheme.SidebarItem[] = [
  {
    text: 'Start',
    items: [
      ...page('Overview', '/'),
      ...page('Getting started', '/guides/getting-started'),
      ...page('Concepts and data flows', '/guides/concepts'),
    ],
  },
  {
    text: 'Integrate',
    items: [
      ...page('Connecting OpenEMR, HAPI FHIR, Orthanc', '/guides/connecting'),
      ...page('Inside the EHR', '/guides/ehr-integration'),
      ...page('The job protocol for other languages', '/guides/job-protocol'),
      ...optional('examples/python-worker/README.md', 'The Python worker'),
      ...optional('packages/cli/README.md', 'The cdss command line'),
    ],
  },
  {
    text: 'Operate',
    items: [
      ...page('Deployment', '/guides/deploy'),
      ...page('Security model', '/guides/security'),
      ...page('Benchmarks', '/guides/benchmarks'),
    ],
  },
  {
    text: 'Develop',
    items: [
      ...page('Real services on 127.0.0.1', '/guides/real-services'),
      ...page('Testing', '/guides/testing'),
      ...page('Packages and install sizes', '/guides/packages'),
      ...optional('CONTRIBUTING.md', 'Contributing'),
    ],
  },
];

const sidebar: DefaultTheme.SidebarItem[] = [
  ...guide,
  { text: 'Packages', collapsed: false, items: pagesIn('packages') },
  { text: 'Reference server and examples', collapsed: false, items: pagesIn('examples') },
  { text: 'Project files', collapsed: true, items: pagesIn('project') },
  { text: 'API reference', collapsed: true, items: [...page('Overview', '/api/'), ...apiSidebar()] },
];

export default defineConfig({
  title: 'CDSS',
  description:
    'Clinical decision support for brain-tumour MRI: TypeScript packages and a reference server connecting OpenEMR, HAPI FHIR, Orthanc and a MONAI-style segmentation model.',
  lang: 'en-GB',
  base: process.env.CDSS_DOCS_BASE ?? '/',
  cleanUrls: false,
  // the default; spelled out because the CI check relies on it: a link to a missing page fails the build
  ignoreDeadLinks: false,
  markdown: {
    config(md) {
      md.use(mermaidDiagrams);
      md.use(literalInlineCode);
      md.use(repositoryLinks({ repoRoot, srcDir, pages, repoUrl: process.env.CDSS_DOCS_REPO_URL }));
    },
  },
  buildEnd() {
    const errors = globalThis.__cdssRenderErrors ?? [];
    if (errors.length > 0) throw new Error(`pages failed to render:\n${errors.join('\n')}`);
  },
  themeConfig: {
    nav: [
      { text: 'Guides', link: '/guides/getting-started' },
      { text: 'Packages', link: pagesIn('packages')[0]?.link ?? '/guides/packages' },
      { text: 'Reference server', link: '/examples/reference-server' },
      { text: 'API', link: '/api/' },
    ],
    sidebar,
    outline: { level: [2, 3] },
    search: { provider: 'local' },
    footer: { message: 'Apache-2.0. Not a medical device: every AI result needs a clinician’s review.' },
  },
  vite: {
    // sandbox emulators and demo data are not part of the site; keep Vite's dependency scan on the docs
    optimizeDeps: { entries: [] },
    build: { chunkSizeWarningLimit: 2000 },
    plugins: [
      {
        // `npm run docs:dev`: a README edited while the server runs is copied again
        name: 'cdss-source-pages',
        configureServer(server) {
          const files = sourcePages(repoRoot).map((p) => join(repoRoot, p.source));
          server.watcher.add(files);
          server.watcher.on('change', (file) => {
            if (files.includes(file)) writeSourcePages(repoRoot, srcDir);
          });
        },
      },
    ],
  },
});
