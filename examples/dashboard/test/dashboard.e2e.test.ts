/**
 * End to end: the production build of the dashboard, served by the reference server in sandbox mode, driven in
 * headless Debian Chromium with playwright-core (WebGL through SwiftShader, so Cornerstone3D renders for real).
 *
 * Covers: MPR with pixel checks of the sagittal and coronal views; the AI's DICOM SEG from the PACS over the known
 * tumour of the phantom (pixel colour at the lesion centre and away from it); a bidirectional measurement saved and
 * shown again after a reload; prior/current comparison scrolling in step; the patient banner on every
 * patient-context route; the worklist with patient names and a claim; live updates after a reload of a deep link
 * (the analysis finishes after the reload and appears without polling); an expiring session warns, signs in again
 * and returns to the deep link; a nurse cannot reach the worklist or the audit log; accent-insensitive search; the
 * print view without navigation; the installable shell (manifest, service worker caching no patient data) in
 * Chromium's mobile emulation; axe-core on every page (no serious or critical violation); screenshots of each page at
 * desktop and tablet width into screenshots/ (shown in the README).
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCdssClient, type ApiPatient, type ApiStudy, type CdssClient } from '@cdss/client';
import { PHANTOM_TISSUES, generateTemplatePhantom, indexToPatient, type Phantom, type Vec3 } from '@cdss/dicom';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumArgs,
  chromiumPath,
  dashboardDir,
  ensureBuild,
  startSandboxServer,
  type SandboxServer,
} from './support';

const inCi = process.env['CI'] === 'true';
if (!chromiumPath && !inCi) {
  process.stderr.write(
    '[dashboard e2e] skipped: no Chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)\n',
  );
}
const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;
const screenshotsDir = join(dashboardDir, 'screenshots');
const DESKTOP = { width: 1366, height: 900 };
const TABLET = { width: 820, height: 1180 };

/** How long a UI check may wait for the page to catch up (vitest's default of 1 s is too short on a loaded CI machine). */
const UI_WAIT = { timeout: 15_000 };

describe.runIf(inCi && !chromiumPath)('dashboard e2e prerequisites', () => {
  it('finds Chromium under CI', () => {
    throw new Error(
      'Chromium is missing: CI must install the Debian chromium package (scripts/services/services.sh install)',
    );
  });
});

