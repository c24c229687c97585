/**
 * The repository's own Markdown files that the docs site shows as pages (each package's README, the examples', a few
 * more), and how links that leave the site are treated.
 *
 * VitePress only serves what lies under `docs/`, and its local search indexes only real files there (a dynamic route
 * or an `@include` would leave a README unsearchable or break its relative links). So {@link writeSourcePages} copies
 * each source into `docs/<page>.md` (ignored by git) with its relative links rebased onto the page's folder, and
 * {@link repositoryLinks} resolves every link that still points outside `docs/`: to the page of that file when the
 * site has one, to the repository browser when `CDSS_DOCS_REPO_URL` is set, else to the path as plain text. A link
 * to a file that does not exist fails the build, like VitePress's own dead-link check for pages.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import type { MarkdownRenderer } from 'vitepress';

/** A repository file shown as a page of the site. */
export interface SourcePage {
  /** Path in the repository, with `/` separators, e.g. `packages/core/README.md`. */
  source: string;
  /** The page under `docs/`, without `.md`, e.g. `packages/core`. */
  page: string;
  /** Sidebar title: the file's first `# ` heading. */
  title: string;
}

/** Sections whose pages are generated, each from one folder of READMEs or a fixed list. */
const FOLDERS: ReadonlyArray<{ glob: string; section: string }> = [
  { glob: 'packages', section: 'packages' },
  { glob: 'examples', section: 'examples' },
];

/** Other repository files the site shows (under `docs/project/`). */
const PROJECT_FILES: ReadonlyArray<{ source: string; page: string }> = [
  { source: 'CONTRIBUTING.md', page: 'project/contributing' },
  { source: 'scripts/services/README.md', page: 'project/services' },
  { source: 'tools/hapi-fhir-server/README.md', page: 'project/hapi-fhir-server' },
  { source: 'tools/monai-reference/README.md', page: 'project/monai-reference' },
  { source: 'models/brats-demo/README.md', page: 'project/brats-demo-model' },
  { source: 'packages/sandbox/src/openemr/README.md', page: 'project/openemr-emulator' },
  { source: 'deploy/README.md', page: 'project/deploy-folder' },
  { source: 'bench/README.md', page: 'project/bench' },
];

/** The folders under `docs/` that hold generated pages (ignored by git). */
export const GENERATED_FOLDERS = ['packages', 'examples', 'project'] as const;

function firstHeading(markdown: string, fallback: string): string {
  const match = /^# (.+)$/m.exec(markdown);
  return match ? match[1]!.trim() : fallback;
}

/**
 * Every repository file the site shows as a page, in sidebar order: the packages' and examples' READMEs (one page
 * each, named after the folder), then the project files that exist.
 * @param repoRoot - the repository's root folder
 */
export function sourcePages(repoRoot: string): SourcePage[] {
  const pages: SourcePage[] = [];
  for (const { glob, section } of FOLDERS) {
    const folder = join(repoRoot, glob);
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder).sort()) {
      const source = `${glob}/${name}/README.md`;
      const file = join(repoRoot, source);
      if (!existsSync(file)) continue;
      pages.push({ source, page: `${section}/${name}`, title: firstHeading(readFileSync(file, 'utf8'), name) });
    }
  }
  for (const { source, page } of PROJECT_FILES) {
    const file = join(repoRoot, source);
    if (existsSync(file)) pages.push({ source, page, title: firstHeading(readFileSync(file, 'utf8'), page) });
  }
  return pages;
}

