// @ts-check
/**
 * A TypeDoc plugin for the docs site's API reference (typedoc-plugin-markdown, one page per entry point): after the
 * Markdown is written, each link's `#anchor` is checked against the ids VitePress will give that page's headings, and
 * an anchor that names no heading is repaired when VitePress's slug of it, or the same anchor without a `-1`, `-2` …
 * suffix, names one. typedoc-plugin-markdown 4.14 numbers the anchor of a few declarations as if their name had been
 * used before on the page (`#cachestore-1` for the only `### CacheStore`), and typedoc-vitepress-theme leaves the
 * anchors of links to other pages in TypeDoc's form (`#default_selection_rules` for VitePress's
 * `#default-selection-rules`); both would leave those links dead. Anything else that names no heading is left as it
 * is, for the site's link check to report.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ReflectionKind, Renderer } from 'typedoc';

/**
 * VitePress's heading slug (`@mdit-vue/shared` `slugify`, as VitePress 1.6 bundles it).
 * @param {string} text - the heading's text
 */
export function slugify(text) {
  return (
    text
      .normalize('NFKD')
      .replace(/[\u0300-\u036F]/g, '')
      // eslint-disable-next-line no-control-regex -- VitePress's slugify drops control characters too
      .replace(/[\u0000-\u001f]/g, '')
      .replace(/[\s~`!@#$%^&*()\-_+=[\]{}|\\;:"'“”‘’<>,.?/]+/g, '-')
      .replace(/-{2,}/g, '-')
      .replace(/^-+|-+$/g, '')
      .replace(/^(\d)/, '_$1')
      .toLowerCase()
  );
}

/**
 * The plain text of a Markdown heading's content (links to their text, emphasis and code marks and escapes dropped).
 * @param {string} heading
 */
function headingText(heading) {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/(?<!\\)<[^>]+>/g, '') // HTML tags; an escaped \<T\> is text
    .replace(/(?<!\\)[`*~]/g, '')
    .replace(/\\(.)/g, '$1')
    .trim();
}

/**
 * The ids VitePress gives the headings of a Markdown page (a repeated slug gets `-1`, `-2` …, as markdown-it-anchor
 * does), skipping fenced code.
 * @param {string} markdown
 * @returns {Set<string>}
 */
export function headingIds(markdown) {
  const ids = new Set();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^ {0,3}(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const m = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const slug = slugify(headingText(m[1] ?? ''));
    let id = slug;
    for (let n = 1; ids.has(id); n++) id = `${slug}-${n}`;
    ids.add(id);
  }
  return ids;
}

/**
 * @param {string} dir
 * @returns {string[]}
 */
function markdownFiles(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return markdownFiles(path);
    return entry.endsWith('.md') ? [path] : [];
  });
}

/**
 * Repairs the anchors of every page under `outDir` (see the module comment).
 * @param {string} outDir
 * @returns {number} how many links were repaired
 */
export function repairAnchors(outDir) {
  const files = markdownFiles(outDir);
  const idsByFile = new Map(files.map((f) => [f, headingIds(readFileSync(f, 'utf8'))]));
  let repaired = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const fixed = text.replace(/\]\(([^)#\s]*)#([^)\s]+)\)/g, (whole, path, anchor) => {
      const target = path === '' ? file : resolve(dirname(file), decodeURI(path));
      const ids = idsByFile.get(target);
      if (!ids || ids.has(anchor)) return whole;
      const unnumbered = anchor.replace(/-\d+$/, '');
      const found = [slugify(anchor), unnumbered, slugify(unnumbered)].find((id) => ids.has(id));
      if (found === undefined) return whole;
      repaired++;
      return `](${path}#${found})`;
    });
    if (fixed !== text) writeFileSync(file, fixed);
  }
  return repaired;
}

/**
 * TypeDoc's plugin entry point.
 * @param {import('typedoc').Application} app
 */
export function load(app) {
  // a package with several entry points lists them as modules named after their files (`index`, `mysql`, …): title
  // them by the import path a user writes instead (`@cdss/cache`, `@cdss/cache/mysql`), once the pages are routed so
  // that the file names stay plain. typedoc-plugin-markdown computes the navigation (the sidebar's source) before this
  // event, so its entries are renamed too, the package's root entry first.
  /** @type {(pkg: string, module: string) => string} */
  const importPath = (pkg, module) => (module === 'index' ? pkg : `${pkg}/${module}`);
  app.renderer.on(Renderer.EVENT_BEGIN, (event) => {
    for (const pkg of event.project.children ?? []) {
      for (const child of pkg.children ?? []) {
        if (child.kindOf(ReflectionKind.Module)) child.name = importPath(pkg.name, child.name);
      }
    }
    // the event is typedoc-plugin-markdown's MarkdownRendererEvent, which carries the navigation
    const navigation = /** @type {import('typedoc-plugin-markdown').NavigationItem[] | undefined} */ (
      /** @type {{ navigation?: unknown }} */ (event).navigation
    );
    for (const pkg of navigation ?? []) {
      const modules = (pkg.children ?? []).filter((item) => item.kind === ReflectionKind.Module);
      if (modules.length === 0) continue;
      for (const item of modules) item.title = importPath(pkg.title, item.title);
      pkg.children?.sort((a, b) => (a.title === pkg.title ? -1 : b.title === pkg.title ? 1 : 0));
    }
  });
  app.renderer.postRenderAsyncJobs.push(async () => {
    const outDir = app.options.getValue('out');
    const repaired = repairAnchors(outDir);
    if (repaired > 0) app.logger.info(`repaired ${repaired} link anchors to the ids VitePress gives`);
  });
}