describe.skipIf(!chromiumPath)('dashboard in a real browser against the sandbox server', () => {
  let server: SandboxServer;
  let browser: Browser;
  let api: CdssClient;
  let patient: ApiPatient;
  let prior: ApiStudy;
  let current: ApiStudy;
  let analysisId: string;
  const consoleLines: string[] = [];
  const visitedUrls: string[] = [];
  const contexts: BrowserContext[] = [];
  const axeFindings: string[] = [];

  async function newPage(viewport = DESKTOP, options: { isMobile?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext({
      viewport,
      ...(options.isMobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
    });
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (message) => consoleLines.push(message.text()));
    page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visitedUrls.push(frame.url());
    });
    return page;
  }

  async function signIn(page: Page, name: RegExp, path = '/'): Promise<void> {
    await page.goto(`${server.url}${path}`);
    await page.waitForURL('**/signin');
    await page.getByRole('button', { name }).click();
    await page.waitForURL((url) => url.pathname !== '/signin');
  }

  /** axe-core on the page as it is: no serious or critical violation. */
  async function checkA11y(page: Page, name: string): Promise<void> {
    await page.addScriptTag({ content: axeSource });
    const violations = await page.evaluate(async () => {
      const axe = (
        window as unknown as {
          axe: { run(o: unknown): Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> };
        }
      ).axe;
      const result = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        nodes: (v.nodes as Array<{ target: string[] }>).map((n) => n.target.join(' ')).join(' | '),
      }));
    });
    for (const v of violations)
      if (v.impact === 'serious' || v.impact === 'critical')
        axeFindings.push(`${name}: ${v.id} (${v.impact}, ${v.nodes})`);
  }

  /** Screenshots at desktop and tablet width, then the accessibility check. */
  async function capture(page: Page, name: string, ready?: () => Promise<void>): Promise<void> {
    visitedUrls.push(page.url());
    const viewport = page.viewportSize() ?? DESKTOP;
    await page.setViewportSize(DESKTOP);
    await ready?.();
    await page.screenshot({ path: join(screenshotsDir, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize(TABLET);
    await ready?.();
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(screenshotsDir, `${name}-tablet.png`), fullPage: true });
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow, `${name} fits a tablet`).toBeLessThanOrEqual(0);
    await page.setViewportSize(viewport);
    await checkA11y(page, name);
  }

  const viewerReady =
    (page: Page, count = 1) =>
    async (): Promise<void> => {
      await expect.poll(async () => page.locator('.mpr[data-status="ready"]').count(), { timeout: 60_000 }).toBe(count);
    };

  /** Pixels of a viewport's canvas (Cornerstone3D copies each render into a 2D canvas). */
  async function pixel(page: Page, plane: string, at: [number, number], viewer = 0): Promise<[number, number, number]> {
    return page
      .locator('.mpr')
      .nth(viewer)
      .locator(`[data-plane="${plane}"] canvas`)
      .first()
      .evaluate((canvas: HTMLCanvasElement, [x, y]) => {
        const scale = canvas.width / canvas.clientWidth;
        const d = canvas.getContext('2d')!.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data;
        return [d[0]!, d[1]!, d[2]!] as [number, number, number];
      }, at);
  }

  async function canvasStats(page: Page, plane: string): Promise<{ mean: number; std: number }> {
    return page
      .locator(`[data-plane="${plane}"] canvas`)
      .first()
      .evaluate((canvas: HTMLCanvasElement) => {
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        let sq = 0;
        const n = d.length / 4;
        for (let i = 0; i < d.length; i += 4) {
          sum += d[i]!;
          sq += d[i]! * d[i]!;
        }
        const mean = sum / n;
        return { mean, std: Math.sqrt(sq / n - mean * mean) };
      });
  }

  beforeAll(async () => {
    mkdirSync(screenshotsDir, { recursive: true });
    ensureBuild();
    server = await startSandboxServer();
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
    const physicianToken = await createCdssClient({ baseUrl: server.url }).sandbox.token('demo-physician');
    api = createCdssClient({ baseUrl: server.url, getToken: () => physicianToken.access_token });
    const { items } = await api.patients.search({ limit: 50 });
    for (const candidate of items) {
      const studies = await api.patients.studies(candidate.id);
      if (studies.items.length >= 2) {
        patient = candidate;
        [prior, current] = [...studies.items].sort((a, b) =>
          (a.description ?? '').localeCompare(b.description ?? ''),
        ) as [ApiStudy, ApiStudy];
        break;
      }
    }
    expect(patient, 'a sandbox patient with two studies').toBeDefined();
    // The result the radiologist reviews: an analysis of the current study, finished before the tests start.
    analysisId = (await api.analyses.request(current.uid, { patientId: patient.id })).id;
    for (let i = 0; i < 240 && (await api.analyses.get(analysisId)).status !== 'succeeded'; i++)
      await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await api.analyses.get(analysisId)).status).toBe('succeeded');
    await api.patients.create({ givenName: 'Zoë', familyName: 'Müller', birthDate: '1971-02-03', sex: 'female' });
  }, 240_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  it('physician: deep link before sign-in, accent-insensitive search, banner, MPR with sagittal and coronal pixels', async () => {
    const page = await newPage();
    // A deep link before signing in comes back after sign-in.
    await page.goto(`${server.url}/patients/${encodeURIComponent(patient.id)}`);
    await page.waitForURL('**/signin');
    await capture(page, '01-sign-in');
    await page.getByRole('button', { name: /Paul Physician/ }).click();
    await page.waitForURL(`**/patients/${encodeURIComponent(patient.id)}`);
    await page.getByTestId('patient-banner').getByText(`${patient.familyName}, ${patient.givenName}`).waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Patients' }).click();
    for (const [query, name] of [
      ['muller', 'Müller, Zoë'],
      ['zoe MULLER', 'Müller, Zoë'],
      [
        `${patient.givenName.toLowerCase()} ${patient.familyName.toLowerCase()}`,
        `${patient.familyName}, ${patient.givenName}`,
      ],
      [`${patient.familyName}, ${patient.givenName}`, `${patient.familyName}, ${patient.givenName}`],
    ] as const) {
      await page.getByLabel('Search patients by name').fill(query);
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('link', { name }).waitFor();
    }
    await capture(page, '02-patients');
    await page.getByRole('link', { name: `${patient.familyName}, ${patient.givenName}` }).click();
    await expect
      .poll(async () => page.getByTestId('patient-banner').textContent(), UI_WAIT)
      .toContain(`Record ${patient.pid}`);
    await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 30_000 });
    await capture(page, '03-patient');

    await page.goto(
      `${server.url}/patients/${encodeURIComponent(patient.id)}/studies/${encodeURIComponent(current.uid)}`,
    );
    await page
      .getByTestId('patient-banner')
      .getByText(current.description ?? 'MRI')
      .waitFor();
    await viewerReady(page)();
    for (const plane of ['axial', 'sagittal', 'coronal']) {
      const stats = await canvasStats(page, plane);
      expect(stats.mean, `${plane} shows an image`).toBeGreaterThan(8);
      expect(stats.std, `${plane} has structure, not a flat fill`).toBeGreaterThan(10);
    }
    expect(await page.getByTestId('position-sagittal').textContent()).toMatch(/x = -?\d+\.\d mm/);
    expect(await page.getByTestId('position-coronal').textContent()).toMatch(/y = -?\d+\.\d mm/);
    expect(await page.locator('[data-plane="axial"] ~ .mpr-overlay .mk-top').textContent()).toBe('A');
    expect(await page.locator('[data-plane="sagittal"] ~ .mpr-overlay .mk-top').textContent()).toBe('S');
    // Window/level: the numbers follow a preset.
    const widthBefore = await page.getByLabel('Window width').inputValue();
    await page.getByLabel('Window/level preset').selectOption({ label: 'High contrast' });
    await expect.poll(() => page.getByLabel('Window width').inputValue(), UI_WAIT).not.toBe(widthBefore);
    // The wheel and the arrow keys move the same way.
    const axial = page.locator('[data-plane="axial"]');
    const position = async (): Promise<number> =>
      Number(/z = (-?[\d.]+) mm/.exec((await page.getByTestId('position-axial').textContent()) ?? '')?.[1]);
    const start = await position();
    await axial.hover();
    await page.mouse.wheel(0, 100);
    await expect.poll(position, UI_WAIT).not.toBe(start);
    const afterWheel = await position();
    await axial.focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(position, UI_WAIT).not.toBe(afterWheel);
    expect(Math.sign((await position()) - afterWheel)).toBe(Math.sign(afterWheel - start));
    await capture(page, '04-study-mpr', viewerReady(page));
  }, 240_000);

  it('physician: prior and current side by side scroll together', async () => {
    const page = await newPage();
    await signIn(
      page,
      /Paul Physician/,
      `/patients/${encodeURIComponent(patient.id)}/studies/${encodeURIComponent(current.uid)}`,
    );
    await page.getByRole('link', { name: /Compare with the prior study/ }).click();
    await page.getByTestId('patient-banner').waitFor();
    await viewerReady(page, 2)();
    const positions = async (): Promise<string[]> => page.getByTestId('position-axial').allTextContents();
    const [priorBefore, currentBefore] = (await positions()).map((t) => /z = (-?[\d.]+)/.exec(t)?.[1]);
    expect(priorBefore).toBe(currentBefore);
    await page.locator('.mpr').first().locator('[data-plane="axial"]').hover();
    await page.mouse.wheel(0, 300);
    await expect
      .poll(async () => (await positions()).map((t) => /z = (-?[\d.]+)/.exec(t)?.[1])[0], UI_WAIT)
      .not.toBe(priorBefore);
    await expect
      .poll(async () => {
        const [a, b] = (await positions()).map((t) => /z = (-?[\d.]+)/.exec(t)?.[1]);
        return a === b;
      }, UI_WAIT)
      .toBe(true);
    await capture(page, '05-compare', viewerReady(page, 2));
  }, 180_000);

  it('physician: a reloaded deep link to a running analysis gets its end over the WebSocket, without polling', async () => {
    // Three analyses queued at once: the in-process worker runs them one after another, so the last one is still
    // waiting when its page has been reloaded.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api.analyses.request(prior.uid, { patientId: patient.id })).id);
    const last = ids.at(-1)!;
    const page = await newPage();
    await signIn(page, /Paul Physician/, `/analyses/${encodeURIComponent(last)}`);
    await page.reload();
    const gets: number[] = [];
    const started = Date.now();
    page.on('request', (request) => {
      if (request.method() === 'GET' && new URL(request.url()).pathname === `/api/analyses/${last}`)
        gets.push(Date.now() - started);
    });
    const statusAtLoad = await page.locator('.status').first().textContent();
    await expect
      .poll(async () => page.getByTestId('progress-percent').first().textContent(), { timeout: 120_000 })
      .toBe('100%');
    await page.getByTestId('volumes').waitFor({ timeout: 30_000 });
    expect(statusAtLoad, 'the analysis had not finished when the page loaded').toMatch(/progress/i);
    // One read after the reload, one on the completion event: no 5-second poll while the socket is open.
    expect(gets.length).toBeLessThanOrEqual(2);
  }, 240_000);

  it('radiologist: worklist with patient names and a claim, SEG overlay from the PACS on the tumour, a bidirectional measurement kept', async () => {
    const page = await newPage();
    await signIn(page, /Rita Radiologist/);
    await page.getByRole('link', { name: 'Review worklist' }).click();
    const worklist = page.getByTestId('worklist');
    await worklist.getByText(`${patient.familyName}, ${patient.givenName}`).first().waitFor();
    await page
      .getByRole('button', { name: `Claim ${patient.familyName}, ${patient.givenName}` })
      .first()
      .click();
    await worklist.getByText('You').first().waitFor();
    await worklist.getByRole('button', { name: /Waiting/ }).click();
    await capture(page, '06-worklist');

    await page.goto(`${server.url}/analyses/${encodeURIComponent(analysisId)}`);
    await page.getByTestId('patient-banner').getByText(`${patient.familyName}, ${patient.givenName}`).waitFor();
    await viewerReady(page)();
    await expect
      .poll(async () => page.locator('.mpr').getAttribute('data-segmentation'), { timeout: 60_000 })
      .toBe('ready');

    // The phantom's tumour (ground truth of the synthetic study) in patient coordinates.
    const volume = await api.studies.volume(
      current.uid,
      current.series.find((s) => /contrast/i.test(s.description ?? ''))!.uid,
    );
    // The sandbox seeds every visit of a patient on the MNI template with the patient's id as the seed: the lesion
    // sits in the same place at every visit (compose.ts seedStudies), whatever its size.
    const phantom = generateTemplatePhantom({ seed: patient.id, dims: volume.dims, spacing: volume.spacing });
    const centre = indexToPatient(phantom.labels, phantom.tumour!.centre);
    const healthyIndex = healthyBrainVoxel(phantom);
    const label = await page.locator('.mpr').getAttribute('aria-label');
    const viewerName = label!.replace('Image viewer: ', '');
    await page.evaluate(([name, world]) => window.cdssViewers?.[name]?.jumpTo(world), [viewerName, centre] as const);
    await page.waitForTimeout(500);
    const onScreen = async (world: readonly number[]) =>
      page.evaluate(([name, w]) => window.cdssViewers?.[name]?.worldToCanvas('axial', w as [number, number, number]), [
        viewerName,
        world,
      ] as const);
    const lesion = (await onScreen(centre))!;
    // Brain without tumour on the lesion's axial slice (ground truth of the phantom).
    const healthy = (await onScreen([...indexToPatient(phantom.labels, healthyIndex)]))!;
    const saturation = ([r, g, b]: [number, number, number]): number => Math.max(r, g, b) - Math.min(r, g, b);
    const inside = await pixel(page, 'axial', lesion);
    const outside = await pixel(page, 'axial', healthy);
    expect(saturation(inside), `overlay colour at the lesion centre ${inside.join(',')}`).toBeGreaterThan(40);
    expect(saturation(outside), `grey brain outside the lesion ${outside.join(',')}`).toBeLessThan(12);
    // Hiding the segments takes the colour away.
    for (const name of ['NCR', 'ED', 'ET']) await page.getByRole('checkbox', { name }).uncheck();
    await expect.poll(async () => saturation(await pixel(page, 'axial', lesion)), UI_WAIT).toBeLessThan(12);
    for (const name of ['NCR', 'ED', 'ET']) await page.getByRole('checkbox', { name }).check();

    // A bidirectional measurement across the lesion, saved with the analysis.
    await page.getByRole('button', { name: 'Bidirectional' }).click();
    const box = (await page.locator('[data-plane="axial"]').boundingBox())!;
    await page.mouse.move(box.x + lesion[0] - 25, box.y + lesion[1]);
    await page.mouse.down();
    await page.mouse.move(box.x + lesion[0] + 25, box.y + lesion[1], { steps: 8 });
    await page.mouse.up();
    await page.getByRole('button', { name: 'Save measurements' }).click();
    await page.getByText('Measurements saved.').waitFor();
    await capture(page, '07-analysis-review', async () => {
      await viewerReady(page)();
    });
    await page.reload();
    await viewerReady(page)();
    const row = page.getByTestId('measurements').getByRole('row', { name: /Bidirectional/ });
    await row.waitFor({ timeout: 30_000 });
    const longest = Number((await row.getByRole('cell').nth(1).textContent()) ?? '0');
    expect(longest).toBeGreaterThan(5);
    // Drawn again on the image (the tools' SVG layer holds its lines).
    await expect.poll(async () => page.locator('[data-plane="axial"] svg line').count(), UI_WAIT).toBeGreaterThan(0);
    const saved = await api.analyses.measurements(analysisId);
    expect(saved.items.map((m) => m.tool)).toEqual(['Bidirectional']);

    // The report prints without navigation or controls.
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({ path: join(screenshotsDir, '08-print-report.png'), fullPage: true });
    expect(await page.locator('.topbar').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Print report' }).isVisible()).toBe(false);
    expect(await page.getByTestId('patient-banner').isVisible()).toBe(true);
    expect(await page.getByTestId('model-card').textContent()).toMatch(/not for clinical use/);
    await page.emulateMedia({ media: 'screen' });

    await page.getByLabel('Comment (required to reject)').fill('Segmentation matches the enhancing lesion.');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('.status-approved').first().waitFor();
    // The reviewer's name (not their user id) with the time.
    expect(await page.locator('.status-line').first().textContent()).toMatch(/by Dr\. Rita Radiologist, .*\d{4}/);
    expect(await page.getByTestId('review-status').textContent()).toContain('by Dr. Rita Radiologist');
  }, 300_000);

  it('physician: registering a patient with the name and birth date of an existing one asks first', async () => {
    const page = await newPage();
    await signIn(page, /Paul Physician/, '/patients');
    await page.locator('summary', { hasText: 'New patient' }).click();
    await page.getByLabel('Given name').fill('Zoë');
    await page.getByLabel('Family name').fill('Müller');
    await page.getByLabel('Birth date').fill('1971-02-03');
    await page.getByLabel('Sex').selectOption('female');
    await page.getByRole('button', { name: 'Create patient' }).click();
    const warning = page.getByTestId('duplicate-warning');
    await warning.getByRole('link', { name: 'Müller, Zoë' }).waitFor();
    await capture(page, '13-duplicate-patient');
    const before = (await api.patients.search({ q: 'zoe muller' })).items.length;
    await warning.getByRole('button', { name: 'Create another patient anyway' }).click();
    await page.waitForURL(/\/patients\/[0-9a-f-]{36}$/);
    await page.getByTestId('patient-banner').getByText('Müller, Zoë').waitFor();
    expect((await api.patients.search({ q: 'zoe muller' })).items.length).toBe(before + 1);
  }, 90_000);

  it('nurse: the worklist and the audit log are not offered, and typed in they say so', async () => {
    const page = await newPage();
    await signIn(page, /Nina Nurse/);
    expect(await page.getByRole('link', { name: 'Review worklist' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Audit log' }).count()).toBe(0);
    for (const path of ['/review', '/audit']) {
      await page.goto(`${server.url}${path}`);
      await page.getByRole('heading', { name: 'Not available for your role' }).waitFor();
      expect(await page.getByText('Try again').count()).toBe(0);
    }
    await capture(page, '09-not-available');
  }, 60_000);

  it('an expiring session warns, and signing in again returns to the deep link', async () => {
    const page = await newPage();
    const deepLink = `/analyses/${encodeURIComponent(analysisId)}`;
    await signIn(page, /Paul Physician/, deepLink);
    // The session ends in 90 s: the warning shows at once.
    await page.evaluate(() => {
      const session = JSON.parse(sessionStorage.getItem('cdss.session') ?? '{}') as { expiresAt: number };
      sessionStorage.setItem('cdss.session', JSON.stringify({ ...session, expiresAt: Date.now() + 90_000 }));
    });
    await page.reload();
    await page.getByTestId('session-warning').waitFor();
    await capture(page, '10-session-warning');
    await page.getByRole('button', { name: 'Sign in again now' }).click();
    await page.waitForURL('**/signin');
    await page.getByText('Your session has ended').waitFor();
    await page.getByRole('button', { name: /Paul Physician/ }).click();
    await page.waitForURL(`**${deepLink}`);
    // A token the server refuses (expired or revoked) does the same.
    await page.evaluate(() => {
      const session = JSON.parse(sessionStorage.getItem('cdss.session') ?? '{}') as Record<string, unknown>;
      sessionStorage.setItem('cdss.session', JSON.stringify({ ...session, token: 'expired.token.value' }));
    });
    await page.reload();
    await page.waitForURL('**/signin');
    await page.getByRole('button', { name: /Paul Physician/ }).click();
    await page.waitForURL(`**${deepLink}`);
  }, 90_000);

  it('admin: the audit log', async () => {
    const page = await newPage();
    await signIn(page, /Ada Admin/);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'read', exact: true }).first().waitFor();
    expect(await page.locator('time').first().textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
    // Filtered on the server: successful accesses only.
    await page.getByLabel('Outcome').selectOption('success');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect
      .poll(async () => [...new Set(await page.locator('td[class^="outcome-"]').allTextContents())], UI_WAIT)
      .toEqual(['success']);
    await capture(page, '11-audit');
  }, 60_000);

  it('installs on a tablet: manifest, and a service worker that caches the shell and no patient data', async () => {
    const page = await newPage({ width: 820, height: 1180 }, { isMobile: true });
    await signIn(page, /Paul Physician/, `/patients/${encodeURIComponent(patient.id)}`);
    await page.getByTestId('patient-banner').waitFor();
    const manifest = await page.evaluate(async () => {
      const href = document.querySelector('link[rel="manifest"]')?.getAttribute('href') ?? '';
      return (await fetch(href)).json() as Promise<{
        display: string;
        icons: Array<{ sizes: string }>;
        start_url: string;
      }>;
    });
    expect(manifest.display).toBe('standalone');
    expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.reload();
    await page.getByTestId('patient-banner').getByText(patient.familyName).waitFor();
    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const key of await caches.keys())
        for (const request of await (await caches.open(key)).keys()) urls.push(new URL(request.url).pathname);
      return urls;
    });
    expect(cached).toContain('/');
    expect(cached.some((u) => u.startsWith('/assets/'))).toBe(true);
    expect(cached.filter((u) => /^\/(api|dicomweb|ws)\b/.test(u))).toEqual([]);
    await page.screenshot({ path: join(screenshotsDir, '12-tablet-installed.png') });
  }, 90_000);

  it('every page passes axe-core without serious or critical violations', () => {
    expect(axeFindings).toEqual([]);
  });

  it('puts no names in URLs and no PHI or page errors in the browser console', () => {
    const names = [patient.familyName, patient.givenName].filter((n) => n.length >= 3);
    for (const url of visitedUrls) for (const name of names) expect(decodeURIComponent(url)).not.toContain(name);
    for (const line of consoleLines) for (const name of names) expect(line).not.toContain(name);
    expect(consoleLines.filter((l) => l.startsWith('pageerror'))).toEqual([]);
  });
});