/** A link target that leaves the page as it is: absolute URLs, mail, in-page anchors, site-absolute paths. */
function isRelative(target: string): boolean {
  return !/^([a-z][a-z0-9+.-]*:|#|\/)/i.test(target);
}

/** Splits `path#anchor` (or `path?query`). */
function splitTarget(target: string): { path: string; rest: string } {
  const i = target.search(/[#?]/);
  return i < 0 ? { path: target, rest: '' } : { path: target.slice(0, i), rest: target.slice(i) };
}

/**
 * Rebases the relative links and images of a Markdown file from its own folder onto another folder (both relative
 * to the repository root), leaving code (fenced blocks and inline code spans) as it is.
 * @param markdown - the file's text
 * @param fromDir - the file's folder, e.g. `packages/core`
 * @param toDir - the page's folder, e.g. `docs/packages`
 */
export function rebaseLinks(markdown: string, fromDir: string, toDir: string): string {
  const rebase = (target: string): string => {
    if (!isRelative(target)) return target;
    const { path, rest } = splitTarget(target);
    if (path === '') return target;
    const moved = posix.relative(toDir, posix.normalize(posix.join(fromDir, path)));
    return `${moved || '.'}${rest}`;
  };
  // split off fenced code blocks, then inline code spans, so only prose is rewritten
  return markdown
    .split(/(^ {0,3}(?:```|~~~)[^\n]*\n[\s\S]*?^ {0,3}(?:```|~~~)[ \t]*$)/m)
    .map((chunk, i) =>
      i % 2 === 1
        ? chunk
        : chunk
            .split(/(`+[^`\n]*`+)/)
            .map((part, j) =>
              j % 2 === 1
                ? part
                : part
                    .replace(/(\]\()(<[^>]*>|[^)\s]+)/g, (_m, open: string, target: string) =>
                      target.startsWith('<') ? `${open}<${rebase(target.slice(1, -1))}>` : `${open}${rebase(target)}`,
                    )
                    .replace(
                      /^( {0,3}\[[^\]]+\]:[ \t]*)(\S+)/gm,
                      (_m, def: string, target: string) => def + rebase(target),
                    ),
            )
            .join(''),
    )
    .join('');
}

/**
 * Writes every source page into `docs/` (removing the generated folders first, so a README that went away leaves no
 * stale page), with its links rebased.
 * @param repoRoot - the repository's root folder
 * @param srcDir - the site's source folder (`<repoRoot>/docs`)
 * @returns the pages written
 */
export function writeSourcePages(repoRoot: string, srcDir: string): SourcePage[] {
  for (const folder of GENERATED_FOLDERS) rmSync(join(srcDir, folder), { recursive: true, force: true });
  const pages = sourcePages(repoRoot);
  const docsDir = relative(repoRoot, srcDir).split(sep).join('/');
  for (const { source, page } of pages) {
    const target = join(srcDir, `${page}.md`);
    mkdirSync(dirname(target), { recursive: true });
    const text = rebaseLinks(
      readFileSync(join(repoRoot, source), 'utf8'),
      posix.dirname(source),
      posix.dirname(`${docsDir}/${page}.md`),
    );
    writeFileSync(
      target,
      `---\nsource: ${source}\neditLink: false\n---\n\n<!-- generated from ${source} by scripts/docs/sources.ts: edit that file -->\n\n${text}`,
    );
  }
  return pages;
}

/** Options of {@link repositoryLinks}. */
export interface RepositoryLinkOptions {
  /** The repository's root folder. */
  repoRoot: string;
  /** The site's source folder. */
  srcDir: string;
  /** The pages generated from repository files. */
  pages: readonly SourcePage[];
  /**
   * Where the repository can be browsed, e.g. `https://github.com/org/cdss`: links to files that have no page go
   * to `<url>/blob/HEAD/<path>` (`tree` for folders). Without it they become the path as plain text.
   */
  repoUrl?: string | undefined;
}

/** Thrown (and so failing the build) for a link to a repository file that does not exist. */
export class DeadRepositoryLinkError extends Error {}

/**
 * A markdown-it plugin that resolves links leaving `docs/`: a README or other file shown as a page links to that
 * page (so VitePress then checks it like any page link); another file of the repository links to the repository
 * browser, or becomes plain text; a file that does not exist throws {@link DeadRepositoryLinkError}.
 * @param options - see {@link RepositoryLinkOptions}
 */
export function repositoryLinks(options: RepositoryLinkOptions): (md: MarkdownRenderer) => void {
  const repoRoot = resolve(options.repoRoot);
  const srcDir = resolve(options.srcDir);
  const pageOf = new Map(options.pages.map((p) => [p.source, p.page]));
  const repoUrl = options.repoUrl?.replace(/\/+$/, '');
  const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

  return (md) => {
    md.core.ruler.push('cdss-repository-links', (state) => {
      const env = state.env as { relativePath?: string };
      if (!env.relativePath) return;
      const pageDir = dirname(join(srcDir, env.relativePath));
      for (const block of state.tokens) {
        const tokens = block.children ?? [];
        for (let i = 0; i < tokens.length; i++) {
          const open = tokens[i]!;
          if (open.type !== 'link_open') continue;
          const href = open.attrGet('href');
          if (!href || !isRelative(href)) continue;
          const { path, rest } = splitTarget(href);
          if (path === '') continue;
          const absolute = resolve(pageDir, decodeURI(path));
          if (absolute === srcDir || absolute.startsWith(srcDir + sep)) continue; // a page: VitePress checks it
          const inRepo = relative(repoRoot, absolute).split(sep).join('/');
          if (inRepo.startsWith('..')) {
            throw new DeadRepositoryLinkError(`${env.relativePath}: link ${href} leaves the repository`);
          }
          if (!existsSync(absolute)) {
            throw new DeadRepositoryLinkError(
              `${env.relativePath}: link ${href} names ${inRepo}, which does not exist`,
            );
          }
          const isDir = statSync(absolute).isDirectory();
          const page = pageOf.get(inRepo) ?? (isDir ? pageOf.get(`${inRepo}/README.md`) : undefined);
          if (page !== undefined) {
            const fromPage = relative(pageDir, join(srcDir, `${page}.md`))
              .split(sep)
              .join('/');
            open.attrSet('href', `${fromPage}${rest}`);
            continue;
          }
          if (repoUrl) {
            open.attrSet('href', `${repoUrl}/${isDir ? 'tree' : 'blob'}/HEAD/${inRepo}${rest}`);
            continue;
          }
          // no page and nowhere to browse it: the path as text, so the reader still knows which file is meant
          const close = tokens.findIndex((t, j) => j > i && t.type === 'link_close' && t.level === open.level);
          if (close < 0) continue;
          open.type = 'html_inline';
          open.content = `<span class="repo-file" title="${escape(inRepo)} in the repository">`;
          tokens[close]!.type = 'html_inline';
          tokens[close]!.content = '</span>';
        }
      }
    });
  };
}
