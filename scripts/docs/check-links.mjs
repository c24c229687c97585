#!/usr/bin/env node
// @ts-check
/**
 * Checks every link of the built docs site (`npm run docs` runs it after `vitepress build`): each internal `<a href>`
 * of every page, the sidebar and navigation included, must name a page that was built, and its `#anchor` an element
 * id on that page. VitePress's own check, which fails the build, covers links to missing pages; this one also covers
 * anchors (a renamed heading) and links written as HTML.
 *
 *   node scripts/docs/check-links.mjs [distDir] [--base /sub/path/]
 *
 * Prints a summary (pages, links, anchors checked) and one line per dead link; exits 1 when there is any.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {string} dir
 * @returns {string[]} every .html file under dir
 */
function htmlFiles(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return htmlFiles(path);
    return entry.endsWith('.html') ? [path] : [];
  });
}

/**
 * @param {string} html
 * @returns {Set<string>} the element ids of a page
 */
function idsOf(html) {
  return new Set([...html.matchAll(/\sid="([^"]*)"/g)].map((m) => decodeEntities(m[1] ?? '')));
}

/** @param {string} s */
function decodeEntities(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * @param {string} html
 * @returns {string[]} the href of every <a> of a page (HTML entities decoded)
 */
function hrefsOf(html) {
  return [...html.matchAll(/<a\s[^>]*?href="([^"]*)"/g)].map((m) => decodeEntities(m[1] ?? ''));
}

/**
 * Checks the links of a built site.
 * @param {string} distDir - the folder `vitepress build` wrote
 * @param {{ base?: string }} [options] - `base`: the site's base path (default `/`)
 * @returns {{ pages: number, links: number, anchors: number, dead: string[] }}
 */
export function checkSite(distDir, options = {}) {
  const root = resolve(distDir);
  const base = options.base ?? '/';
  const files = htmlFiles(root);
  /** @type {Map<string, Set<string>>} */
  const idCache = new Map();
  const ids = (/** @type {string} */ file) => {
    let set = idCache.get(file);
    if (!set) idCache.set(file, (set = idsOf(readFileSync(file, 'utf8'))));
    return set;
  };
  /** @type {string[]} */
  const dead = [];
  let links = 0;
  let anchors = 0;
  for (const file of files) {
    const page = relative(root, file).split(sep).join('/');
    const pageUrl = new URL(`http://site${base}${page}`);
    for (const href of hrefsOf(readFileSync(file, 'utf8'))) {
      if (href === '' || /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(href)) continue; // external, mailto:, javascript:
      const url = new URL(href, pageUrl);
      if (!url.pathname.startsWith(base)) {
        dead.push(`${page}: ${href} is outside the site's base ${base}`);
        continue;
      }
      links++;
      let path = decodeURIComponent(url.pathname.slice(base.length));
      if (path === '' || path.endsWith('/')) path += 'index.html';
      let target = join(root, path);
      if (!existsSync(target) && existsSync(`${target}.html`)) target = `${target}.html`; // clean URLs
      if (!existsSync(target) || statSync(target).isDirectory()) {
        dead.push(`${page}: ${href} names no page`);
        continue;
      }
      if (url.hash.length > 1 && target.endsWith('.html')) {
        anchors++;
        const id = decodeURIComponent(url.hash.slice(1));
        if (!ids(target).has(id)) dead.push(`${page}: ${href} names no element #${id} on ${relative(root, target)}`);
      }
    }
  }
  return { pages: files.length, links, anchors, dead };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const baseAt = args.indexOf('--base');
  const base = baseAt >= 0 ? args.splice(baseAt, 2)[1] : process.env.CDSS_DOCS_BASE;
  const here = dirname(fileURLToPath(import.meta.url));
  const dist = args[0] ?? join(here, '..', '..', 'docs', '.vitepress', 'dist');
  if (!existsSync(dist)) {
    process.stderr.write(`[docs] ${dist} does not exist: build the site first (npm run docs)\n`);
    process.exit(2);
  }
  const result = checkSite(dist, base ? { base } : {});
  for (const line of result.dead) process.stderr.write(`[docs] dead link: ${line}\n`);
  process.stderr.write(
    `[docs] ${result.pages} pages, ${result.links} internal links (${result.anchors} with an anchor), ` +
      `${result.dead.length} dead\n`,
  );
  process.exit(result.dead.length ? 1 : 0);
}