/**
 * A voxel of white or grey matter, far from any tumour label, on the tumour centre's axial slice: the mirror image
 * of the centre across the grid's midline when that is healthy brain, else the nearest such voxel to it.
 */
function healthyBrainVoxel(phantom: Phantom): Vec3 {
  const { labels, tissues } = phantom;
  const [nx, ny] = labels.dims;
  const [ci, cj, ck] = phantom.tumour!.centre.map(Math.round) as Vec3;
  const brain = new Set<number>([PHANTOM_TISSUES.greyMatter, PHANTOM_TISSUES.whiteMatter]);
  const clear = (i: number, j: number): boolean => {
    for (let dj = -2; dj <= 2; dj++)
      for (let di = -2; di <= 2; di++) {
        const x = i + di;
        const y = j + dj;
        if (x < 0 || y < 0 || x >= nx || y >= ny) return false;
        const at = x + nx * (y + ny * ck);
        if (labels.data[at] !== 0 || !brain.has(tissues.data[at]!)) return false;
      }
    return true;
  };
  const mirrored = nx - 1 - ci;
  for (let rowOffset = 0; rowOffset < ny; rowOffset++)
    for (const j of [cj + rowOffset, cj - rowOffset])
      for (let offset = 0; offset < nx; offset++)
        for (const i of [mirrored + offset, mirrored - offset]) if (clear(i, j)) return [i, j, ck];
  throw new Error('the phantom has no healthy brain on the tumour slice');
}
